"""``polydiff impute``: hide entries of held-out items with a mask strategy, sample them S times,
save every sample and draw the picture; ``polydiff evaluate --imputations`` scores the file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff import plugins
from polydiff.diffusion.calibration import conformal_scale, given_calibration, takes_fill, widen
from polydiff.diffusion.imputation import Imputation, coverage_90, impute, interval_samples
from polydiff.diffusion.schedules import sigma_grid
from polydiff.diffusion.state import Batch
from polydiff.files import atomic_save_tensors, read_safetensors
from polydiff.reporting import report

from .config import ConfigError, check_options
from .run_split import run_data
from .runs import Run, build_schedule


def impute_run(run: Run, *, mask: str = "random_ratio", mask_options: Mapping[str, Any] | None = None,
               n: int | None = None, n_samples: int = 20, sampler: str | None = None, steps: int | None = None,
               grid: str | None = None, seed: int | None = None, progress: bool = True,
               options: Mapping[str, Any] | None = None, weights: str = "ema",
               device: str | None = None, calibrate: int | str = 0,
               sigma_max: float | str | None = None) -> tuple[Path, list[Path]]:
    """Impute the first ``n`` held-out items of a run; returns the ``.safetensors`` file and pictures.

    The target mask comes from the mask strategy ``mask`` (seeded by ``seed``: the same seed hides the
    same entries, so models and baselines are scored on identical masks). Conditional (CSDI-trained)
    runs get the given entries as conditioning; unconditional runs are steered by replacement.
    ``calibrate = K``: the LAST K held-out items (never scored) are imputed too, with the same mask
    strategy, and the 90% intervals of the scored items are widened by the split-conformal factor
    fitted on them (:func:`polydiff.diffusion.calibration.conformal_scale`; the median does not move).
    ``calibrate = "given"``: no item is held back; the mask strategy hides some of the scored items' own
    given entries again (:func:`polydiff.diffusion.calibration.given_calibration`, by the strategy's own
    ``calibration_task`` when it has one, several random draws when one hides under 200) and the factor is
    fitted on those.
    ``sigma_max``: start at this noise level instead of the schedule's largest (:func:`_started_at`); ``"8x"``:
    8 times the model's sigma_data.
    """
    from .run_grids import run_imputation_sigmas
    from .run_model import DEFAULT_BATCH, load_denoiser, positive, sampler_options

    cfg = run.config.sample
    positive(steps, "--steps")
    positive(n, "--n")
    positive(n_samples, "--n-samples")
    calibrate = _calibration(calibrate)
    held_back = 0 if calibrate == "given" else int(calibrate)
    options = sampler_options(cfg, sampler, options)
    sampler = cfg.sampler if sampler is None else sampler
    steps = cfg.steps if steps is None else steps
    grid = grid or cfg.grid
    seed = cfg.seed if seed is None else seed
    mspec = plugins.get_mask_strategy(mask)
    mask_options = check_options(mask_options or {}, mspec.options, "--mask-option", f"mask strategy {mspec.name!r}")
    try:
        strategy = mspec.bind(mask_options)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    train_ds, held_out = run_data(run)
    if len(held_out) == 0:
        raise ConfigError(f"{run.path} has no held-out data to impute (data.holdout = 0); "
                          "retrain with data.holdout > 0")
    if held_back >= len(held_out):
        raise ConfigError(f"--calibrate {calibrate} leaves none of the {len(held_out)} held-out item(s) of "
                          f"{run.path} to score; lower it or retrain with a larger data.holdout")
    n_given, asked = n is not None, 64 if n is None else n
    n = min(asked, len(held_out) - held_back)
    if n < asked:  # say it: a small held-out split is easy to miss
        source = f"--n {asked}" if n_given else f"the default --n {asked}"
        kept = f", {held_back} more calibrate the intervals" if held_back else ""
        report(f"imputing {n} held-out item(s) of {run.path}, fewer than {source}: data.holdout = "
               f"{run.config.data.holdout} of the data is held out{kept}")
    what = f"mask strategy {mask!r} with options {dict(mask_options or {})}"
    batch, target = _masked(held_out, range(n), strategy, seed, what)
    if sigma_max is not None and grid == "optimized":
        raise ConfigError("--sigma-max and --grid optimized both set the noise levels; choose one")
    denoiser = load_denoiser(run, train_ds, weights=weights, device=device)  # type: ignore[arg-type]
    schedule = build_schedule(run.config)
    sigmas, level = None, None
    if sigma_max is not None:
        level = _level(sigma_max, denoiser.parameterization.sigma_data)
        sigmas = _started_at(schedule, steps, grid, level, denoiser.parameterization.sigma_data)
    if grid == "optimized":  # fitted once on training items with this mask, saved in RUN/grids
        sigmas = run_imputation_sigmas(run, denoiser, train_ds, mask=mask, mask_options=mask_options,
                                       strategy=strategy, sampler=sampler, options=options, steps=steps,
                                       weights=weights)

    def draw(batch: Batch, target: Tensor, seed: int) -> Imputation:
        device = next(denoiser.parameters()).device
        with torch.no_grad():
            imp = impute(denoiser, batch.to(device), target.to(device), n_samples=n_samples, seed=seed,
                         sampler=plugins.get_sampler(sampler), schedule=schedule, steps=steps,
                         grid=grid, spec=train_ds.spec, conditional_model=run.config.train.conditional,
                         progress=progress, batch_size=cfg.batch_size or DEFAULT_BATCH, options=options,
                         sigmas=sigmas)
        return Imputation.from_tensors({k: v.cpu() for k, v in imp.to_tensors().items()}, nfe=imp.nfe,
                                       seconds=imp.seconds)

    scale, draws, given_task = None, 1, None
    align = int(getattr(train_ds, "alignment", 1))

    def given_task_of(samples: Tensor | None) -> tuple[Batch, Tensor, int]:
        try:
            task = given_calibration(mspec, batch, target, torch.Generator().manual_seed(seed + 1), mask_options,
                                     align=align, samples=samples)
        except ValueError as err:
            raise ConfigError(f"--calibrate given: {err}") from None
        if not task[1].any():
            raise ConfigError(f"--calibrate given: {what} hid none of the given entries; calibrate on held-out "
                              "items instead (--calibrate K)")
        return task

    if calibrate == "given":  # the scored items' given entries, hidden by the strategy's calibration task
        given_task = given_task_of(None)  # before any sampling: a task that cannot be made fails at once
    imp = draw(batch, target, seed)
    if calibrate:
        if given_task is not None:
            if takes_fill(mspec):
                given_task = given_task_of(imp.samples)  # the task shows the model's samples of the real targets
            own, cal_target, draws = given_task
            cal = draw(own, cal_target, seed + 1)
            source = (f"{int(cal_target.sum())} given entries of the scored items"
                      + (f", {draws} draws" if draws > 1 else "")
                      + (", their real targets shown as the model's samples" if takes_fill(mspec) else ""))
        else:  # items n_held - K .. n_held - 1: disjoint from the scored ones, their own mask and noise seed
            cal = draw(*_masked(held_out, range(len(held_out) - held_back, len(held_out)), strategy, seed + 1, what),
                       seed + 1)
            source = f"{held_back} held-out item(s) not scored"
        try:
            scale = conformal_scale(cal, level=0.9)
        except ValueError as err:
            raise ConfigError(f"--calibrate {calibrate}: {err}") from None
        held = (f"; their own 90% intervals held {coverage_90(cal, held_out):.2f} of their values"
                if cal.n_samples >= interval_samples(0.9) else "")
        report(f"90% intervals widened {scale:.3g}x around the median (split conformal on {source}, hidden "
               f"and imputed{held})")
        imp = widen(imp, scale)
    opts = "".join(f"-{k}{v}" for k, v in sorted((mask_options or {}).items()))
    stem = (f"{mask}{opts}-{sampler}-{'' if grid == 'karras' else grid + '-'}{steps}steps-S{n_samples}-seed{seed}"
            + ("-raw" if weights == "raw" else "") + (f"-cal{calibrate}" if calibrate else "")
            + (f"-smax{sigma_max}" if sigma_max is not None else ""))
    out_dir = run.path / "imputations"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{stem}.safetensors"
    meta = {"mask": mask, "mask_options": json.dumps(dict(mask_options or {})), "sampler": sampler,
            "steps": str(steps), "grid": grid, "seed": str(seed), "n_samples": str(n_samples),
            "nfe": str(imp.nfe), "seconds": f"{imp.seconds:.6f}", "weights": weights, **run.identity()}
    if level is not None:
        meta.update(sigma_max=f"{level:g}", sigma_max_given=str(sigma_max))
    if sigmas is not None:
        meta["sigmas"] = json.dumps([round(float(v), 6) for v in sigmas])
    if scale is not None:
        meta.update(interval_scale=f"{scale:.6g}", calibration_items=str(calibrate))
        if calibrate == "given":
            meta["calibration_draws"] = str(draws)
    atomic_save_tensors(imp.to_tensors(), path, metadata=meta)
    pictures: list[Path] = []
    modality = plugins.get_modality(run.config.modality)
    if modality.plot_imputation is not None:
        pictures.append(out_dir / f"{stem}.png")
        modality.plot_imputation(imp, pictures[-1])
    if modality.save_imputation is not None:  # media: GIF, WAV, SDF, CSV in data units...
        pictures.extend(modality.save_imputation(imp, held_out, out_dir / stem))
    return path, pictures


def _level(text: float | str, sigma_data: float | Mapping[str, float]) -> float:
    """``--sigma-max``: a noise level, or ``"<k>x"``, k times the model's (single) sigma_data."""
    value = str(text).strip()
    factor = value.endswith("x")
    try:
        number = float(value[:-1] if factor else value)
    except ValueError:
        raise ConfigError(f"--sigma-max takes a noise level or a multiple of the model's sigma_data such as 8x, "
                          f"got {text!r}") from None
    if not factor:
        return number
    if isinstance(sigma_data, Mapping):
        raise ConfigError(f"--sigma-max {value}: this model has one sigma_data per field ({dict(sigma_data)}); "
                          "give the level itself")
    return number * float(sigma_data)


def _started_at(schedule: Any, steps: int, grid: str, level: float,
                sigma_data: float | Mapping[str, float]) -> Tensor:
    """The run's sigma grid of ``steps`` started at ``level`` instead of the schedule's top. With ``--sampler
    euler --steps 1`` every sample is one denoising D(fill + level z): far above sigma_data that is close to
    the model's posterior mean given the observed entries (its median for a ``weighting.norm = "l1"`` run),
    with little of the samples' spread; the draws still differ and ``mae`` takes their median. The level is
    reported beside sigma_data because that ratio is what matters."""
    if not schedule.sigma_min < level < float("inf"):
        raise ConfigError(f"--sigma-max must be above the schedule's smallest level {schedule.sigma_min:g}, "
                          f"got {level:g}")
    spread = (", ".join(f"{level / v:.3g} x {k}'s {v:.3g}" for k, v in sigma_data.items())
              if isinstance(sigma_data, Mapping) else f"{level / sigma_data:.3g} x {sigma_data:.3g}")
    report(f"sampling from sigma {level:g} ({spread}, the model's sigma_data) instead of the schedule's "
           f"{schedule.sigma_max:g}")
    return sigma_grid(schedule, steps, grid, sigma_max=level)  # type: ignore[arg-type]


def _calibration(calibrate: int | str) -> int | str:
    """``--calibrate``: a number of held-out items >= 0, or ``"given"``."""
    if calibrate == "given":
        return calibrate
    try:
        k = int(calibrate)
    except (TypeError, ValueError):
        k = -1
    if k < 0 or str(calibrate).strip() != str(k):
        raise ConfigError(f"--calibrate must be a number of held-out items >= 0 or 'given' (the scored items' own "
                          f"given entries), got {calibrate!r}")
    return k


def _masked(held_out: Any, items: range, strategy: Any, seed: int, what: str) -> tuple[Batch, Tensor]:
    """Held-out ``items`` and the target entries the mask strategy hides in them (seeded)."""
    batch = held_out.get_batch(torch.tensor(list(items)))
    observed = batch.present()
    target = strategy(observed, torch.Generator().manual_seed(seed)).to(batch.x.dtype) * observed
    if not target.any():
        raise ConfigError(f"{what} hid no entry of the {len(items)} held-out items; choose options that hide "
                          "something")
    return batch, target


def read_imputation(path: str | Path) -> tuple[Imputation, dict[str, str]]:
    """An imputation file written by :func:`impute_run`, with its metadata."""
    tensors, meta = read_safetensors(path, "imputation file")
    try:
        imp = Imputation.from_tensors(tensors, nfe=int(meta.get("nfe", 0)), seconds=float(meta.get("seconds", 0.0)))
    except (KeyError, ValueError) as e:
        raise ConfigError(f"imputation file {path} was not written by `polydiff impute` ({e}); give a file "
                          "from RUN/imputations/") from e
    return imp, meta


def evaluate_imputation(run: Run, path: str | Path) -> dict[str, Any]:
    """Every ``task="impute"`` metric of the run's modality on an imputation file, beside the
    modality's imputation baselines scored on the same items and the same ``target`` mask
    (``results["table"]``, a :class:`~polydiff.evaluation.baselines.Scoreboard` as JSON). Also written to
    ``RUN/eval-imputation.json``."""
    from polydiff.evaluation.baselines import BaselineContext, score_imputation
    from polydiff.files import atomic_write_json

    from .run_model import json_safe

    imp, meta = read_imputation(path)
    run.check_owns(meta, Path(path), "imputation file")
    train_ds, held_out = run_data(run)
    ref = held_out.get_batch(torch.arange(min(len(imp), len(held_out))))
    if len(imp) > len(held_out) or tuple(imp.truth.shape[1:]) != tuple(ref.x.shape[1:]):
        raise ConfigError(f"imputation file {path} holds {len(imp)} items of shape {list(imp.truth.shape[1:])}, "
                          f"which do not match this run's held-out data ({len(held_out)} items of shape "
                          f"{list(ref.x.shape[1:])}); give a file written for {run.path}")
    results: dict[str, Any] = {"imputations": str(path), "n": len(imp), "n_samples": imp.n_samples,
                               "targets": int(imp.target.sum()), "mask": meta.get("mask"),
                               "nfe": imp.nfe, "seconds_per_sample": imp.seconds / max(len(imp) * imp.n_samples, 1)}
    if "interval_scale" in meta:  # `impute --calibrate`: the samples were widened around their median
        results["interval_scale"] = float(meta["interval_scale"])
        items = meta.get("calibration_items", "0")
        results["calibration_items"] = int(items) if items.isdigit() else items  # "given": the scored items
    ctx = BaselineContext(train=train_ds, held_out=held_out, n=len(imp), seed=int(meta.get("seed", 0)))
    board = score_imputation(imp, ctx, **plugins.scoring(run.config.modality))
    results.update(board.model)
    results["table"] = board.to_json()
    atomic_write_json(run.path / "eval-imputation.json", json_safe(results))
    return results


__all__ = ["evaluate_imputation", "impute_run", "read_imputation"]
