"""What the CLI commands do, as functions: train, sample and evaluate a run; the quickstart."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from polydiff import plugins
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.likelihood import log_likelihood
from polydiff.diffusion.sampling import sample
from polydiff.diffusion.state import Batch
from polydiff.files import atomic_save_tensors, atomic_write_json, read_safetensors
from polydiff.reporting import report
from polydiff.training.checkpoint import latest_checkpoint, read_checkpoint
from polydiff.training.trainer import Trainer

from .config import ConfigError, apply_overrides
from .config import load_file as load_config_file
from .run_grids import run_sigmas
from .run_model import (
    DEFAULT_BATCH,
    Weights,
    batch_of,
    draw_conditioning,
    json_safe,
    load_denoiser,
    positive,
    sampler_options,
)
from .run_split import run_data, save_split
from .runs import (
    Run,
    RunConfig,
    build_denoiser,
    build_schedule,
    load_data,
    resolve_config,
    training_levels,
    with_sigma_data,
)


def train(modality: str | None, *, config_file: str | None = None, overrides: tuple[str, ...] = (),
          out: str | None = None, resume: str | None = None, progress: bool = True, overwrite: bool = False,
          config: Mapping[str, Any] | None = None) -> Run:
    """Create (or resume) a run directory and train it to ``train.steps``.

    A new run is built completely (config, data, model, trainer) before its directory is written, so
    an error in any of them leaves ``out`` untouched; a start that fails later, before the first
    checkpoint, leaves a run marked incomplete that the same command reuses. ``config``: a raw config
    dict (as a config file holds), instead of or under ``config_file``.
    """
    if resume:
        if modality or config_file or overrides:
            raise ConfigError("--resume continues a run with its saved config; drop MODALITY, --config "
                              "and overrides (or start a new run with --out)")
        run = Run.open(resume)
        dataset, _ = run_data(run)
        run.fix_sigma_data(dataset)
        trainer = _trainer(run.config, dataset, run.path)
    else:
        raw = json.loads(json.dumps(dict(config or {})))
        raw.update(load_config_file(config_file) if config_file else {})
        if modality:
            raw["modality"] = modality
        resolved = resolve_config(apply_overrides(raw, overrides))
        path = Run.target(resolved, out)
        Run.check_target(path, overwrite=overwrite)  # before the (possibly long) data loading
        dataset, held_out = load_data(resolved)
        resolved = with_sigma_data(resolved, dataset)
        trainer = _trainer(resolved, dataset, path)
        run = Run.create(resolved, path, overwrite=overwrite)
        if int(os.environ.get("RANK", "0")) == 0:  # under torchrun rank 0 writes
            save_split(run.path, held_out)
    trainer.fit(progress=progress)
    return run


def _trainer(config: RunConfig, dataset: DiffusionDataset, path: Path) -> Trainer:
    masks = plugins.get_mask_strategy(config.train.mask_strategy).bind(config.train.mask_options) \
        if config.train.conditional else None
    return Trainer(denoiser=build_denoiser(config, dataset), dataset=dataset, schedule=build_schedule(config),
                   noise_levels=training_levels(config), weighting=config.weighting, config=config.train, run_dir=path,
                   run_config=config.to_dict(), mask_strategy=masks)


@dataclass
class SampleOutput:
    path: Path
    pictures: list[Path]
    nfe: int
    seconds: float


def sample_run(run: Run, *, sampler: str | None = None, steps: int | None = None, n: int | None = None,
               seed: int | None = None, grid: str | None = None, cfg_scale: float | None = None,
               label: int | None = None, progress: bool = True, animate: bool = False,
               options: Mapping[str, Any] | None = None, weights: Weights = "ema",
               device: str | None = None) -> SampleOutput:
    """Sample from a trained run; writes samples (safetensors + metadata JSON) and pictures; with
    ``animate``, also a GIF of the denoising trajectory drawn by the modality's ``plot_samples``.
    ``options``: the sampler's (default: ``sample.options`` when the sampler is ``sample.sampler``);
    ``weights``: ``ema`` or ``raw``; ``device``: default the run's ``train.device``."""
    cfg = run.config.sample
    positive(steps, "--steps")
    positive(n, "--n")
    options = sampler_options(cfg, sampler, options)
    sampler = cfg.sampler if sampler is None else sampler
    steps = cfg.steps if steps is None else steps
    n = cfg.n if n is None else n
    seed = cfg.seed if seed is None else seed
    grid = grid or cfg.grid
    cfg_scale = cfg.cfg_scale if cfg_scale is None else cfg_scale
    train_ds, _ = run_data(run, check=False)  # sampling scores no held-out item
    denoiser = load_denoiser(run, train_ds, weights=weights, device=device)
    if run.config.train.conditional:
        raise ConfigError(f"{run.path} is a conditional (masked) model: it samples given observed values; "
                          f"use `polydiff impute {run.path} --mask NAME` (or polydiff.impute in Python)")
    cond, padding = draw_conditioning(train_ds, n, seed, cfg_scale, label, run.config.model.options)
    sigmas = run_sigmas(run, denoiser, train_ds, sampler=sampler, options=options, steps=steps,
                        weights=weights) if grid == "optimized" else None  # fitted once, saved in RUN/grids
    common = dict(shape=train_ds.sample_shape, seed=seed, sampler=plugins.get_sampler(sampler),
                  schedule=build_schedule(run.config), steps=steps, grid=grid, spec=train_ds.spec, cfg_scale=cfg_scale,
                  options=options, device=next(denoiser.parameters()).device, sigmas=sigmas)
    common["batch_size"] = cfg.batch_size or DEFAULT_BATCH
    with torch.no_grad():
        result = sample(denoiser, n=n, padding=padding, cond=cond, progress=progress,
                        **common)  # type: ignore[arg-type]
        # Per-sample seeds make the first k samples identical in a smaller run: redo those k with
        # their trajectory for the picture instead of storing every step of all n.
        k = min(n, plugins.get_modality(run.config.modality).trajectory_items)
        trajectory = sample(denoiser, n=k, padding=None if padding is None else padding[:k],
                            cond={key: v[:k] for key, v in cond.items()}, keep_trajectory=True, progress=progress,
                            **common).trajectory or []  # type: ignore[arg-type]
    result.x = result.x.cpu()
    named = "".join(f"-{k}{v}" for k, v in sorted(options.items()))
    stem = f"{sampler}{named}-{grid}-{steps}steps-seed{seed}" + (f"-cfg{cfg_scale:g}" if cfg_scale else "") + (
        f"-label{label}" if label is not None else "") + ("-raw" if weights == "raw" else "")
    tensors = {"x": result.x.contiguous()}
    if padding is not None:
        tensors["padding"] = padding.contiguous()
    tensors.update({f"cond.{k}": v.contiguous() for k, v in cond.items()})
    path = run.samples_dir / f"{stem}.safetensors"
    atomic_save_tensors(tensors, path, metadata={
        "sampler": sampler, "options": json.dumps(options), "steps": str(steps), "grid": grid, "seed": str(seed),
        "nfe": str(result.nfe), "seconds": f"{result.seconds:.6f}", "n": str(n), "weights": weights,
        **({} if sigmas is None else {"sigmas": json.dumps(sigmas.tolist())}), **run.identity()})
    pictures = _pictures(run, stem, batch_of(tensors), train_ds, trajectory, padding)
    if animate:
        from .animation import animate_trajectory

        frames = [Batch(x=x, padding=None if padding is None else padding[:len(x)],
                        cond={key: v[:len(x)] for key, v in cond.items()}) for x in trajectory]
        pictures.append(animate_trajectory(plugins.get_modality(run.config.modality), frames,
                                           run.samples_dir / f"{stem}-trajectory.gif"))
    if run.config.train.log == "tensorboard":
        from polydiff.training.metrics_log import log_pictures

        ckpt = latest_checkpoint(run.path)
        log_pictures(run.path, read_checkpoint(ckpt).step if ckpt else 0, pictures)
    return SampleOutput(path=path, pictures=pictures, nfe=result.nfe, seconds=result.seconds)


def _pictures(run: Run, stem: str, samples: Batch, dataset: DiffusionDataset,
              trajectory: list[torch.Tensor], padding: torch.Tensor | None) -> list[Path]:
    modality = plugins.get_modality(run.config.modality)
    out: list[Path] = []
    ref = dataset.get_batch(torch.arange(min(len(dataset), len(samples))))
    if modality.plot_samples is not None:
        out.append(run.samples_dir / f"{stem}.png")
        modality.plot_samples(samples, ref, out[-1])
    if modality.plot_trajectory is not None and trajectory:
        frames = [Batch(x=x, padding=None if padding is None else padding[:len(x)]) for x in trajectory]
        out.append(run.samples_dir / f"{stem}-trajectory.png")
        modality.plot_trajectory(frames, out[-1])
    if modality.save_samples is not None:
        out.extend(modality.save_samples(samples, run.samples_dir / stem))
    return out


def evaluate_run(run: Run, *, samples: str | None = None, imputations: str | None = None, likelihood_n: int = 256,
                 progress: bool = True, weights: Weights = "ema", device: str | None = None) -> dict[str, Any]:
    """Metrics of a run's samples against held-out data, plus probability-flow likelihood; with
    ``imputations`` (a file from ``polydiff impute``), the imputation metrics of that file instead.

    The modality's baselines (trivial methods, floors, ceilings) are scored with the same metrics on
    the same held-out items: ``results["table"]`` is that :class:`~polydiff.evaluation.baselines.Scoreboard` as
    JSON; the model's own scores also stay top-level keys."""
    if imputations is not None:
        from .impute_workflow import evaluate_imputation

        return evaluate_imputation(run, imputations)
    if run.config.train.conditional:
        raise ConfigError(f"{run.path} is a conditional (masked) model: evaluate its imputations "
                          f"(`polydiff impute {run.path}`, then `polydiff evaluate {run.path} --imputations FILE`)")
    if likelihood_n < 0:
        raise ConfigError(f"--likelihood-n must be >= 0 (0 skips the likelihood), got {likelihood_n}")
    path = Path(samples) if samples else _latest_samples(run)
    if path is None:
        cfg = run.config.sample
        report(f"no samples in {run.samples_dir} yet: drawing sample.n = {cfg.n} with {cfg.sampler} ({cfg.steps} "
               f"steps) first; `polydiff sample {run.path} --n N` draws fewer")
        path = sample_run(run, progress=progress, weights=weights, device=device).path
    tensors, meta = read_safetensors(path, "samples file")
    if "x" not in tensors or "sampler" not in meta:
        raise ConfigError(f"samples file {path} was not written by `polydiff sample`; give one of "
                          f"{run.samples_dir}/*.safetensors")
    run.check_owns(meta, path, "samples file")
    batch = batch_of(tensors)
    from polydiff.evaluation.baselines import BaselineContext, score_samples

    train_ds, held_out = run_data(run)
    results: dict[str, Any] = {"samples": str(path), "n": len(batch)}
    ctx = BaselineContext(train=train_ds, held_out=held_out, n=len(batch), seed=int(meta.get("seed", 0)),
                          sample=_sampler_of(run, meta, held_out, len(batch)), cond=dict(batch.cond),
                          padding=batch.padding)
    board = score_samples(batch, ctx, **plugins.scoring(run.config.modality))
    results.update(board.model)
    if likelihood_n > 0 and run.config.weighting.norm == "l1":
        report(f"{run.path}: no likelihood (nll_nats_per_dim): it needs a denoiser of the posterior mean "
               "(weighting.norm = l2), and this run learnt the median (l1)")
    elif likelihood_n > 0:  # 0: skip (a comparison grid computes it once per trained model)
        results["nll_nats_per_dim"] = held_out_nll(run, likelihood_n, weights=weights, device=device)
    if "seconds" in meta:
        results["seconds_per_sample"] = float(meta["seconds"]) / max(len(batch), 1)
        results["nfe"] = int(meta["nfe"])
    results["table"] = board.to_json()
    atomic_write_json(run.path / "eval.json", json_safe(results))
    return results


def _sampler_of(run: Run, meta: Mapping[str, str], data: DiffusionDataset,
                n: int) -> Callable[[Callable[..., torch.Tensor]], torch.Tensor]:
    """Draws ``n`` samples from a denoiser with the sampler settings recorded in a samples file
    (for denoiser baselines: the same sampler, steps, grid, options and seed as the model's)."""
    def draw(denoiser: Callable[..., torch.Tensor]) -> torch.Tensor:
        with torch.no_grad():
            return sample(denoiser, shape=data.sample_shape, n=n, seed=int(meta.get("seed", 0)),
                          sampler=plugins.get_sampler(meta["sampler"]), schedule=build_schedule(run.config),
                          steps=int(meta["steps"]), grid=meta["grid"], spec=data.spec,
                          options=json.loads(meta.get("options") or "{}"),
                          sigmas=torch.tensor(json.loads(meta["sigmas"])) if meta.get("sigmas") else None).x

    return draw


def held_out_nll(run: Run, n: int, *, weights: Weights = "ema", device: str | None = None) -> float:
    """Probability-flow NLL (nats per real dimension) of ``n`` held-out items under the run's model;
    exact divergence up to 32 dimensions, Hutchinson's estimator above."""
    train_ds, held_out = run_data(run)
    ref = held_out.get_batch(torch.arange(min(n, len(held_out))))
    dim = math.prod(train_ds.sample_shape)
    denoiser = load_denoiser(run, train_ds, weights=weights, device=device)
    dev = next(denoiser.parameters()).device
    ref = ref.to(dev)
    ll = log_likelihood(denoiser, ref.x, schedule=build_schedule(run.config), spec=train_ds.spec,
                        padding=ref.padding, method="exact" if dim <= 32 else "hutchinson", cond=ref.cond or None)
    return float(-ll.nats_per_dim.mean())


def _latest_samples(run: Run) -> Path | None:
    files = sorted(run.samples_dir.glob("*.safetensors"), key=lambda p: p.stat().st_mtime)
    return files[-1] if files else None


QUICKSTART = {
    "modality": "points",
    "data": {"dataset": "ring", "n": 8192},
    "model": {"backbone": "mlp", "width": 128, "depth": 3},
    "schedule": {"name": "edm"},
    "noise_levels": {"kind": "lognormal"},
    "weighting": {"kind": "edm"},
    "train": {"steps": 6000, "batch_size": 512, "lr": 2e-3, "checkpoint_every": 2000},
    "sample": {"sampler": "heun", "steps": 24, "n": 2000},
}


def quickstart(out: str = "runs/quickstart", *, steps: int | None = None, progress: bool = True,
               overwrite: bool = False) -> dict[str, Any]:
    """Train the points toy, sample, evaluate against the exact denoiser, and draw pictures.

    ``out`` must be new or empty, or a polydiff run replaced only with ``overwrite``."""
    start = time.perf_counter()
    positive(steps, "--steps")
    raw = json.loads(json.dumps(QUICKSTART))
    if steps is not None:
        raw["train"]["steps"] = steps
        raw["train"]["checkpoint_every"] = min(steps, raw["train"]["checkpoint_every"])
    run = train(None, config=raw, out=out, progress=progress, overwrite=overwrite)
    sampled = sample_run(run, progress=progress)
    metrics = evaluate_run(run, samples=str(sampled.path), progress=progress)
    metrics.update(_exact_references(run, int(metrics["n"])))
    return {"run": str(run.path), "samples": str(sampled.path), "pictures": [str(p) for p in sampled.pictures],
            "metrics": metrics, "seconds": time.perf_counter() - start}


def _exact_references(run: Run, n: int) -> dict[str, float]:
    """For the points toy: the same sampler driven by the EXACT denoiser, and fresh data, both
    against the held-out set, so the learnt model's number has a ceiling and a floor beside it
    (the ``exact_denoiser`` and ``fresh_data`` rows of ``eval.json``'s table; computed here when
    that table lacks them)."""
    from polydiff.evaluation.baselines import BaselineContext, Scoreboard
    from polydiff.modalities.points import exact_denoiser_samples, fresh_mixture_samples

    saved = run.path / "eval.json"
    rows = {}
    if saved.is_file():
        table = json.loads(saved.read_text()).get("table")
        rows = {r.method: r.scores for r in Scoreboard.from_json(table).rows} if table else {}
    train_ds, held_out = run_data(run)
    if getattr(held_out, "mixture", None) is None:
        return {}
    if not {"exact_denoiser", "fresh_data"} <= set(rows):
        cfg = run.config.sample
        meta = {"seed": str(cfg.seed), "sampler": cfg.sampler, "steps": str(cfg.steps), "grid": cfg.grid,
                "options": json.dumps(cfg.options)}
        ctx = BaselineContext(train=train_ds, held_out=held_out, n=min(n, len(held_out)), seed=cfg.seed,
                              sample=_sampler_of(run, meta, held_out, min(n, len(held_out))))
        for name, make in (("exact_denoiser", exact_denoiser_samples), ("fresh_data", fresh_mixture_samples)):
            batch = make(ctx)
            rows[name] = {m.name: m.fn(batch, held_out) for m in plugins.metrics("points") if m.task == "generate"}
    out: dict[str, float] = {}
    for name, prefix in (("exact_denoiser", "exact_denoiser_"), ("fresh_data", "data_")):
        out.update({prefix + k: v for k, v in rows[name].items() if k in ("sliced_w2", "true_nll") and v is not None})
    out.update(_fresh_data_spread(held_out, n))
    return out


def _fresh_data_spread(held_out: Any, n: int, draws: int = 8) -> dict[str, float]:
    """Sliced W2 of ``draws`` independent sets of exact samples against the held-out points: its mean
    and standard deviation are what exact samples score at this size, and how much one number moves
    (with ~800 held-out points one draw ranges 0.14-0.19 on the ring, so a single draw is no floor)."""
    from polydiff.diffusion.state import Batch
    from polydiff.evaluation.metrics import sliced_w2

    m = min(n, len(held_out))
    scores = torch.tensor([sliced_w2(Batch(x=held_out.mixture.sample(m, torch.Generator().manual_seed(10_000 + k))[0]),
                                     held_out) for k in range(draws)], dtype=torch.float64)
    return {"data_sliced_w2": float(scores.mean()), "data_sliced_w2_sd": float(scores.std()),
            "data_points": float(m), "data_draws": float(draws)}


__all__ = ["RunConfig", "SampleOutput", "evaluate_run", "held_out_nll", "json_safe", "load_denoiser", "quickstart",
           "sample_run", "train"]
