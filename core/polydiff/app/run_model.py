"""The trained model of a run, as the commands use it: its weights on a device, sampler options, the
conditioning drawn for sampling, and the checks of the numbers a user passes.

Shared by :mod:`polydiff.app.workflows` (train, sample, evaluate) and :mod:`polydiff.app.impute_workflow`, which
import it; neither imports the other at module level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal

import torch

from polydiff import plugins
from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.parameterization import Denoiser
from polydiff.diffusion.state import Batch
from polydiff.training.checkpoint import latest_checkpoint, read_checkpoint

from .config import ConfigError, check_options
from .runs import Run, build_denoiser

DEFAULT_BATCH = 1024  # samples per denoiser batch when sample.batch_size is unset: a huge --n never builds at once


Weights = Literal["ema", "raw"]


def load_denoiser(run: Run, dataset: DiffusionDataset, *, ema: bool = True, weights: Weights | None = None,
                  device: str | torch.device | None = None) -> Denoiser:
    """The run's denoiser with the weights of its latest checkpoint: ``weights = "ema"`` (default) or
    ``"raw"`` (the optimiser's); on ``device`` (default: the run's ``train.device``)."""
    ckpt_dir = latest_checkpoint(run.path)
    if ckpt_dir is None:
        raise ConfigError(f"{run.path} has no checkpoint yet; train it first (`polydiff train --resume {run.path}`)")
    ckpt = read_checkpoint(ckpt_dir)
    saved = (ckpt.state.get("extra") or {}).get("run_config") or {}
    if saved.get("modality") not in (None, run.config.modality):
        raise ConfigError(f"checkpoint {ckpt_dir} belongs to a {saved['modality']} run, but {run.path} is a "
                          f"{run.config.modality} run; it was copied from another run: remove it")
    denoiser = build_denoiser(run.config, dataset)
    use_ema = ema if weights is None else weights == "ema"
    try:
        denoiser.load_state_dict(ckpt.ema if use_ema else ckpt.model)
    except RuntimeError as e:  # missing / unexpected keys or shape mismatches
        first = str(e).strip().splitlines()[:3]
        raise ConfigError(f"checkpoint {ckpt_dir} does not fit the model of {run.path}/config.json "
                          f"({' '.join(line.strip() for line in first)}); the config or the checkpoint was "
                          "edited or copied from another run: restore it") from e
    return denoiser.eval().to(resolve_device(run, device))


def resolve_device(run: Run, device: str | torch.device | None = None) -> torch.device:
    """``device`` if given, else the run's ``train.device`` (``auto``: CUDA when available)."""
    name = str(device) if device is not None else run.config.train.device
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but CUDA is not available here: pass --device cpu")
    return torch.device(name)


def positive(value: int | None, name: str) -> None:
    """``--steps 0`` is an error, not "use the default"."""
    if value is not None and value < 1:
        raise ConfigError(f"{name} must be >= 1, got {value}")


def sampler_options(cfg: Any, sampler: str | None, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Options given, else the config's ``sample.options`` if the sampler is the config's (they
    belong to that sampler)."""
    given = dict(options) if options is not None else dict(cfg.options) if sampler in (None, cfg.sampler) else {}
    spec = plugins.get_sampler(sampler or cfg.sampler)
    checked = check_options(given, spec.options, "--sampler-option", f"sampler {spec.name!r}")
    return {k: checked[k] for k in given}  # only the given ones: file names and metadata list what was chosen


def draw_conditioning(dataset: DiffusionDataset, n: int, seed: int, cfg_scale: float | None, label: int | None,
                      run_options: dict[str, Any]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Class labels (``--label`` / ``--cfg-scale``) and, for variable sizes or per-sample conditions,
    padding and conditions drawn from the training data with ``seed``."""
    cond: dict[str, torch.Tensor] = {}
    if label is not None or cfg_scale is not None:
        if not dataset.num_classes:
            raise ConfigError("--label / --cfg-scale need a labelled dataset and a class-conditional backbone")
        if run_options.get("class_cond") is False:
            raise ConfigError("--label / --cfg-scale need a class-conditional model; this run was trained with "
                              "model.class_cond = false (train one with model.class_cond=true)")
        if label is not None and not 0 <= label < dataset.num_classes:
            raise ConfigError(f"--label must be in [0, {dataset.num_classes - 1}], got {label}")
        cond["label"] = (torch.full((n,), label) if label is not None
                         else torch.arange(n) % dataset.num_classes)
    padding = None
    data_cond = set(dataset.get_batch(torch.zeros(1, dtype=torch.long)).cond) - {"label"}
    if dataset.spec.variable or data_cond:
        # sizes (padding) and per-sample conditions (a molecular graph, a low-resolution image...) are
        # drawn from the training data, reproducibly
        idx = torch.randint(len(dataset), (n,), generator=torch.Generator().manual_seed(seed))
        drawn = dataset.get_batch(idx)
        padding = drawn.padding
        cond.update({k: v for k, v in drawn.cond.items() if k in data_cond})
    return cond, padding


def batch_of(tensors: dict[str, torch.Tensor]) -> Batch:
    """A samples file's tensors (``x``, ``padding``, ``cond.*``) as a :class:`Batch`."""
    cond = {k.removeprefix("cond."): v for k, v in tensors.items() if k.startswith("cond.")}
    return Batch(x=tensors["x"], padding=tensors.get("padding"), cond=cond)


def json_safe(results: dict[str, Any]) -> dict[str, Any]:
    """NaN / inf (a metric that does not apply, e.g. accuracy of unlabelled samples) become null:
    strict JSON has no NaN."""
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in results.items()}


__all__ = ["DEFAULT_BATCH", "Weights", "batch_of", "draw_conditioning", "json_safe", "load_denoiser", "positive",
           "resolve_device", "sampler_options"]
