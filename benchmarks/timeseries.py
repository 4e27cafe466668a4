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
  seconds; sampling CPU seconds are reported per row;
* defaults tuned on validation windows carved from the training part (``--validate 0.2``: the last 20%
  of the train part, trained on the windows before it; the test windows are never scored while tuning):
  EDM's schedule and lognormal training levels scaled by ``sigma_data / 0.5`` (the residual's spread),
  ``--p-mean -2.6`` (EDM's -1.2 trains too few low noise levels for a residual's fine corrections),
  S = 32 samples for the median, DPM-Solver++(2M) SDE at 20 steps (the ODE sampler's 90% intervals were
  too narrow), and the network's conditioning input centred per window and feature on its given values
  (``--centre-condition``, the ``csdi`` backbone's ``centre_condition``: a window's level is not input).

* ``--calibrate F``: conformal intervals (``polydiff.diffusion.calibration``): the last F of the training
  part becomes calibration windows (not trained on); per task and S one widening factor is fitted there
  and the test rows also report the widened CRPS and 90% coverage (the median, so the MAE, is unchanged).
* ``--calibrate-given``: the same, fitted on the test windows' own given entries instead, as
  ``polydiff impute --calibrate given`` does (``polydiff.diffusion.calibration.calibration_task``: the
  task's mask drawn again on the given entries, sparsely for random masks, block gaps away from the real
  ones, forecasts on the windows moved on by the horizon; imputed from the rest; drawn several times for
  200 targets per factor) - no windows held back from training. One
  factor per test mask draw, fitted on that draw's windows only: another draw's given entries include
  this draw's hidden test values.

Prints one row per dataset x task x prior-fill mode x S x sampler and writes
``benchmarks/results/timeseries.json``::

    OMP_NUM_THREADS=1 python benchmarks/timeseries.py --budget 600 --modes residual none
    OMP_NUM_THREADS=1 python benchmarks/timeseries.py --budget 30 --validate 0.2 --samples 16 32 \
        --sampling dpmpp_2m:10 dpmpp_2m:20 heun:10 --p-mean -2.0     # tuning, on validation windows
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.diffusion.calibration import (
    calibration_task,
    conformal_scale,
    draw_samples,
    given_calibration,
    given_only,
    widen,
)
from polydiff.diffusion.imputation import Imputation, coverage_90, crps, impute, mae
from polydiff.diffusion.prior_fill import attach_prior_fill, resolve_prior_fill
from polydiff.diffusion.schedules import scaled_to_data
from polydiff_timeseries import CSDIBackbone, TimeSeriesDataset, load_ambient_nox, load_basic_motions
from polydiff_timeseries.baselines import BASELINES, RidgeImputer, linear_interpolation
from polydiff_timeseries.datasets import load_co2, load_csv_dataset
from polydiff_timeseries.masks import block, forecast

RESULTS = Path(__file__).parent / "results"
SIZES = {"small": {"channels": 16, "layers": 2, "heads": 2, "time_dim": 16, "feature_dim": 8, "emb_dim": 32},
         "base": {"channels": 32, "layers": 3, "heads": 4, "time_dim": 32, "feature_dim": 16, "emb_dim": 64},
         "large": {"channels": 64, "layers": 4, "heads": 8, "time_dim": 64, "feature_dim": 16, "emb_dim": 128}}
TRAIN_STRIDE = {"ambient_nox": 1, "co2": 4, "basic_motions": 0, "macro_csv": 1}  # 0: recordings, not windows
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


def validation_split(train_ds: TimeSeriesDataset, stride: int,
                     fraction: float) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
    """(train', validation) carved from the TRAINING windows only, for tuning: validation = the windows
    of the last ``fraction`` of the train part tiled without overlap, train' = the windows that end before
    it (no step shared). ``stride``: of the training windows (0: independent recordings, the last
    ``fraction`` of them held out). The test windows are not touched."""
    n, name = len(train_ds), train_ds.name
    length = train_ds.sample_shape[-1]
    if stride == 0:  # independent recordings: hold out the last ones
        cut = round(n * (1 - fraction))
        return train_ds.subset(range(cut)), train_ds.subset(range(cut, n))
    if "dropped" in train_ds.summary:
        raise ValueError(f"{name}: the train part dropped empty windows, window starts are not i * stride")
    span = (n - 1) * stride + length
    val_start = -(-round(span * (1 - fraction)) // stride) * stride  # a window start
    starts = torch.arange(n) * stride
    val = [i for i in range(n) if starts[i] >= val_start and (starts[i] - val_start) % length == 0]
    fit = [i for i in range(n) if starts[i] + length <= val_start]
    if not val:
        raise ValueError(f"{name}: validation fraction {fraction} holds no full window; raise --validate")
    return train_ds.subset(fit), train_ds.subset(val)


def _macro(directory: Path) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
    csv: dict[str, Any] = {"path": str(macro_csv(directory)), "length": 16, "stride": 1, "columns": MACRO_COLUMNS,
                           "time_column": "quarter_index"}
    return load_csv_dataset(**csv, part="train"), load_csv_dataset(**csv, part="test")


def task_strategy(task: str, length: int) -> tuple[str, dict[str, Any]]:
    """The registered mask strategy and options of a benchmark task, for windows of ``length`` steps."""
    if task.startswith("random"):
        return "random_fixed", {"ratio": int(task[6:]) / 100}
    if task == "block":
        return "block", {"max_fraction": 0.5, "feature_prob": 0.5}
    return "forecast", {"horizon": max(1, length // 4)}


def task_mask(task: str, observed: torch.Tensor, seed: int) -> torch.Tensor:
    name, options = task_strategy(task, observed.shape[-1])
    return plugins.get_mask_strategy(name).bind(options)(observed, torch.Generator().manual_seed(seed))


def given_tasks(task: str, batch: Batch, target: torch.Tensor, seed: int, args: argparse.Namespace, *,
                align: int = 1, samples: torch.Tensor | None = None) -> tuple[dict[str, Any], int]:
    """Calibration tasks on the test windows' given entries, by column suffix, and the draws per window
    (row ``i + j n`` is window ``i`` under draw ``j``): ``_given`` as ``polydiff impute --calibrate given``
    makes them (``given_calibration``: the strategy's ``calibration_task``, drawn for 200 targets per
    factor, here one factor per test mask draw), ``_given_redraw`` the strategy simply drawn again on the
    given entries (``--given-redraw``), ``_given_r`` a lower random ratio (``--given-ratio``).
    ``--given-draws N``: N draws of each instead. ``align``: the training data's ``alignment``; ``samples``:
    the test imputation's, shown by a task that takes them (``block``: its real gaps filled by a sample)."""
    name, options = task_strategy(task, target.shape[-1])
    spec = plugins.get_mask_strategy(name)
    generator = torch.Generator().manual_seed(seed)
    if args.given_draws == 0:
        cal_b, cal_t, draws = given_calibration(spec, batch, target, generator, options, groups=args.mask_draws,
                                                align=align, samples=samples)
    else:
        draws = args.given_draws
        rows = torch.arange(len(batch)).repeat(draws)
        fill = None if samples is None else draw_samples(samples, rows)
        cal_b, cal_t = calibration_task(spec, batch.select(rows), target[rows], generator, options, align=align,
                                        fill=fill)
    rows = torch.arange(len(batch)).repeat(draws)
    out = {"_given": (cal_b, cal_t)}
    own = given_only(batch.select(rows), target[rows])
    if args.given_redraw and spec.calibration_task is not None:
        out["_given_redraw"] = own, task_mask(task, own.present(), seed) * own.present()
    if task.startswith("random") and 0 < 100 * args.given_ratio < int(task[6:]):
        out["_given_r"] = own, task_mask(f"random{round(100 * args.given_ratio)}", own.present(), seed)
    return out, draws


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


def scaled(sigma_data: float, args: argparse.Namespace) -> tuple[EDM, NoiseLevels]:
    """EDM's schedule and lognormal training levels for data of spread ``sigma_data``: with ``--scale-noise``
    both are scaled by ``sigma_data / 0.5`` (EDM's defaults are tuned for sigma_data = 0.5), so a residual
    of spread 0.05 is trained and sampled at the noise levels that matter for it."""
    levels = NoiseLevels(kind="lognormal", p_mean=args.p_mean, p_std=args.p_std)
    return scaled_to_data(EDM(), levels, sigma_data) if args.scale_noise else (EDM(), levels)  # type: ignore[return-value]


def residual_units(train_ds: TimeSeriesDataset, test: TimeSeriesDataset,
                   seed: int) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
    """Both parts re-normalised so that each feature's residual ``x - linear fill`` on training masks has
    unit spread (std_k := std_k * spread_k; statistics from the training part only). A residual model
    then sees every feature's correction at the same scale: on macrodata the smooth GDP's residual is
    ~1% of its global std, the inflation's ~50%."""
    obs = train_ds.observed_mask
    target = train_mask(obs, torch.Generator().manual_seed(seed))
    given = obs * (1 - target)
    r = (train_ds.x - linear_interpolation(train_ds.x * given, given)).double() * target
    spread = (r.pow(2).sum((0, 2)) / target.sum((0, 2)).clamp_min(1)).sqrt().clamp_min(1e-3)
    stats: dict[str, Any] = {"mean": train_ds.mean, "std": train_ds.std * spread, "features": train_ds.features,
             "name": train_ds.name, "log": train_ds.log}
    return TimeSeriesDataset(train_ds.raw(), **stats), TimeSeriesDataset(test.raw(), **stats)


def train(ds: Any, mode: str, args: argparse.Namespace) -> tuple[Denoiser, EDM, dict[str, Any]]:
    """Conditional training for ``args.budget`` CPU seconds (``train.max_cpu_seconds``), EMA weights evaluated."""
    seed = args.seed
    torch.manual_seed(seed)
    net = CSDIBackbone(ds.num_features, **SIZES[args.size], centre_condition=args.centre_condition)
    sigma_data = residual_spread(ds, seed) if mode == "residual" else 1.0  # the data is normalised per feature
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=sigma_data))
    attach_prior_fill(denoiser, resolve_prior_fill(mode, plugins.get_modality("timeseries"), conditional=True))
    cfg = TrainConfig(steps=10**9, batch_size=args.batch_size, lr=args.lr, warmup_steps=50, ema_decay=args.ema,
                      grad_clip=1.0, conditional=True, label_dropout=0.0, device="cpu", seed=seed, log_every=25,
                      checkpoint_every=10**9, max_cpu_seconds=args.budget)
    schedule, levels = scaled(sigma_data, args)
    trainer = Trainer(denoiser=denoiser, dataset=ds, schedule=schedule, noise_levels=levels,
                      weighting=Weighting(kind="edm"), config=cfg, mask_strategy=train_mask)
    start = time.process_time()
    loss = trainer.fit(progress=False)["loss"]  # until max_cpu_seconds
    denoiser = trainer.apply_ema()
    return denoiser, schedule, {"steps": trainer.step, "cpu_seconds": round(time.process_time() - start, 1),
                                "sigma_data": round(sigma_data, 4), "final_loss": loss,
                                "parameters": sum(p.numel() for p in net.parameters())}


def baseline_mae(test: Any, x: torch.Tensor, given: torch.Tensor, target: torch.Tensor,
                 ridge: RidgeImputer) -> dict[str, float]:
    """MAE of the classical fills (data units) and of ridge (fitted in model units, like the model)."""
    truth = test.denormalize(x.double())
    preds = {name: fill(truth * given, given.double()) for name, fill in BASELINES.items()}
    preds["ridge"] = test.denormalize(ridge(x * given, given))
    return {name: float(((p - truth).abs() * target).sum() / target.sum()) for name, p in preds.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    torch.set_num_threads(1)
    out: dict[str, Any] = {"budget_cpu_seconds": args.budget, "samples": args.samples, "sampling": args.sampling,
                           "model": SIZES[args.size], "size": args.size, "lr": args.lr, "ema": args.ema,
                           "p_mean": args.p_mean, "p_std": args.p_std, "scale_noise": args.scale_noise,
                           "residual_units": args.residual_units, "centre_condition": args.centre_condition,
                           "validate": args.validate, "calibrate": args.calibrate,
                           "calibrate_given": args.calibrate_given,
                           "given_ratio": args.given_ratio,
                           "given_draws": args.given_draws, "datasets": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = datasets(args.datasets, Path(tmp))
    for name in args.datasets:
        train_ds, test = data[name]
        if args.validate:  # tuning: score windows carved from the training part, never the test windows
            train_ds, test = validation_split(train_ds, TRAIN_STRIDE[name], args.validate)
        cal = None
        if args.calibrate:  # conformal widths: fitted on windows carved from the training part, not trained on
            train_ds, cal = validation_split(train_ds, TRAIN_STRIDE[name], args.calibrate)
        rows = torch.arange(len(test)).repeat(args.mask_draws)  # each window under several masks
        batch = test.get_batch(rows)
        observed, x = batch.present(), batch.x
        ridge = RidgeImputer().fit(train_ds.x, train_ds.observed_mask, seed=args.seed)
        entry: dict[str, Any] = {"train_windows": len(train_ds), "test_windows": len(test),
                                 "calibration_windows": 0 if cal is None else len(cal),
                                 "mask_draws": args.mask_draws, "shape": list(test.sample_shape), "train": {},
                                 "rows": []}
        masks = {t: task_mask(t, observed, args.mask_seed) for t in args.tasks}
        if cal is not None:
            cal_batch = cal.get_batch(torch.arange(len(cal)).repeat(args.calibration_draws))
            cal_masks = {t: task_mask(t, cal_batch.present(), args.mask_seed + 1) for t in args.tasks}
        for mode in args.modes:
            fit_ds, eval_ds = train_ds, test
            if mode == "residual" and args.residual_units:
                fit_ds, eval_ds = residual_units(train_ds, test, args.seed)
            eval_batch = eval_ds.get_batch(rows)  # same windows and masks, the model's units
            denoiser, schedule, info = train(fit_ds, mode, args)
            entry["train"][mode] = info
            print(f"# {name} {mode}: {info}", flush=True)
            for task, target in masks.items():
                given = observed * (1 - target)
                base = baseline_mae(test, x, given, target, ridge)
                for sampling in args.sampling:
                    sampler, steps = sampling.split(":")
                    start = time.process_time()
                    with torch.no_grad():
                        imp = impute(denoiser, eval_batch, target, n_samples=max(args.samples), seed=args.seed,
                                     sampler=sampler, schedule=schedule, steps=int(steps), spec=eval_ds.spec,
                                     conditional_model=True, batch_size=args.batch)
                        seconds = round(time.process_time() - start, 1)  # the test windows' sampling only
                        cal_imp = None if cal is None else impute(
                            denoiser, cal_batch, cal_masks[task], n_samples=max(args.samples), seed=args.seed + 1,
                            sampler=sampler, schedule=schedule, steps=int(steps), spec=cal.spec,
                            conditional_model=True, batch_size=args.batch)
                        own_imps, draws = {}, 0
                        if args.calibrate_given:  # the task's mask again, on the test windows' given entries
                            tasks, draws = given_tasks(task, eval_batch, target, args.mask_seed + 1, args,
                                                       align=train_ds.alignment, samples=imp.samples)
                            for sfx, (cal_b, cal_t) in tasks.items():
                                own_imps[sfx] = impute(
                                    denoiser, cal_b, cal_t, n_samples=max(args.samples), seed=args.seed + 2,
                                    sampler=sampler, schedule=schedule, steps=int(steps), spec=eval_ds.spec,
                                    conditional_model=True, batch_size=args.batch)
                    for n in sorted(args.samples):
                        sub = dataclasses.replace(imp, samples=imp.samples[:, :n])
                        row = {"task": task, "mode": mode, "targets": int(target.sum()), "sampler": sampler,
                               "nfe": imp.nfe, "S": n, "sample_cpu_seconds": seconds, "mae": mae(sub, eval_ds),
                               "crps": crps(sub, eval_ds), "coverage_90": coverage_90(sub, eval_ds), **base}
                        if cal_imp is not None:
                            row.update(calibrated(sub, cal_imp, n, eval_ds))
                        if draws:
                            row["given_draws"] = draws
                        for sfx, own_imp in own_imps.items():
                            try:
                                row.update(calibrated_per_draw(sub, own_imp, n, eval_ds, len(test), sfx))
                            except ValueError as err:  # too few given entries to hide: say so in the row
                                row[f"scale{sfx}"] = row[f"crps_calibrated{sfx}"] = math.nan
                                row[f"coverage_90_calibrated{sfx}"] = math.nan
                                row[f"error{sfx}"] = str(err)
                        entry["rows"].append(row)
                        print(_line(name, row), flush=True)
        out["datasets"][name] = entry
    return out


def _rows(imp: Imputation, rows: torch.Tensor) -> Imputation:
    return dataclasses.replace(imp, samples=imp.samples[rows], truth=imp.truth[rows], given=imp.given[rows],
                               target=imp.target[rows], padding=None if imp.padding is None else imp.padding[rows],
                               cond={k: v[rows] for k, v in imp.cond.items()})


def calibrated_per_draw(imp: Imputation, own_imp: Imputation, n: int, ref: Any, windows: int,
                        suffix: str) -> dict[str, Any]:
    """Calibration on the given entries, one factor per test mask draw: rows ``d * windows ...`` of ``imp``
    are draw ``d`` of every test window, and ``own_imp`` holds those rows' given-entry calibrations (its row
    ``j`` is ``imp``'s row ``j % len(imp)``). Draw ``d``'s factor is fitted on its own rows only: another
    draw of the same window gives entries that are THIS draw's scored targets, which must not calibrate it."""
    source = torch.arange(len(own_imp)) % len(imp)
    wide = imp.samples.clone()
    scales = []
    for d in range(len(imp) // windows):
        rows = torch.arange(d * windows, (d + 1) * windows)
        cal = _rows(own_imp, torch.nonzero((source >= rows[0]) & (source <= rows[-1])).flatten())
        c = conformal_scale(dataclasses.replace(cal, samples=cal.samples[:, :n]), level=0.9)
        wide[rows] = widen(_rows(imp, rows), c).samples
        scales.append(c)
    out = dataclasses.replace(imp, samples=wide)
    return {f"scale{suffix}": sum(scales) / len(scales), f"scales{suffix}": scales,
            f"crps_calibrated{suffix}": crps(out, ref), f"coverage_90_calibrated{suffix}": coverage_90(out, ref)}


def calibrated(imp: Imputation, cal_imp: Imputation, n: int, ref: Any, suffix: str = "") -> dict[str, float]:
    """The conformal widening factor fitted on the calibration imputation's first ``n`` samples, and the test
    rows' CRPS and 90% coverage with every sample widened by it (the median, so the MAE, is unchanged)."""
    c = conformal_scale(dataclasses.replace(cal_imp, samples=cal_imp.samples[:, :n]), level=0.9)
    wide = widen(imp, c)
    return {f"scale{suffix}": c, f"crps_calibrated{suffix}": crps(wide, ref),
            f"coverage_90_calibrated{suffix}": coverage_90(wide, ref)}


COLUMNS = ("dataset", "task", "prior_fill", "MAE", "linear", "locf", "mean", "ridge", "CRPS", "cov90", "S",
           "sampler", "NFE", "CPU s", "scale", "CRPS cal", "cov90 cal")  # then "_given" ones


def _line(name: str, r: dict[str, Any]) -> str:
    vals: tuple[Any, ...] = (name, r["task"], r["mode"], f"{r['mae']:.4g}", f"{r['linear']:.4g}", f"{r['locf']:.4g}",
            f"{r['mean']:.4g}", f"{r['ridge']:.4g}", f"{r['crps']:.4f}", f"{r['coverage_90']:.3f}", r["S"],
            r["sampler"], r["nfe"], r["sample_cpu_seconds"])
    for sfx in ("", "_given", "_given_redraw", "_given_r"):
        if f"scale{sfx}" in r:
            vals += (f"{r['scale' + sfx]:.3g}", f"{r['crps_calibrated' + sfx]:.4f}",
                     f"{r['coverage_90_calibrated' + sfx]:.3f}")
    return " | ".join(str(v) for v in vals)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--budget", type=float, default=600, help="training CPU seconds per model (time.process_time)")
    p.add_argument("--samples", type=int, nargs="+", default=[32],
                   help="samples per window (S); several: scored on the first S of max(S) draws")
    p.add_argument("--sampling", nargs="+", default=["dpmpp_2m_sde:20"], help="sampler:steps, one or more")
    p.add_argument("--size", default="base", choices=list(SIZES), help="CSDI backbone size")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--ema", type=float, default=0.99, help="EMA decay of the evaluated weights")
    p.add_argument("--batch-size", type=int, default=32, help="training batch size")
    p.add_argument("--p-mean", type=float, default=-2.6, help="lognormal training noise: mean of ln sigma")
    p.add_argument("--p-std", type=float, default=1.2, help="lognormal training noise: std of ln sigma")
    p.add_argument("--scale-noise", action=argparse.BooleanOptionalAction, default=True,
                   help="scale EDM's schedule and training levels by sigma_data / 0.5 (residual mode)")
    p.add_argument("--residual-units", action=argparse.BooleanOptionalAction, default=False,
                   help="residual mode: normalise each feature by its residual spread (see residual_units)")
    p.add_argument("--centre-condition", action=argparse.BooleanOptionalAction, default=True,
                   help="centre x_cond per window and feature on its given entries' mean (level-invariant input)")
    p.add_argument("--validate", type=float, default=0.0,
                   help="tuning: score the last VALIDATE of the training part (train on the rest), not the test")
    p.add_argument("--calibrate", type=float, default=0.0,
                   help="conformal intervals: fit a widening factor per task on the last CALIBRATE of the training "
                        "part (not trained on) and report the test rows' widened CRPS and coverage too")
    p.add_argument("--calibrate-given", action="store_true",
                   help="also calibrate on the test windows' own given entries (the strategy's calibration task "
                        "on them, imputed from the rest, as polydiff impute --calibrate given): no windows held "
                        "back; columns *_given")
    p.add_argument("--given-ratio", type=float, default=0.0,
                   help="with --calibrate-given, random tasks also calibrate hiding this fraction of the given "
                        "entries when below the task's ratio (columns *_given_r): closer to the task's density")
    p.add_argument("--given-redraw", action="store_true",
                   help="with --calibrate-given, also calibrate on the task's strategy simply drawn again on the "
                        "given entries (columns *_given_redraw), beside its calibration_task")
    p.add_argument("--given-draws", type=int, default=0,
                   help="with --calibrate-given, calibration masks per test window and mask (0: as the CLI, "
                        "enough for 200 targets per factor, at most 16)")
    p.add_argument("--calibration-draws", type=int, default=8, help="masks per calibration window and task")
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
    if args.calibrate and (args.validate or args.residual_units):
        p.error("--calibrate scores the test windows: use it without --validate and --residual-units")
    results = run(args)
    print("\n" + " | ".join(COLUMNS))
    for name, entry in results["datasets"].items():
        print(f"# {name}: {entry['train_windows']} train / {entry['test_windows']} test windows {entry['shape']}, "
              f"S = {args.samples}, sampling {args.sampling}")
        for r in entry["rows"]:
            print(_line(name, r))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
