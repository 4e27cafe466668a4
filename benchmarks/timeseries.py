"""Time-series imputation benchmark on the honest footing: CSDI-style conditional diffusion, with and without
a prior fill (``model.prior_fill = none | condition | residual``), beside mean, LOCF, linear interpolation
and ridge on the same masks.

* datasets at full resolution: ambient NOx (daily, 13 stations, windows of 24 days), Mauna Loa CO2
  (weekly, windows of 52 weeks), and a CSV written from a package dataset (statsmodels ``macrodata``:
  203 quarters of 6 US macro series, windows of 16 quarters) loaded through the ``csv`` dataset, as a
  user's file would be; ``basic_motions`` (100 steps x 6 channels) when ``aeon`` is installed;
* ALL test windows: the last 20% of each series tiled by windows (every test step scored, none used
  for training or tuning), each window under ``--mask-draws`` independent masks per task;
* tasks: 10%, 50% and 90% random missing, block gaps, and forecasting the last quarter of each window;
* budgets in CPU seconds (``time.process_time``, one thread): each model trains for ``--budget`` CPU
  seconds; sampling CPU seconds are reported per row.

Prints one row per dataset x task x prior-fill mode and writes ``benchmarks/results/timeseries.json``::

    OMP_NUM_THREADS=1 python benchmarks/timeseries.py --budget 120 --samples 8
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.diffusion.imputation import coverage_90, crps, impute, mae
from polydiff.diffusion.prior_fill import attach_prior_fill, resolve_prior_fill
from polydiff_timeseries import CSDIBackbone, TimeSeriesDataset, load_ambient_nox, load_basic_motions
from polydiff_timeseries.baselines import BASELINES, RidgeImputer, linear_interpolation
from polydiff_timeseries.datasets import load_co2, load_csv_dataset
from polydiff_timeseries.masks import block, forecast, random_fixed

RESULTS = Path(__file__).parent / "results"
MODEL = {"channels": 32, "layers": 3, "heads": 4, "time_dim": 32, "feature_dim": 16, "emb_dim": 64}
MODES = ("none", "condition", "residual")
TASKS = ("random10", "random50", "random90", "block", "forecast")
MACRO_COLUMNS = "realgdp,realcons,realinv,unemp,infl,realint"


def macro_csv(directory: Path) -> Path:
    """statsmodels' quarterly US macrodata written to a CSV, as a user's file. Its time column counts
    quarters (year * 4 + quarter - 1): the csv dataset's grid needs a fixed spacing, which calendar
    quarters do not have."""
    from statsmodels.datasets import macrodata

    df = macrodata.load_pandas().data
    path = directory / "macrodata.csv"
    quarter = (df["year"].astype(int) * 4 + df["quarter"].astype(int) - 1).rename("quarter_index")
    df.assign(quarter_index=quarter)[["quarter_index", *MACRO_COLUMNS.split(",")]].to_csv(path, index=False)
    return path


def datasets(names: list[str], directory: Path) -> dict[str, tuple[TimeSeriesDataset, TimeSeriesDataset]]:
    """(train, test) per dataset: the test part tiled by windows (stride = length; BasicMotions: its 40
    test recordings), statistics from the train part."""
    loaders = {
        "ambient_nox": lambda: (load_ambient_nox(part="train"), load_ambient_nox(part="test", test_stride=24)),
        "co2": lambda: (load_co2(part="train", stride=4), load_co2(part="test")),
        "basic_motions": lambda: (load_basic_motions(part="train"), load_basic_motions(part="test")),  # needs aeon
        "macro_csv": lambda: _macro(directory),
    }
    return {name: loaders[name]() for name in names}


def _macro(directory: Path) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
    csv = {"path": str(macro_csv(directory)), "length": 16, "stride": 1, "columns": MACRO_COLUMNS,
           "time_column": "quarter_index"}
    return load_csv_dataset(**csv, part="train"), load_csv_dataset(**csv, part="test")


def task_mask(task: str, observed: torch.Tensor, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if task.startswith("random"):
        return random_fixed(observed, g, ratio=int(task[6:]) / 100)
    if task == "block":
        return block(observed, g, max_fraction=0.5, feature_prob=0.5)
    return forecast(observed, g, horizon=max(1, observed.shape[-1] // 4))


def train_mask(observed: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Per series one of: a random ratio in (0, 1) of the observed entries, block gaps, the forecast of
    the last quarter (the tasks the benchmark asks for, none of its test masks)."""
    kinds = torch.randint(0, 3, (observed.shape[0],), generator=g)
    ratio = torch.rand(observed.shape[0], *([1] * (observed.ndim - 1)), generator=g)
    rand = observed * (torch.rand(observed.shape, generator=g) < ratio).to(observed.dtype)
    options = [rand, block(observed, g), forecast(observed, g, horizon=max(1, observed.shape[-1] // 4))]
    pick = kinds.reshape(-1, *([1] * (observed.ndim - 1)))
    return torch.where(pick == 0, options[0], torch.where(pick == 1, options[1], options[2]))


def residual_spread(ds: TimeSeriesDataset, seed: int) -> float:
    """sigma_data of what a residual model diffuses: the spread of x - fill on hidden entries of
    training windows (training masks)."""
    obs = ds.observed_mask
    target = train_mask(obs, torch.Generator().manual_seed(seed))
    given = obs * (1 - target)
    r = ds.x - linear_interpolation(ds.x * given, given)
    return float(r[target > 0].std())


def train(ds: TimeSeriesDataset, mode: str, budget: float, seed: int) -> tuple[Denoiser, dict[str, Any]]:
    """Conditional training for ``budget`` CPU seconds (``train.max_cpu_seconds``), EMA weights evaluated."""
    torch.manual_seed(seed)
    net = CSDIBackbone(ds.num_features, **MODEL)
    sigma_data = residual_spread(ds, seed) if mode == "residual" else 1.0  # the data is normalised per feature
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=sigma_data))
    attach_prior_fill(denoiser, resolve_prior_fill(mode, plugins.get_modality("timeseries"), conditional=True))
    cfg = TrainConfig(steps=10**9, batch_size=32, lr=2e-3, warmup_steps=50, ema_decay=0.99, grad_clip=1.0,
                      conditional=True, label_dropout=0.0, device="cpu", seed=seed, log_every=25,
                      checkpoint_every=10**9, max_cpu_seconds=budget)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                      weighting=Weighting(kind="edm"), config=cfg, mask_strategy=train_mask)
    start = time.process_time()
    loss = trainer.fit(progress=False)["loss"]  # until max_cpu_seconds
    denoiser = trainer.apply_ema()
    return denoiser, {"steps": trainer.step, "cpu_seconds": round(time.process_time() - start, 1),
                      "sigma_data": round(sigma_data, 4), "final_loss": loss,
                      "parameters": sum(p.numel() for p in net.parameters())}


def baseline_mae(test: TimeSeriesDataset, x: torch.Tensor, given: torch.Tensor, target: torch.Tensor,
                 ridge: RidgeImputer) -> dict[str, float]:
    """MAE of the classical fills (data units) and of ridge (fitted in model units, like the model)."""
    truth = test.denormalize(x.double())
    preds = {name: fill(truth * given, given.double()) for name, fill in BASELINES.items()}
    preds["ridge"] = test.denormalize(ridge(x * given, given))
    return {name: float(((p - truth).abs() * target).sum() / target.sum()) for name, p in preds.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    out: dict[str, Any] = {"budget_cpu_seconds": args.budget, "samples": args.samples, "sampler": args.sampler,
                           "steps": args.steps, "model": MODEL, "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = datasets(args.datasets, Path(tmp))
    for name in args.datasets:
        train_ds, test = data[name]
        rows = torch.arange(len(test)).repeat(args.mask_draws)  # each window under several masks
        batch = test.get_batch(rows)
        observed, x = batch.observed, batch.x
        ridge = RidgeImputer().fit(train_ds.x, train_ds.observed_mask, seed=args.seed)
        entry: dict[str, Any] = {"train_windows": len(train_ds), "test_windows": len(test),
                                 "mask_draws": args.mask_draws, "shape": list(test.sample_shape), "train": {},
                                 "rows": []}
        masks = {t: task_mask(t, observed, args.mask_seed) for t in args.tasks}
        for mode in args.modes:
            denoiser, info = train(train_ds, mode, args.budget, args.seed)
            entry["train"][mode] = info
            print(f"# {name} {mode}: {info}", flush=True)
            for task, target in masks.items():
                given = observed * (1 - target)
                start = time.process_time()
                with torch.no_grad():
                    imp = impute(denoiser, batch, target, n_samples=args.samples, seed=args.seed,
                                 sampler=args.sampler, schedule=EDM(), steps=args.steps, spec=test.spec,
                                 conditional_model=True, batch_size=args.batch)
                row = {"task": task, "mode": mode, "targets": int(target.sum()), "nfe": imp.nfe,
                       "sample_cpu_seconds": round(time.process_time() - start, 1),
                       "mae": mae(imp, test), "crps": crps(imp, test), "coverage_90": coverage_90(imp, test),
                       **baseline_mae(test, x, given, target, ridge)}
                entry["rows"].append(row)
                print(_line(name, row), flush=True)
        out["datasets"][name] = entry
    return out


COLUMNS = ("dataset", "task", "prior_fill", "MAE", "linear", "locf", "mean", "ridge", "CRPS", "cov90", "NFE",
           "CPU s")


def _line(name: str, r: dict[str, Any]) -> str:
    vals = (name, r["task"], r["mode"], f"{r['mae']:.4g}", f"{r['linear']:.4g}", f"{r['locf']:.4g}",
            f"{r['mean']:.4g}", f"{r['ridge']:.4g}", f"{r['crps']:.4f}", f"{r['coverage_90']:.3f}", r["nfe"],
            r["sample_cpu_seconds"])
    return " | ".join(str(v) for v in vals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600, help="training CPU seconds per model (time.process_time)")
    p.add_argument("--samples", type=int, default=16, help="samples per window (S)")
    p.add_argument("--sampler", default="dpmpp_2m")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--mask-seed", type=int, default=1234, help="seed of the test masks (same for every method)")
    p.add_argument("--mask-draws", type=int, default=4, help="independent masks per test window and task")
    p.add_argument("--batch", type=int, default=256, help="series per denoiser batch when sampling")
    p.add_argument("--datasets", nargs="+", default=["ambient_nox", "co2", "macro_csv"],
                   choices=["ambient_nox", "co2", "basic_motions", "macro_csv"])
    p.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=TASKS)
    p.add_argument("--out", default=str(RESULTS / "timeseries.json"))
    args = p.parse_args()
    results = run(args)
    print("\n" + " | ".join(COLUMNS))
    for name, entry in results["datasets"].items():
        print(f"# {name}: {entry['train_windows']} train / {entry['test_windows']} test windows {entry['shape']}, "
              f"S = {args.samples}, {args.sampler} {args.steps} steps")
        for r in entry["rows"]:
            print(_line(name, r))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
