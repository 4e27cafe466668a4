"""Time-series imputation benchmark: CSDI-style conditional diffusion vs classical baselines.

For each dataset (ambient NOx, BasicMotions) a CSDI backbone is trained on the training part for a
wall-clock budget on the CPU, then held-out test windows get 10% and 50% extra missing values
(``random_fixed`` masks with a fixed seed, the same for every method) and are imputed with several
samplers; baselines (mean, LOCF, linear interpolation) fill the same masks. Prints a table and writes
``benchmarks/results/timeseries.json``. Run it under the shared lock::

    flock /tmp/polydiff-heavy.lock python benchmarks/timeseries.py --budget 6.5
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from polydiff import EDM, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.imputation import IMPUTE_METRICS, Imputation, impute, in_data_units
from polydiff_timeseries import CSDIBackbone, TimeSeriesDataset, load_ambient_nox, load_basic_motions
from polydiff_timeseries.baselines import BASELINES, RidgeImputer
from polydiff_timeseries.masks import random_fixed
from polydiff_timeseries.metrics import METRICS as TS_METRICS
from polydiff_timeseries.plots import plot_imputation

RESULTS = Path(__file__).parent / "results"
SAMPLERS = (("ddpm", 50), ("ddim", 10), ("dpmpp_2m", 10))  # 50-step ancestral vs low-NFE solvers
MODEL = {"channels": 32, "layers": 3, "heads": 4, "time_dim": 32, "feature_dim": 16, "emb_dim": 64}


def datasets(args: argparse.Namespace) -> dict[str, tuple[TimeSeriesDataset, TimeSeriesDataset]]:
    # CPU sampling cost limits the test windows: NOx test windows start every `nox_stride` days of the
    # last 20% of 2004; BasicMotions runs at every 2nd step (50 steps at 5 Hz) and its test part is
    # `bm_windows` recordings evenly spread over aeon's test split (sorted by activity: all four appear)
    bm_test = load_basic_motions(part="test", every=2)
    bm_pick = [round(i * len(bm_test) / args.bm_windows) for i in range(args.bm_windows)]
    nox_test = load_ambient_nox(part="test", test_stride=args.nox_stride)
    return {"ambient_nox": (load_ambient_nox(part="train"), nox_test),
            "basic_motions": (load_basic_motions(part="train", every=2), bm_test.subset(bm_pick))}


def train(ds: TimeSeriesDataset, minutes: float, seed: int, reuse: bool) -> tuple[Denoiser, dict[str, Any]]:
    """Conditional (CSDI) training for a wall-clock budget, in chunks of steps; the EMA weights are saved
    (``--reuse`` loads them instead of training again)."""
    torch.manual_seed(seed)
    net = CSDIBackbone(ds.num_features, **MODEL)
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=1.0))  # the data is normalised per feature
    weights, info_file = RESULTS / f"timeseries-{ds.name}.safetensors", RESULTS / f"timeseries-{ds.name}-train.json"
    if reuse and weights.is_file():
        denoiser.load_state_dict(load_file(str(weights)))
        return denoiser.eval(), {**json.loads(info_file.read_text()), "reused": True}
    cfg = TrainConfig(steps=0, batch_size=32, lr=2e-3, warmup_steps=50, ema_decay=0.99, grad_clip=1.0,
                      conditional=True, mask_strategy="random_ratio", label_dropout=0.0, device="cpu", seed=seed,
                      log_every=25, checkpoint_every=10**9)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=cfg)
    start, chunk, losses = time.perf_counter(), 25, []
    bar = tqdm(total=round(minutes * 60), desc=f"train {ds.name}", unit="s")
    while time.perf_counter() - start < minutes * 60:
        trainer.config = dataclasses.replace(cfg, steps=trainer.step + chunk)
        out = trainer.fit(progress=False)
        losses.append(out["loss"])
        bar.n = min(bar.total, round(time.perf_counter() - start))
        bar.set_postfix(step=trainer.step, loss=f"{out['loss']:.3f}" if out["loss"] is not None else "-")
    bar.close()
    for p, e in zip(trainer.params, trainer.ema, strict=True):  # evaluate the EMA weights
        p.data.copy_(e)
    info = {"steps": trainer.step, "minutes": (time.perf_counter() - start) / 60, "batch_size": cfg.batch_size,
            "parameters": sum(p.numel() for p in net.parameters()), "final_loss": losses[-1], "model": MODEL,
            "mask_strategy": cfg.mask_strategy}
    RESULTS.mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in denoiser.state_dict().items()}, str(weights))
    info_file.write_text(json.dumps(info) + "\n")
    return denoiser.eval(), info


def scores(imp: Imputation, test: TimeSeriesDataset) -> dict[str, float]:
    metrics = [*IMPUTE_METRICS, *TS_METRICS]
    return {m.name: m.fn(imp, test) for m in metrics if m.name != "coverage_error_90"}


def baseline_mae(test: TimeSeriesDataset, given: torch.Tensor, target: torch.Tensor,
                 ridge: RidgeImputer) -> dict[str, float]:
    """Classical fills in data units; the learned ridge baseline works in model space, like the model."""
    truth = test.denormalize(test.x.double())
    preds = {name: fill(truth, given.double()) for name, fill in BASELINES.items()}
    preds["ridge"] = test.denormalize(ridge(test.x, given))
    return {f"{name}_mae": float(((p - truth).abs() * target).sum() / target.sum()) for name, p in preds.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(args.threads)  # on a shared 2-core machine one thread is several times faster
    results: dict[str, Any] = {"samples": args.samples, "budget_minutes": args.budget, "threads": args.threads,
                               "datasets": {}}
    for name, (train_ds, test) in datasets(args).items():
        denoiser, info = train(train_ds, args.budget, args.seed, args.reuse)
        entry: dict[str, Any] = {"train": info, "test_windows": len(test), "rows": []}
        batch = test.get_batch(torch.arange(len(test)))
        ridge = RidgeImputer().fit(train_ds.x, train_ds.observed_mask, seed=args.seed)
        for ratio in (0.1, 0.5):
            target = random_fixed(test.observed_mask, torch.Generator().manual_seed(args.mask_seed), ratio=ratio)
            given = test.observed_mask * (1 - target)
            row_base = {"ratio": ratio, "targets": int(target.sum()), **baseline_mae(test, given, target, ridge)}
            for sampler, steps in SAMPLERS:
                with torch.no_grad():
                    imp = impute(denoiser, batch, target, n_samples=args.samples, seed=args.seed,
                                 sampler=plugins.get_sampler(sampler), schedule=EDM(), steps=steps,
                                 spec=test.spec, conditional_model=True, batch_size=args.batch)
                exact = bool(torch.equal(imp.samples * imp.given[:, None], imp.truth[:, None] * imp.given[:, None]))
                row = {**row_base, "sampler": sampler, "steps": steps, "nfe": imp.nfe, "seconds": imp.seconds,
                       "observed_exact": exact, **scores(imp, test)}
                entry["rows"].append(row)
                print(_line(name, row), flush=True)
                if sampler == "ddpm":
                    RESULTS.mkdir(exist_ok=True)
                    plot_imputation(in_data_units(imp, test), RESULTS / f"timeseries-{name}-{round(ratio * 100)}.png")
        results["datasets"][name] = entry
    return results


COLUMNS = ("dataset", "miss", "sampler", "NFE", "sec", "MAE", "linear", "locf", "mean", "ridge", "CRPS", "CRPSsum",
           "CRPS-e", "cov90", "PIT")


def _line(name: str, r: dict[str, Any]) -> str:
    vals = (name, f"{r['ratio']:.0%}", r["sampler"], r["nfe"], f"{r['seconds']:.1f}", f"{r['mae']:.4g}",
            f"{r['linear_mae']:.4g}", f"{r['locf_mae']:.4g}", f"{r['mean_mae']:.4g}", f"{r['ridge_mae']:.4g}",
            f"{r['crps']:.4f}",
            f"{r['crps_sum']:.4f}", f"{r['crps_energy']:.4g}", f"{r['coverage_90']:.3f}", f"{r['pit_error']:.3f}")
    return " | ".join(str(v) for v in vals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=6.5, help="training minutes per dataset (CPU wall clock)")
    p.add_argument("--samples", type=int, default=32, help="samples per series (S)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mask-seed", type=int, default=1234, help="seed of the held-out masks (same for all methods)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=512, help="series per denoiser batch when sampling")
    p.add_argument("--nox-stride", type=int, default=12, help="days between ambient NOx test windows")
    p.add_argument("--bm-windows", type=int, default=5, help="BasicMotions test recordings imputed")
    p.add_argument("--reuse", action="store_true", help="load the weights a previous run saved instead of training")
    p.add_argument("--quick", action="store_true", help="smoke run: writes timeseries-quick.json (tiny --budget)")
    args = p.parse_args()
    results = run(args)
    print("\n" + " | ".join(COLUMNS))
    for name, entry in results["datasets"].items():
        t = entry["train"]
        reused = " (reused weights)" if t.get("reused") else ""
        print(f"# {name}: {t['steps']} steps x {t['batch_size']} in {t['minutes']:.1f} min{reused}, "
              f"{t['parameters']} parameters, {entry['test_windows']} test windows, S = {args.samples}")
        for r in entry["rows"]:
            print(_line(name, r))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("timeseries-quick.json" if args.quick else "timeseries.json")
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
