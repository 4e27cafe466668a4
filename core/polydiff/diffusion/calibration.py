"""Calibrated intervals for imputations: split-conformal widening of the sample spread.

A diffusion imputer trained for minutes on a few hundred windows is often over-confident (its 90%
interval holds 50-80% of held-out values) or, on easy masks, under-confident. Split conformal
prediction (Vovk et al. 2005; scaled intervals as in Romano et al. 2019, "Conformalized quantile
regression") fixes the *width* without touching the median: on imputations of held-out calibration
items (never the test items) find the smallest factor ``c`` such that the interval
``median + c * (q_lo - median) .. median + c * (q_hi - median)`` holds the asked fraction of targets,
then apply ``c`` to every sample of new imputations. The median, and so the MAE, is unchanged; the
guarantee (coverage >= level on average) holds when calibration and test items are exchangeable, which
entries of one window are not exactly, so the coverage is measured, not assumed.

Without held-out items (one series, one video), :func:`calibration_task` calibrates on the items being
imputed: their given entries (:func:`given_only`) are masked again, by the strategy's own
``calibration_task`` when it has one (a forecast from the window moved on by its horizon), else the same
way, and imputed from the rest ("calibration on the given entries"; drawn several times when one random
draw hides too few entries for a stable factor: :func:`given_calibration`). A strategy's task may also
show the model's own samples of the real targets as given values (``fill``, :func:`takes_fill`), so that
the hidden given entries have as much context as the real targets had. It follows a drift between
training and test items, at the price of a slightly harder task (fewer given entries) than the one it
calibrates.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from polydiff.options import check_options

from .contracts import MaskStrategySpec
from .imputation import Imputation, interval
from .state import Batch


def _required_scale(imp: Imputation, level: float) -> Tensor:
    """Per target entry: the smallest c whose widened central ``level`` interval holds the truth."""
    mask = imp.target.bool()
    if not mask.any():
        raise ValueError("calibration needs target entries (hidden known values); the target mask is empty")
    if imp.n_samples < 2:
        raise ValueError(f"calibration needs at least 2 samples per entry, got {imp.n_samples}")
    lo, hi = interval(imp, level, clip=True)  # the interval coverage_90 scores; the samples' range below 19
    med = imp.median()
    lo, med, hi, y = lo[mask], med[mask], hi[mask], imp.truth[mask].to(med.dtype)
    below = y < med
    gap = torch.where(below, med - y, y - med)
    width = torch.where(below, med - lo, hi - med)
    need = gap / width.clamp_min(torch.finfo(width.dtype).tiny)
    need = torch.where(gap == 0, torch.zeros_like(need), need)
    return torch.where((width == 0) & (gap > 0), torch.full_like(need, math.inf), need)


def conformal_scale(calibration: Imputation, *, level: float = 0.9) -> float:
    """The split-conformal widening factor of the central ``level`` interval, fitted on ``calibration``
    (imputations of held-out items with their truth): the ``ceil((m + 1) level)``-th smallest of the m
    per-target factors. Above 1: the model was over-confident; below 1: too wide.

    Raises ``ValueError`` when there are too few targets for the level (``m + 1 < 1 / (1 - level)``) or
    the needed factor is infinite (every sample equal where the truth differs)."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    need = _required_scale(calibration, level).sort().values
    rank = math.ceil((len(need) + 1) * level)
    if rank > len(need):
        raise ValueError(f"{len(need)} calibration targets are too few for a {level:.0%} interval; "
                         f"score at least {math.ceil(level / (1 - level))} hidden entries")
    c = float(need[rank - 1])
    if not math.isfinite(c):
        raise ValueError("the samples have no spread where the truth differs: no widening factor covers it")
    return c


def widen(imp: Imputation, scale: float) -> Imputation:
    """The imputation with every sample moved ``scale`` times as far from the per-entry median
    (given entries, whose samples all equal the truth, are unchanged)."""
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0, got {scale}")
    med = imp.median().unsqueeze(1)
    return dataclasses.replace(imp, samples=med + scale * (imp.samples - med))


MIN_CALIBRATION_TARGETS = 200  # the fitted interval's coverage then varies by about sqrt(0.09 / 200) = 0.02
MAX_CALIBRATION_DRAWS = 16


def calibration_draws(targets_per_draw: int, *, min_targets: int = MIN_CALIBRATION_TARGETS,
                      max_draws: int = MAX_CALIBRATION_DRAWS) -> int:
    """How many calibration tasks to draw on the same items: the fewest giving ``min_targets`` targets,
    at most ``max_draws``. With m targets, the coverage the fitted factor gives new items varies by about
    ``sqrt(level (1 - level) / m)``; a sparse task on a few items (90% missing, short windows) can have
    under 20, and the factor is then mostly noise."""
    if min_targets < 1 or max_draws < 1:
        raise ValueError(f"min_targets and max_draws must be >= 1, got {min_targets}, {max_draws}")
    return min(max_draws, max(1, math.ceil(min_targets / max(targets_per_draw, 1))))


def given_only(batch: Batch, target: Tensor) -> Batch:
    """``batch`` as an imputer of ``target`` sees it: the target entries zeroed and marked unobserved.
    Drawing the task's mask strategy on its ``present()`` entries gives a calibration task whose hidden
    entries are all given ones, with their true values; the real targets are never read."""
    if target.shape != batch.x.shape:
        raise ValueError(f"target {list(target.shape)} must have the batch's packed shape {list(batch.x.shape)}")
    given = batch.present() * (1 - target.to(batch.x.dtype))
    return dataclasses.replace(batch, x=torch.where(given > 0, batch.x, torch.zeros_like(batch.x)), observed=given)


def calibration_task(strategy: MaskStrategySpec, batch: Batch, target: Tensor, generator: torch.Generator,
                     options: Mapping[str, Any] | None = None, *, align: int = 1,
                     fill: Tensor | None = None) -> tuple[Batch, Tensor]:
    """A calibration task like the real one (``target`` hidden in ``batch``), made from the given entries only:
    the strategy's ``calibration_task`` when it has one, else the strategy drawn again on them. Returns the
    batch to impute and its target mask (given entries with their true values; the real targets never read).
    ``align``: the training data's ``alignment`` (a task moves entries along the last axis by multiples of it).
    ``fill``: the model's imputation of ``target`` (one sample per item, ``batch.x``'s shape), for a
    ``calibration_task`` that takes it (:class:`~polydiff.diffusion.contracts.MaskStrategySpec`)."""
    opts = check_options(options or {}, strategy.options, "mask_options", f"mask strategy {strategy.name!r}")
    if fill is not None and fill.shape != batch.x.shape:
        raise ValueError(f"fill has shape {list(fill.shape)}, the batch {list(batch.x.shape)}")
    own = given_only(batch, target)
    if strategy.calibration_task is None:
        cal_batch, cal_target = own, strategy.fn(own.present(), generator, **opts)
    else:
        extra: dict[str, Any] = {"align": align} if _takes(strategy.calibration_task, "align") else {}
        if fill is not None and takes_fill(strategy):  # older plugins take neither
            extra["fill"] = torch.where(target.bool(), fill, torch.zeros_like(fill))  # the real targets' only
        cal_batch, cal_target = strategy.calibration_task(own, target, generator, **extra, **opts)
    present = cal_batch.present()
    if cal_target.shape != present.shape:
        raise ValueError(f"mask strategy {strategy.name!r}: its calibration target has shape {list(cal_target.shape)}, "
                         f"its batch {list(present.shape)}")
    return cal_batch, cal_target.to(present.dtype) * present


def given_calibration(strategy: MaskStrategySpec, batch: Batch, target: Tensor, generator: torch.Generator,
                      options: Mapping[str, Any] | None = None, *, groups: int = 1, align: int = 1,
                      samples: Tensor | None = None) -> tuple[Batch, Tensor, int]:
    """:func:`calibration_task` drawn :func:`calibration_draws` times on copies of the items, so the factor
    is fitted on enough targets (a run of neighbouring targets along the last axis counts once): row
    ``i + j n`` is item ``i`` under draw ``j``. ``groups``: the items are that many equal sets, each fitted
    with its own factor, so each set needs the targets. ``align`` as in :func:`calibration_task`.
    ``samples``: the imputation of ``target`` (``Imputation.samples``, ``[n, S, ...]``); draw ``j`` passes
    sample ``j mod S`` as ``calibration_task``'s ``fill``. A task that comes out the same when drawn again
    (a forecast has no randomness) is drawn once: copies would add cost, not targets. Returns the batch,
    its target mask and the number of draws."""
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    if samples is not None and (samples.ndim != batch.x.ndim + 1 or samples.shape[0] != len(batch)
                                or samples.shape[2:] != batch.x.shape[1:]):
        raise ValueError(f"samples must be [n, S, ...] of the batch's items, got {list(samples.shape)} for "
                         f"items {list(batch.x.shape)}")

    def fill(rows: Tensor, first_draw: int) -> Tensor | None:
        return None if samples is None else draw_samples(samples, rows, first_draw).to(batch.x.dtype)

    every = torch.arange(len(batch))
    parts = [calibration_task(strategy, batch, target, generator, options, align=align, fill=fill(every, 0))]
    draws = calibration_draws(round(float(_runs(parts[0][1])) / groups))
    if draws > 1:
        parts.append(calibration_task(strategy, batch, target, generator, options, align=align, fill=fill(every, 1)))
        if torch.equal(parts[1][1], parts[0][1]) and torch.equal(parts[1][0].x, parts[0][0].x):
            return (*parts[0], 1)
    if draws > 2:
        rows = every.repeat(draws - 2)
        parts.append(calibration_task(strategy, batch.select(rows), target[rows], generator, options,
                                     align=align, fill=fill(rows, 2)))
    return _cat([b for b, _ in parts]), torch.cat([t for _, t in parts]), draws


def draw_samples(samples: Tensor, rows: Tensor, first_draw: int = 0) -> Tensor:
    """The ``fill`` of calibration rows ``rows`` (item indices, draw after draw, ``len(samples)`` rows a
    draw, the first being ``first_draw``): draw ``j`` shows sample ``j mod S`` of each item."""
    draw = first_draw + torch.arange(len(rows)) // len(samples)
    return samples[rows, draw % samples.shape[1]]


def takes_fill(strategy: MaskStrategySpec) -> bool:
    """Whether the strategy's ``calibration_task`` shows the model's own samples of the real targets
    (``fill``, a parameter of that name: a ``**options`` catch-all does not count): its calibration task is
    then made after the real imputation."""
    fn = strategy.calibration_task
    return fn is not None and "fill" in inspect.signature(fn).parameters


def _takes(fn: Any, name: str) -> bool:
    """Whether ``fn`` accepts the keyword ``name``."""
    params = inspect.signature(fn).parameters.values()
    return any(p.name == name or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def _runs(target: Tensor) -> Tensor:
    """Runs of target entries along the last axis: neighbours err together (a gap, a missing frame's
    pixels), so a run counts once towards the targets a factor needs."""
    t = target > 0
    return t[..., :1].sum() + (t[..., 1:] & ~t[..., :-1]).sum()


def _cat(batches: list[Batch]) -> Batch:
    """The batches' rows one after another (their masks and conditioning too)."""
    def cat(tensors: list[Tensor | None]) -> Tensor | None:
        return None if tensors[0] is None else torch.cat(tensors)  # type: ignore[arg-type]

    first = batches[0]
    return dataclasses.replace(first, x=torch.cat([b.x for b in batches]), padding=cat([b.padding for b in batches]),
                               observed=cat([b.observed for b in batches]),
                               cond={k: torch.cat([b.cond[k] for b in batches]) for k in first.cond})


__all__ = ["calibration_draws", "calibration_task", "conformal_scale", "draw_samples", "given_calibration",
           "given_only", "takes_fill", "widen"]
