"""The Python API that mirrors the command line: ``polydiff.train`` and ``polydiff.load_run``.

Each method does what the CLI command of the same name does (same files in the run directory, same
defaults from the run's config) and also returns the result as tensors::

    import polydiff

    run = polydiff.train("points", out="runs/ring", overrides={"train.steps": 2000})
    samples = run.sample(n=500, sampler="dpmpp_2m", steps=10).x     # [500, 2]
    scores = run.evaluate()                                          # dict of metrics
    run = polydiff.load_run("runs/nox")                              # a conditional time-series run
    imp = run.impute(mask="forecast", mask_options={"horizon": 6}, n_samples=50)
    imp.samples.shape                                                # [n, 50, K, L]: every sample kept
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from polydiff.diffusion.imputation import Imputation
from polydiff.diffusion.parameterization import Denoiser
from polydiff.diffusion.state import Batch

if TYPE_CHECKING:
    from .runs import RunConfig


@dataclass(frozen=True)
class Samples:
    """What :meth:`TrainedRun.sample` returns: the samples and the files written for them."""

    x: torch.Tensor
    batch: Batch
    path: Path
    pictures: list[Path]
    nfe: int
    seconds: float


class TrainedRun:
    """A run directory with a checkpoint, opened for sampling, imputing and evaluating.

    Args:
        path: the run directory (``polydiff train --out PATH``).
    """

    def __init__(self, path: str | Path) -> None:
        from .runs import Run

        self._run = Run.open(path)

    @property
    def path(self) -> Path:
        return self._run.path

    @property
    def config(self) -> RunConfig:
        """The resolved run config (``config.json``)."""
        return self._run.config

    def __repr__(self) -> str:
        return f"TrainedRun({str(self.path)!r}, modality={self._run.config.modality!r})"

    def denoiser(self, *, weights: str = "ema", device: str | None = None) -> Denoiser:
        """The trained denoiser ``D(x, sigma, **cond) -> x0_hat`` (EMA weights by default)."""
        from .run_model import load_denoiser
        from .run_split import run_data

        train_ds, _ = run_data(self._run, check=False)
        return load_denoiser(self._run, train_ds, weights=weights, device=device)  # type: ignore[arg-type]

    def sample(self, *, n: int | None = None, sampler: str | None = None, steps: int | None = None,
               seed: int | None = None, grid: str | None = None, options: Mapping[str, Any] | None = None,
               cfg_scale: float | None = None, label: int | None = None, weights: str = "ema",
               device: str | None = None, progress: bool = False) -> Samples:
        """``polydiff sample``: defaults from the run's ``[sample]``; writes ``samples/`` as the CLI does."""
        from polydiff.files import read_safetensors

        from .run_model import batch_of
        from .workflows import sample_run

        out = sample_run(self._run, sampler=sampler, steps=steps, n=n, seed=seed, grid=grid, cfg_scale=cfg_scale,
                         label=label, progress=progress, options=options, weights=weights,  # type: ignore[arg-type]
                         device=device)
        batch = batch_of(read_safetensors(out.path, "samples file")[0])
        return Samples(x=batch.x, batch=batch, path=out.path, pictures=out.pictures, nfe=out.nfe, seconds=out.seconds)

    def impute(self, *, mask: str = "random_ratio", mask_options: Mapping[str, Any] | None = None,
               n: int | None = None, n_samples: int = 20, sampler: str | None = None, steps: int | None = None,
               seed: int | None = None, options: Mapping[str, Any] | None = None, weights: str = "ema",
               device: str | None = None, progress: bool = False, calibrate: int | str = 0,
               sigma_max: float | str | None = None) -> Imputation:
        """``polydiff impute`` on the run's held-out items: every one of the ``n_samples`` samples kept
        (``calibrate = K``: 90% intervals widened by split conformal prediction on the last K held-out items;
        ``"given"``: on the scored items' own given entries, hidden by the mask strategy's calibration task;
        ``sigma_max``: start at that level or ``"8x"`` the model's sigma_data, as ``--sigma-max``)."""
        from .impute_workflow import impute_run, read_imputation

        path, _ = impute_run(self._run, mask=mask, mask_options=mask_options, n=n, n_samples=n_samples,
                             sampler=sampler, steps=steps, seed=seed, progress=progress, options=options,
                             weights=weights, device=device, calibrate=calibrate, sigma_max=sigma_max)
        return read_imputation(path)[0]

    def evaluate(self, *, samples: str | Path | None = None, imputations: str | Path | None = None,
                 likelihood_n: int = 256, weights: str = "ema", device: str | None = None,
                 progress: bool = False) -> dict[str, Any]:
        """``polydiff evaluate``: the modality's metrics (and the held-out NLL), as a dict."""
        from .workflows import evaluate_run

        return evaluate_run(self._run, samples=None if samples is None else str(samples),
                            imputations=None if imputations is None else str(imputations), likelihood_n=likelihood_n,
                            progress=progress, weights=weights, device=device)  # type: ignore[arg-type]


def load_run(path: str | Path) -> TrainedRun:
    """Open a run directory written by ``polydiff train`` (or :func:`train`)."""
    return TrainedRun(path)


def train(modality: str | None = None, *, out: str | Path | None = None, config: Mapping[str, Any] | None = None,
          config_file: str | Path | None = None, overrides: Mapping[str, Any] | None = None,
          resume: str | Path | None = None, overwrite: bool = False, progress: bool = True) -> TrainedRun:
    """``polydiff train``: build and train a run; returns it opened.

    Args:
        modality: e.g. ``"points"`` (or in ``config`` / ``config_file``).
        out: the run directory (default ``runs/<modality>-<dataset>-<time>``).
        config: a config as a dict (the sections of a config file), under ``config_file`` if both are given.
        overrides: ``{"section.key": value}``, applied last, e.g. ``{"train.steps": 500}``.
        resume: continue this run directory from its last checkpoint instead.
        overwrite: replace ``out`` if it holds a finished polydiff run (never another directory).
    """
    from .workflows import train as train_workflow

    items = tuple(f"{k}={_literal(v)}" for k, v in (overrides or {}).items())
    run = train_workflow(modality, config_file=None if config_file is None else str(config_file), overrides=items,
                         out=None if out is None else str(out), resume=None if resume is None else str(resume),
                         progress=progress, overwrite=overwrite, config=config)
    return TrainedRun(run.path)


def _literal(value: Any) -> str:
    """A Python value as the TOML literal an override string holds (``parse_value`` reads it back)."""
    import json

    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "none"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_literal(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"override value {value!r} is not a bool, number, string, list or dict")


__all__ = ["Samples", "TrainedRun", "load_run", "train"]
