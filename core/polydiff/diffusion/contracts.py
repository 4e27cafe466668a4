"""The descriptions of the maths layer's two pluggable algorithms, samplers and target-mask strategies.

They live here, below the plugin layer, because :func:`polydiff.diffusion.sampling.sample` and the
conditional trainer take them as arguments; :mod:`polydiff.plugins.specs` re-exports them beside the
other plugin contracts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch
from torch import Tensor

from polydiff.options import FROM_SIGNATURE, check_options, signature_options

if TYPE_CHECKING:
    from .state import Batch


class SamplerFn(Protocol):
    """``fn(denoiser, x, sigmas, *, noise=None, callback=None, **options) -> x0``, every option a keyword
    with a default (mypy checks it)."""

    def __call__(self, denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, /, *, noise: Any = None,
                 callback: Any = None) -> Tensor: ...


class MaskFn(Protocol):
    """``fn(observed, generator, **options) -> target``, every option a keyword with a default."""

    def __call__(self, observed: Tensor, generator: torch.Generator, /) -> Tensor: ...


class CalibrationTaskFn(Protocol):
    """``fn(own, target, generator, *, align, fill, **options) -> (batch, calibration_target)``, with the
    strategy's options and (each when ``fn`` takes it) the training items' ``alignment`` and the model's own
    imputation of the real targets."""

    def __call__(self, own: Batch, target: Tensor, generator: torch.Generator, /) -> tuple[Batch, Tensor]: ...


@dataclass(frozen=True, kw_only=True)
class SamplerSpec:
    """A sampler: ``fn(denoiser, x, sigmas, *, noise, callback, **options) -> x0``.

    ``evals_per_step``: denoiser calls per step (Heun: 2, except its last step), so tables can be
    compared at equal NFE. ``options``: accepted options with defaults (e.g. ``{"eta": 0.0}``); by
    default ``fn``'s keyword defaults (but ``noise`` and ``callback``).
    """

    name: str
    fn: SamplerFn
    description: str
    stochastic: bool = False
    evals_per_step: int = 1
    options: Mapping[str, Any] = FROM_SIGNATURE

    def __post_init__(self) -> None:
        if self.options is FROM_SIGNATURE and callable(self.fn):
            object.__setattr__(self, "options", signature_options(self.fn, exclude=("noise", "callback")))

    def nfe(self, steps: int) -> int:
        """Denoiser evaluations for ``steps`` steps (the last step to sigma = 0 is a single call)."""
        return steps if self.evals_per_step == 1 else self.evals_per_step * (steps - 1) + 1

    def steps_for_nfe(self, nfe: int) -> int:
        """The largest number of steps whose NFE does not exceed ``nfe`` (at least 1)."""
        if self.evals_per_step == 1:
            return max(1, nfe)
        return max(1, (nfe - 1) // self.evals_per_step + 1)


@dataclass(frozen=True, kw_only=True)
class MaskStrategySpec:
    """How target entries are picked among the observed ones: in conditional training (the loss
    counts the targets) and in evaluation (``polydiff impute`` hides the targets and scores them).

    ``fn(observed, generator, **options) -> target``: both packed-shape float masks, target <=
    observed; ``options`` lists the accepted keyword options with their defaults (by default ``fn``'s
    keyword defaults).

    ``calibration_task(own, target, generator, *, align, **options) -> (batch, calibration_target)`` (optional):
    how ``polydiff impute --calibrate given`` makes a calibration task from the scored items' given
    entries. ``own`` is the batch with the real targets removed
    (:func:`polydiff.diffusion.calibration.given_only`), ``target`` the real target mask (a mask, never
    values); it returns a batch built from ``own``'s values only and the entries to hide in it. Supply it
    when the strategy drawn again on ``own`` would pose a harder task than the real one (a forecast
    would predict the steps before the real unknown ones; a gap could extend the real gap). ``align``
    (passed when the function takes it) is the training data's ``alignment``
    (:class:`~polydiff.diffusion.data.DiffusionDataset`): a task that moves entries along the last axis
    moves them by multiples of it. ``fill`` (passed when the function takes it and the imputation is
    done; else ``None``) holds, at the real targets, one of the model's samples of them (a different one
    per calibration draw): a task may show them as given context, so that hidden given entries sit among
    as many known values as the real targets did. Under a correct model a sample drawn given the true
    values is distributed as the unknown truth, so such a task is distributed as the real one would be on
    fully known data. ``None``: ``fn`` drawn again on ``own.present()``.
    """

    name: str
    description: str
    fn: MaskFn
    options: Mapping[str, Any] = FROM_SIGNATURE
    calibration_task: CalibrationTaskFn | None = None

    def __post_init__(self) -> None:
        if self.options is FROM_SIGNATURE and callable(self.fn):
            object.__setattr__(self, "options", signature_options(self.fn))

    def bind(self, options: Mapping[str, Any] | None = None) -> Callable[[Tensor, Any], Tensor]:
        """``fn`` with ``options`` (checked against the accepted ones; defaults filled in)."""
        opts = check_options(options or {}, self.options, "mask_options", f"mask strategy {self.name!r}")
        return lambda observed, generator: self.fn(observed, generator, **opts)


_lookups: dict[str, Callable[[str], Any]] = {}


def use_registry(kind: str, lookup: Callable[[str], Any]) -> None:
    """Let names of ``kind`` (``"sampler"``, ``"mask_strategy"``) beyond the built-ins resolve through
    ``lookup``. :mod:`polydiff.plugins` installs its registry here when imported (``import polydiff``
    does), so ``sample(sampler="a_plugins_sampler")`` works while this layer never imports the plugins."""
    _lookups[kind] = lookup


def registry_lookup(kind: str, name: str) -> Any | None:
    """``name`` from the installed registry of ``kind`` (its own error when unknown), or None when no
    registry is installed."""
    lookup = _lookups.get(kind)
    return None if lookup is None else lookup(name)


__all__ = ["CalibrationTaskFn", "MaskFn", "MaskStrategySpec", "SamplerFn", "SamplerSpec", "registry_lookup",
           "use_registry"]
