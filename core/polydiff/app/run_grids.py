"""Optimised sigma grids stored with a run (``sample.grid = "optimized"``).

A grid is fitted once per (sampler, options, steps, weights) on the run's latest checkpoint by
:func:`polydiff.diffusion.grids.optimize_grid`, from :data:`CALIBRATION` seeded noise draws (sizes and
per-sample conditions drawn from the training data as sampling draws them), and written atomically to
``RUN/grids/<sampler>[-<option><value>...]-<steps>[-raw].json`` beside the checkpoint it was fitted
on. Later calls reuse the file; a newer checkpoint refits it. Imputation has grids of its own
(``RUN/grids/impute-<mask>[-<option><value>...]-<sampler>...json``), fitted on up to
:data:`CALIBRATION` *training* items with the mask strategy's entries hidden
(:func:`polydiff.diffusion.imputation.imputation_grid`), never on the held-out items they impute.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from polydiff import plugins
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.grids import optimize_grid
from polydiff.diffusion.imputation import imputation_grid
from polydiff.files import atomic_write_json, read_json
from polydiff.training.checkpoint import latest_checkpoint

from .runs import Run, build_schedule

CALIBRATION = 256  # noise draws the grid is fitted on
CALIBRATION_SEED = 7919  # a seed of its own: the grid does not depend on the sampling seed


def grid_path(run: Run, sampler: str, options: Mapping[str, Any], steps: int, weights: str = "ema",
              prefix: str = "") -> Path:
    named = "".join(f"-{k}{v}" for k, v in sorted(options.items()))
    return run.path / "grids" / f"{prefix}{sampler}{named}-{steps}{'-raw' if weights == 'raw' else ''}.json"


def _saved(path: Path, checkpoint: str, steps: int) -> torch.Tensor | None:
    """The grid stored at ``path`` if it was fitted on ``checkpoint`` with ``steps`` steps."""
    if path.is_file():
        saved = read_json(path, "optimized sigma grid")
        if saved.get("checkpoint") == checkpoint and len(saved.get("sigmas", [])) == steps + 1:
            return torch.tensor(saved["sigmas"], dtype=torch.float32)
    return None


def run_sigmas(run: Run, denoiser: torch.nn.Module, dataset: DiffusionDataset, *, sampler: str,
               options: Mapping[str, Any], steps: int, weights: str = "ema") -> torch.Tensor:
    """The run's optimised grid for this sampler and step count: read from ``RUN/grids`` when it was
    fitted on the latest checkpoint, else fitted now and saved."""
    from .run_model import draw_conditioning  # sizes and conditions drawn from the data, as sample_run does

    path = grid_path(run, sampler, options, steps, weights)
    checkpoint = _checkpoint_name(run)
    saved = _saved(path, checkpoint, steps)
    if saved is not None:
        return saved
    cond, padding = draw_conditioning(dataset, CALIBRATION, CALIBRATION_SEED, None, None, run.config.model.options)
    device = next(denoiser.parameters()).device
    with torch.no_grad():
        found = optimize_grid(denoiser, shape=dataset.sample_shape, steps=steps, sampler=plugins.get_sampler(sampler),
                              schedule=build_schedule(run.config), calibration=CALIBRATION, seed=CALIBRATION_SEED,
                              options=options, spec=dataset.spec,
                              padding=None if padding is None else padding.to(device),
                              cond={k: v.to(device) for k, v in cond.items()}, device=device)
    record = {"sampler": sampler, "options": json.loads(json.dumps(dict(options))), "steps": steps,
              "weights": weights, "checkpoint": checkpoint, "calibration": CALIBRATION,
              "calibration_seed": CALIBRATION_SEED, **found.to_json(), **run.identity()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return found.sigmas


def _checkpoint_name(run: Run) -> str:
    ckpt = latest_checkpoint(run.path)
    return ckpt.name if ckpt is not None else ""


def run_imputation_sigmas(run: Run, denoiser: torch.nn.Module, dataset: DiffusionDataset, *, mask: str,
                          mask_options: Mapping[str, Any], strategy: Callable[[torch.Tensor, Any], torch.Tensor],
                          sampler: str, options: Mapping[str, Any], steps: int, weights: str = "ema") -> torch.Tensor:
    """The run's optimised grid for imputing with this mask strategy, sampler and step count: read from
    ``RUN/grids`` when fitted on the latest checkpoint, else fitted on training items and saved."""
    named = "".join(f"-{k}{v}" for k, v in sorted(mask_options.items()))
    path = grid_path(run, sampler, options, steps, weights, prefix=f"impute-{mask}{named}-")
    checkpoint = _checkpoint_name(run)
    saved = _saved(path, checkpoint, steps)
    if saved is not None:
        return saved
    items = min(CALIBRATION, len(dataset))
    pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(CALIBRATION_SEED))[:items]
    device = next(denoiser.parameters()).device
    batch = dataset.get_batch(pick)
    target = strategy(batch.present(), torch.Generator().manual_seed(CALIBRATION_SEED)).to(batch.x.dtype)
    batch, target = batch.to(device), target.to(device)
    with torch.no_grad():
        found = imputation_grid(denoiser, batch, target, steps=steps, sampler=plugins.get_sampler(sampler),
                                schedule=build_schedule(run.config), spec=dataset.spec,
                                conditional_model=run.config.train.conditional, options=options,
                                seed=CALIBRATION_SEED, device=device)
    record = {"task": "impute", "mask": mask, "mask_options": json.loads(json.dumps(dict(mask_options))),
              "sampler": sampler, "options": json.loads(json.dumps(dict(options))), "steps": steps,
              "weights": weights, "checkpoint": checkpoint, "calibration_items": items,
              "calibration_seed": CALIBRATION_SEED, **found.to_json(), **run.identity()}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)
    return found.sigmas


__all__ = ["CALIBRATION", "grid_path", "run_imputation_sigmas", "run_sigmas"]
