"""Image benchmark: a class-conditional U-Net trained under a CPU time budget, scored by the
reference-classifier Fréchet distance (NOT Inception FID) and accuracy, per sampler and NFE.

    flock /tmp/polydiff-heavy.lock python benchmarks/image.py --dataset digits --budget-minutes 15

Prints a table and writes ``benchmarks/results/image.json`` (one entry per dataset). Baselines: a
Gaussian fitted to the training images (the bar to clear) and as many real training images (the floor).
"""

from __future__ import annotations

import argparse
import json
import os
import time

# 2 cores shared by several jobs: OpenMP threads that spin while waiting make an oversubscribed
# machine 4x slower; passive waiting costs nothing when the cores are free
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from pathlib import Path
from typing import Any

import torch

from polydiff import plugins
from polydiff.app.runs import Run, build_schedule, load_data, resolve_config
from polydiff.app.workflows import load_denoiser, train
from polydiff.diffusion.imputation import impute
from polydiff.diffusion.sampling import sample
from polydiff.diffusion.state import Batch
from polydiff_image.classifier import reference_classifier
from polydiff_image.generate import consistency, interpolate, plot_interpolation, psnr, super_resolve, upsample_baseline
from polydiff_image.masks import STRATEGIES
from polydiff_image.metrics import classifier_accuracy, classifier_fd, gaussian_baseline
from polydiff_image.plots import plot_imputation, plot_samples, plot_super_resolution, save_trajectory_gif

MODELS: dict[str, dict[str, Any]] = {
    # small enough to take a few thousand steps in minutes on 2 shared CPU cores
    "digits": {"channels": 16, "channel_mult": "1,2", "num_res_blocks": 1, "attention_resolution": 8},
    # 28x28: 2x2 patches make every level run at half the side, 4x cheaper per channel (measured:
    # 195k parameters unpatched took 2x longer per step than 775k patched)
    "fashion_mnist": {"channels": 32, "channel_mult": "1,2", "num_res_blocks": 1, "attention_resolution": 7,
                      "patch": 2},
}


def config(dataset: str, minutes: float, seed: int, batch_size: int, lr: float, lowres: int = 0) -> dict[str, Any]:
    if lowres:  # a super-resolution model: conditioned on the image pooled by `lowres`, not on the class
        raw = config(dataset, minutes, seed, batch_size, lr)
        raw["data"]["lowres"] = lowres
        raw["model"] |= {"class_cond": False, "lowres_cond": True}
        raw["train"]["label_dropout"] = 0.0
        return raw
    return {
        "modality": "image",
        "data": {"dataset": dataset, "holdout": 0.2 if dataset == "digits" else 0.1,
                 **({"split": "all"} if dataset == "fashion_mnist" else {})},
        "model": {"backbone": "unet", "class_cond": True, **MODELS[dataset]},
        "train": {"steps": 1_000_000, "max_minutes": minutes, "batch_size": batch_size, "lr": lr,
                  "warmup_steps": 200, "ema_decay": 0.995, "label_dropout": 0.1, "seed": seed,
                  "checkpoint_every": 500, "log_every": 100, "device": "cpu"},
    }


def evaluate(run: Run, *, n: int, samplers: list[str], nfes: list[int], cfg_scale: float, seed: int,
             pictures: Path) -> list[dict[str, Any]]:
    train_ds, held_out = load_data(run.config)
    denoiser = load_denoiser(run, train_ds)
    schedule = build_schedule(run.config)
    labels = torch.arange(n) % int(train_ds.num_classes or 1)
    rows = []
    plan = [(s, f, cfg_scale) for s in samplers for f in nfes] + [("heun", 20, None)]  # + no guidance
    for name, nfe, scale in plan:
        spec = plugins.get_sampler(name)
        steps = spec.steps_for_nfe(nfe)
        with torch.no_grad():
            res = sample(denoiser, shape=train_ds.sample_shape, n=n, seed=seed, sampler=spec, schedule=schedule,
                         steps=steps, cond={"label": labels}, cfg_scale=scale, spec=train_ds.spec)
        batch = Batch(x=res.x, cond={"label": labels})
        row = {"method": f"{name} (cfg {scale if scale is not None else 'off'})", "sampler": name,
               "nfe": res.nfe, "steps": steps, "cfg_scale": scale, "fd": classifier_fd(batch, held_out),
               "accuracy": classifier_accuracy(batch, held_out), "seconds": round(res.seconds, 2)}
        rows.append(row)
        print(f"  {row['method']:22s} NFE {row['nfe']:3d}  FD {row['fd']:8.3f}  acc {row['accuracy']:.3f}  "
              f"({row['seconds']:.0f} s)", flush=True)
        if name == "heun" and nfe == 20:
            plot_samples(batch, held_out.get_batch(torch.arange(min(64, len(held_out)))),
                         pictures / f"image-{run.config.data.dataset}-heun20-cfg{scale}.png")
    return rows


def baselines(run: Run, n: int, seed: int) -> list[dict[str, Any]]:
    train_ds, held_out = load_data(run.config)
    gauss = gaussian_baseline(train_ds, n, seed=seed)
    real = train_ds.get_batch(torch.randperm(len(train_ds), generator=torch.Generator().manual_seed(seed))[:n])
    return [{"method": "Gaussian fit (baseline)", "nfe": 0, "fd": classifier_fd(gauss, held_out),
             "accuracy": None},
            {"method": "training images (floor)", "nfe": 0, "fd": classifier_fd(real, held_out),
             "accuracy": classifier_accuracy(real, held_out)}]


def _hidden_mae(x: torch.Tensor, truth: torch.Tensor, target: torch.Tensor) -> float:
    return float(((x - truth).abs() / 2 * target).sum() / target.sum())  # /2: [-1, 1] -> [0, 1] units


def extras(run: Run, pictures: Path, seed: int, cfg_scale: float) -> dict[str, Any]:
    """Inpainting / outpainting errors on held-out images (median of 4 samples vs the truth on hidden
    pixels, [0, 1] units) beside filling with the training mean image; interpolation and GIF pictures."""
    train_ds, held_out = load_data(run.config)
    denoiser = load_denoiser(run, train_ds)
    schedule, name = build_schedule(run.config), run.config.data.dataset
    batch = held_out.get_batch(torch.arange(min(32, len(held_out))))
    mean_image = train_ds.get_batch(torch.arange(min(len(train_ds), 20000))).x.mean(0, keepdim=True)
    out: dict[str, Any] = {}
    for mask in ("center_box", "half"):
        fn, options, _ = STRATEGIES[mask]
        target = fn(torch.ones_like(batch.x), torch.Generator().manual_seed(seed), **options)
        with torch.no_grad():
            imp = impute(denoiser, batch, target, n_samples=4, sampler="heun", schedule=schedule, steps=11,
                         seed=seed)
        out[mask] = {"mae_model": _hidden_mae(imp.median(), batch.x, target),
                     "mae_mean_image": _hidden_mae(mean_image.expand_as(batch.x), batch.x, target)}
        plot_imputation(imp, pictures / f"image-{name}-{mask}.png")
        print(f"  inpainting {mask:10s}: MAE {out[mask]['mae_model']:.4f} (mean-image fill "
              f"{out[mask]['mae_mean_image']:.4f})", flush=True)
    rows = [interpolate(denoiser, shape=train_ds.sample_shape, seeds=(seed, seed + k), points=8, sampler="heun",
                        schedule=schedule, steps=11, label=k % int(train_ds.num_classes or 1), cfg_scale=cfg_scale)
            for k in (1, 2, 3)]
    plot_interpolation(torch.cat(rows), pictures / f"image-{name}-interpolation.png", points=8)
    with torch.no_grad():
        traj = sample(denoiser, shape=train_ds.sample_shape, n=16, seed=seed, sampler="heun", schedule=schedule,
                      steps=11, cond={"label": torch.arange(16) % int(train_ds.num_classes or 1)},
                      cfg_scale=cfg_scale, keep_trajectory=True).trajectory or []
    save_trajectory_gif([Batch(x=x) for x in traj], pictures / f"image-{name}-trajectory.gif")
    return out


def super_resolution(run: Run, *, n: int, samples: int, steps: int, seed: int, pictures: Path) -> list[dict[str, Any]]:
    """Held-out images pooled down by ``data.lowres`` and super-resolved: PSNR against the truth,
    consistency (the result pooled down again vs the input, RMS in [-1, 1] units) and the classifier FD
    of the results, for bicubic upsampling (the baseline), one sample, and the mean of ``samples``
    samples (an estimate of the posterior mean: higher PSNR, blurrier)."""
    train_ds, held_out = load_data(run.config)
    denoiser = load_denoiser(run, train_ds)
    batch = held_out.get_batch(torch.arange(min(n, len(held_out))))
    lowres, truth = batch.cond["lowres"], batch.x
    with torch.no_grad():
        draws = torch.stack([super_resolve(denoiser, lowres, shape=train_ds.sample_shape, seed=seed + k,
                                           sampler="heun", schedule=build_schedule(run.config), steps=steps,
                                           spec=train_ds.spec, progress=True) for k in range(samples)])
    bicubic = upsample_baseline(lowres, tuple(truth.shape[-2:]))
    plot_super_resolution(lowres, bicubic, draws[0], truth,
                          pictures / f"image-{run.config.data.dataset}-superres{run.config.data.options['lowres']}.png")
    rows = []
    for method, x in (("bicubic (baseline)", bicubic), ("diffusion, one sample", draws[0]),
                      (f"diffusion, mean of {samples} samples", draws.mean(0))):
        rows.append({"method": method, "nfe": 0 if method.startswith("bicubic") else 2 * steps - 1,
                     "psnr_db": float(psnr(x, truth).mean()), "consistency_rms": float(consistency(x, lowres).mean()),
                     "fd": classifier_fd(Batch(x=x), held_out)})
        print(f"  {method:32s} PSNR {rows[-1]['psnr_db']:6.2f} dB  consistency {rows[-1]['consistency_rms']:.4f}  "
              f"FD {rows[-1]['fd']:.3f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    head = f"{'method':26s} {'NFE':>4s} {'FD':>9s} {'accuracy':>9s}"
    lines = [head, "-" * len(head)]
    for r in rows:
        acc = "-" if r.get("accuracy") is None else f"{r['accuracy']:.3f}"
        lines.append(f"{r['method']:26s} {r['nfe']:4d} {r['fd']:9.3f} {acc:>9s}")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="digits", choices=sorted(MODELS))
    p.add_argument("--budget-minutes", type=float, default=15.0, help="CPU training time budget")
    p.add_argument("--n", type=int, default=300, help="samples per sampler/NFE cell")
    p.add_argument("--samplers", default="euler,heun,dpmpp_2m")
    p.add_argument("--nfe", default="10,20,40")
    p.add_argument("--cfg-scale", type=float, default=2.0)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", default="/tmp/polydiff-image-bench", help="where the run directory goes")
    p.add_argument("--out", default="benchmarks/results/image.json")
    p.add_argument("--threads", type=int, default=1, help="torch threads (one is fastest on the shared 2 cores)")
    p.add_argument("--superres", type=int, default=0, metavar="FACTOR",
                   help="instead: train a super-resolution model from images pooled by FACTOR and score it")
    p.add_argument("--superres-samples", type=int, default=4, help="samples per image for the posterior-mean row")
    p.add_argument("--steps", type=int, default=16, help="Heun steps of super-resolution sampling")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    key = args.dataset + (f"-superres{args.superres}" if args.superres else "")
    run_dir = Path(args.runs) / f"{key}-{int(time.time())}"
    start = time.perf_counter()
    raw = config(args.dataset, args.budget_minutes, args.seed, args.batch_size, args.lr, lowres=args.superres)
    raw["train"]["threads"] = args.threads
    run = Run.create(resolve_config(raw), run_dir)
    train(None, resume=str(run.path), progress=True)
    run = Run.open(run.path)  # the config now records the sigma_data estimated from the data
    log = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in log if "loss" in r][-1]
    print(f"trained {last['step']} steps in {last['seconds']:.0f} s (loss {last['loss']:.4f})", flush=True)
    _, held_out = load_data(run.config)
    clf = reference_classifier(held_out, progress=True)
    pictures = Path(args.out).parent
    pictures.mkdir(parents=True, exist_ok=True)
    command = (f"python benchmarks/image.py --dataset {args.dataset} --budget-minutes {args.budget_minutes:g} "
               f"--n {args.n} --batch-size {args.batch_size}")
    entry: dict[str, Any] = {
        "train_steps": last["step"], "train_seconds": last["seconds"], "final_loss": last["loss"],
        "model": run.config.to_dict()["model"], "batch_size": args.batch_size, "n_samples": args.n,
        "n_reference": len(held_out), "classifier_val_accuracy": clf.info.get("val_accuracy"),
        "metric_note": "FD in the features of a small CNN trained on the same dataset; NOT Inception FID"}
    if args.superres:
        rows = super_resolution(run, n=args.n, samples=args.superres_samples, steps=args.steps, seed=args.seed,
                                pictures=pictures)
        entry |= {"command": f"{command} --superres {args.superres} --steps {args.steps}", "rows": rows}
    else:
        rows = evaluate(run, n=args.n, samplers=args.samplers.split(","), nfes=[int(v) for v in args.nfe.split(",")],
                        cfg_scale=args.cfg_scale, seed=args.seed, pictures=pictures)
        rows += baselines(run, args.n, args.seed)
        entry |= {"command": f"{command} --samplers {args.samplers} --nfe {args.nfe} --cfg-scale {args.cfg_scale:g}",
                  "rows": rows,
                  "inpainting": extras(run, pictures, args.seed, args.cfg_scale)}
        print(table(rows))
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.is_file() else {}
    results[key] = entry | {"total_seconds": round(time.perf_counter() - start, 1)}
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
