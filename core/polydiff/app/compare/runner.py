"""Run a comparison grid: train each cell once, then measure every (sampler, NFE) from its checkpoint.

Everything lands in ``OUT/cells/<cell>/``: the run directory, ``train.json`` once training is done
and one ``eval/<sampler>-nfe<k>.json`` per measurement (``<sampler>-<sigma grid>-nfe<k>.json`` when
the grid lists ``sigma_grids``, the sampler then reported as ``<sampler>@<sigma grid>``), each written
atomically. A killed grid therefore resumes where it stopped (training from its last checkpoint,
finished measurements are never recomputed), and independent workers (``--shard i/n``: a Slurm job
array, GNU parallel, ``torchrun`` jobs) can share one results directory on a shared file system.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from polydiff import plugins
from polydiff.app.config import ConfigError
from polydiff.app.runs import Run
from polydiff.files import read_json

from .grid import Grid, TrainCell, load_grid, shard


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=float) + "\n")
    tmp.replace(path)  # atomic: a reader (or a resumed grid) never sees half a file


def _last_losses(run: Run) -> dict[str, float]:
    """The last logged training loss per noise-level bin (``metrics.jsonl``)."""
    log = run.path / "metrics.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()] if log.exists() else []
    rows = [r for r in rows if "loss_by_sigma" in r]
    return dict(rows[-1]["loss_by_sigma"]) if rows else {}


def train_cell(cell: TrainCell, cell_dir: Path, *, likelihood_n: int, progress: bool) -> dict[str, Any]:
    """Train (or resume) the cell's run; returns and records the training summary."""
    from polydiff.app.workflows import train

    done = cell_dir / "train.json"
    if done.exists():
        return read_json(done, "cell summary")
    run_dir = cell_dir / "run"
    if (run_dir / "config.json").exists():
        run = train(None, resume=str(run_dir), progress=progress)
    else:
        cell_dir.mkdir(parents=True, exist_ok=True)
        run = Run.create(cell.config, run_dir)
        run = train(None, resume=str(run.path), progress=progress)
    rows = [json.loads(line) for line in (run.path / "metrics.jsonl").read_text().splitlines() if line.strip()]
    summary = {**cell.key, "steps": rows[-1]["step"] if rows else 0,
               "train_seconds": rows[-1].get("seconds") if rows else None,
               "final_loss": rows[-1].get("loss") if rows else None, "loss_by_sigma": _last_losses(run)}
    summary["nll_nats_per_dim"] = _likelihood(run, likelihood_n, cell.config.train.conditional
                                              or cell.config.weighting.norm == "l1")
    _write_json(done, summary)
    return summary


def _likelihood(run: Run, n: int, skip: bool) -> float | None:
    from polydiff.app.workflows import held_out_nll

    # skipped: a masked model's density is conditional on the given entries (not comparable), and an
    # l1 model's denoiser is a median, which the probability flow cannot turn into a score
    return None if n <= 0 or skip else held_out_nll(run, n)


def measure(cell: TrainCell, grid: Grid, sampler: str, nfe: int, cell_dir: Path,
            sigma_grid: str | None = None) -> dict[str, Any]:
    """Sample (or impute, for a conditional model) at one NFE and score with every metric; ``sigma_grid``:
    the grid to sample on (``None``: the run's ``sample.grid``; ``optimized`` is fitted once and saved in
    the cell's run)."""
    from polydiff.app.impute_workflow import evaluate_imputation, impute_run
    from polydiff.app.workflows import evaluate_run, sample_run

    label = sampler if sigma_grid is None else f"{sampler}@{sigma_grid}"
    name = f"{sampler}-nfe{nfe}" if sigma_grid is None else f"{sampler}-{sigma_grid}-nfe{nfe}"
    out = cell_dir / "eval" / f"{name}.json"
    if out.exists():
        return read_json(out, "measurement")
    out.parent.mkdir(exist_ok=True)
    run = Run.open(cell_dir / "run")
    steps = plugins.get_sampler(sampler).steps_for_nfe(nfe)
    if cell.config.train.conditional:
        spec = dict(grid.impute.get(cell.modality, {}))
        path, _ = impute_run(run, mask=spec.pop("mask", "random_ratio"), mask_options=spec.pop("mask_options", {}),
                             n=spec.pop("n", 64), n_samples=spec.pop("n_samples", 20), sampler=sampler, steps=steps,
                             grid=sigma_grid, progress=False)
        scores = evaluate_imputation(run, path)
        task = "impute"
    else:
        sampled = sample_run(run, sampler=sampler, steps=steps, n=grid.n_samples, grid=sigma_grid, progress=False)
        scores = evaluate_run(run, samples=str(sampled.path), likelihood_n=0, progress=False)
        task = "generate"
    metrics = {k: v for k, v in scores.items() if isinstance(v, int | float) and k not in ("n", "n_samples", "targets")}
    result = {**cell.key, "task": task, "sampler": label, "steps": steps, **metrics}
    _write_json(out, result)
    return result


def run_grid(grid_file: str, out: str | Path, *, overrides: tuple[str, ...] | list[str] = (),
             shard_spec: str | None = None, progress: bool = True) -> Path:
    """Run (or resume) the grid's cells (those of ``shard_spec``) under ``out``; returns ``out``."""
    out = Path(out)
    grid = load_grid(grid_file, overrides)
    out.mkdir(parents=True, exist_ok=True)
    saved = out / "grid.json"
    if saved.exists() and read_json(saved, "grid record") != json.loads(json.dumps(dict(grid.raw), default=str)):
        raise ConfigError(f"{out} holds results of a different grid (see {saved}); choose another --out "
                          "or delete it to start over")
    if not saved.exists():
        _write_json(saved, dict(grid.raw))
    cells = list(shard(grid.cells, shard_spec))
    total = len(cells) * (1 + grid.measurements_per_cell())
    bar = tqdm(total=total, desc="grid", unit="job", disable=not progress)
    start = time.perf_counter()
    for cell in cells:
        cell_dir = out / "cells" / cell.slug
        bar.set_description(f"train {cell.modality}/{cell.schedule}/{cell.parameterization}/{cell.weighting}/"
                            f"seed{cell.seed}")
        train_cell(cell, cell_dir, likelihood_n=grid.likelihood, progress=False)
        bar.update(1)
        for sampler in grid.samplers:
            for sigma_grid in grid.sigma_grids:
                for nfe in grid.nfe:
                    bar.set_description(f"sample {cell.modality} {sampler} {sigma_grid or ''} NFE {nfe}")
                    measure(cell, grid, sampler, nfe, cell_dir, sigma_grid)
                    bar.update(1)
    bar.close()
    if progress:
        print(f"grid: {len(cells)} cell(s) done in {time.perf_counter() - start:.0f} s under {out}")
    return out


__all__ = ["measure", "run_grid", "train_cell"]
