"""``polydiff impute``: hide entries of held-out items with a mask strategy, sample them S times,
save every sample and draw the picture; ``polydiff evaluate --imputations`` scores the file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from polydiff import plugins
from polydiff.diffusion.imputation import Imputation, impute
from polydiff.files import atomic_save_tensors, read_safetensors
from polydiff.reporting import report

from .config import ConfigError, check_options
from .runs import Run, build_schedule, load_data


def impute_run(run: Run, *, mask: str = "random_ratio", mask_options: Mapping[str, Any] | None = None,
               n: int | None = None, n_samples: int = 10, sampler: str | None = None, steps: int | None = None,
               grid: str | None = None, seed: int | None = None, progress: bool = True,
               options: Mapping[str, Any] | None = None, weights: str = "ema",
               device: str | None = None) -> tuple[Path, list[Path]]:
    """Impute the first ``n`` held-out items of a run; returns the ``.safetensors`` file and pictures.

    The target mask comes from the mask strategy ``mask`` (seeded by ``seed``: the same seed hides the
    same entries, so models and baselines are scored on identical masks). Conditional (CSDI-trained)
    runs get the given entries as conditioning; unconditional runs are steered by replacement.
    """
    from .run_grids import run_imputation_sigmas
    from .run_model import DEFAULT_BATCH, load_denoiser, positive, sampler_options

    cfg = run.config.sample
    positive(steps, "--steps")
    positive(n, "--n")
    positive(n_samples, "--n-samples")
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
    train_ds, held_out = load_data(run.config)
    if len(held_out) == 0:
        raise ConfigError(f"{run.path} has no held-out data to impute (data.holdout = 0); "
                          "retrain with data.holdout > 0")
    n_given, asked = n is not None, 64 if n is None else n
    n = min(asked, len(held_out))
    if n < asked:  # say it: a small held-out split is easy to miss
        source = f"--n {asked}" if n_given else f"the default --n {asked}"
        report(f"imputing all {n} held-out item(s) of {run.path}, fewer than {source}: data.holdout = "
               f"{run.config.data.holdout} of the data is held out")
    batch = held_out.get_batch(torch.arange(n))
    observed = batch.present()
    target = strategy(observed, torch.Generator().manual_seed(seed)).to(batch.x.dtype) * observed
    if not target.any():
        raise ConfigError(f"mask strategy {mask!r} with options {dict(mask_options or {})} hid no entry of the "
                          f"{n} held-out items; choose options that hide something")
    denoiser = load_denoiser(run, train_ds, weights=weights, device=device)  # type: ignore[arg-type]
    sigmas = None
    if grid == "optimized":  # fitted once on training items with this mask, saved in RUN/grids
        sigmas = run_imputation_sigmas(run, denoiser, train_ds, mask=mask, mask_options=mask_options,
                                       strategy=strategy, sampler=sampler, options=options, steps=steps,
                                       weights=weights)
    batch = batch.to(next(denoiser.parameters()).device)
    target = target.to(batch.x.device)
    with torch.no_grad():
        imp = impute(denoiser, batch, target, n_samples=n_samples, seed=seed, sampler=plugins.get_sampler(sampler),
                     schedule=build_schedule(run.config), steps=steps, grid=grid, spec=train_ds.spec,
                     conditional_model=run.config.train.conditional, progress=progress,
                     batch_size=cfg.batch_size or DEFAULT_BATCH, options=options, sigmas=sigmas)
    imp = Imputation.from_tensors({k: v.cpu() for k, v in imp.to_tensors().items()}, nfe=imp.nfe,
                                  seconds=imp.seconds)
    opts = "".join(f"-{k}{v}" for k, v in sorted((mask_options or {}).items()))
    stem = (f"{mask}{opts}-{sampler}-{'' if grid == 'karras' else grid + '-'}{steps}steps-S{n_samples}-seed{seed}"
            + ("-raw" if weights == "raw" else ""))
    out_dir = run.path / "imputations"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{stem}.safetensors"
    meta = {"mask": mask, "mask_options": json.dumps(dict(mask_options or {})), "sampler": sampler,
            "steps": str(steps), "grid": grid, "seed": str(seed), "n_samples": str(n_samples),
            "nfe": str(imp.nfe), "seconds": f"{imp.seconds:.6f}", "weights": weights, **run.identity()}
    if sigmas is not None:
        meta["sigmas"] = json.dumps([round(float(v), 6) for v in sigmas])
    atomic_save_tensors(imp.to_tensors(), path, metadata=meta)
    pictures: list[Path] = []
    modality = plugins.get_modality(run.config.modality)
    if modality.plot_imputation is not None:
        pictures.append(out_dir / f"{stem}.png")
        modality.plot_imputation(imp, pictures[-1])
    if modality.save_imputation is not None:  # media: GIF, WAV, SDF, CSV in data units...
        pictures.extend(modality.save_imputation(imp, held_out, out_dir / stem))
    return path, pictures


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
    train_ds, held_out = load_data(run.config)
    ref = held_out.get_batch(torch.arange(min(len(imp), len(held_out))))
    if len(imp) > len(held_out) or tuple(imp.truth.shape[1:]) != tuple(ref.x.shape[1:]):
        raise ConfigError(f"imputation file {path} holds {len(imp)} items of shape {list(imp.truth.shape[1:])}, "
                          f"which do not match this run's held-out data ({len(held_out)} items of shape "
                          f"{list(ref.x.shape[1:])}); give a file written for {run.path}")
    results: dict[str, Any] = {"imputations": str(path), "n": len(imp), "n_samples": imp.n_samples,
                               "targets": int(imp.target.sum()), "mask": meta.get("mask"),
                               "nfe": imp.nfe, "seconds_per_sample": imp.seconds / max(len(imp) * imp.n_samples, 1)}
    ctx = BaselineContext(train=train_ds, held_out=held_out, n=len(imp), seed=int(meta.get("seed", 0)))
    board = score_imputation(imp, ctx, **plugins.scoring(run.config.modality))
    results.update(board.model)
    results["table"] = board.to_json()
    atomic_write_json(run.path / "eval-imputation.json", json_safe(results))
    return results


__all__ = ["evaluate_imputation", "impute_run", "read_imputation"]
