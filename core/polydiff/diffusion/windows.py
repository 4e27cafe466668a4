"""Held-out items for datasets of windows cut from longer sources (series, videos): when windows overlap
(``stride < length``), held out apart from the training ones. Split at random, a held-out window would
share up to ``length - 1`` steps with training windows, so its hidden values were training inputs and a
model's scores would beat the baselines' unfairly. A dataset that knows its windows' ``starts`` and
``sources`` gives its ``holdout_split`` (see :class:`~polydiff.diffusion.data.DiffusionDataset`) by
:func:`split_apart`."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from polydiff.reporting import report

from .data import DiffusionDataset, Subset, holdout_split


def overlapping(starts: Tensor, sources: Tensor, length: int) -> bool:
    """Whether two windows of one source share a step."""
    for src in sources.unique():
        s = starts[sources == src].sort().values
        if len(s) > 1 and int((s[1:] - s[:-1]).min()) < length:
            return True
    return False


def _tile_back(idx: list[int], starts: Tensor, length: int, cut: float) -> list[int]:
    """Of one source's windows ``idx`` (in time order), those that tile it from its end back to ``cut``:
    the last window, then the last one ending before that one starts, and so on while they start at or
    after ``cut`` (always the last window)."""
    held: list[int] = []
    for i in reversed(idx):
        s = int(starts[i])
        if not held or (s >= cut and s + length <= int(starts[held[-1]])):
            held.append(i)
    return held[::-1]


def chronological_holdout(starts: Tensor, sources: Tensor, length: int, fraction: float) -> tuple[Tensor, Tensor]:
    """Per source: windows that tile the last ``fraction`` of its steps (from its end back; at least its
    last window) are held out; the windows that end before the first of them train; the ones between share
    steps with a held-out window and are left out. Returns (train, held-out) window indices."""
    train: list[int] = []
    held: list[int] = []
    for src in sources.unique():
        idx = (sources == src).nonzero().flatten()
        idx = idx[starts[idx].argsort()].tolist()
        first, end = int(starts[idx[0]]), int(starts[idx[-1]]) + length
        out = _tile_back(idx, starts, length, first + (1 - fraction) * (end - first))
        boundary = int(starts[out[0]])
        held += out
        train += [i for i in idx if int(starts[i]) + length <= boundary]
    return torch.tensor(sorted(train), dtype=torch.long), torch.tensor(sorted(held), dtype=torch.long)


def holdout_by_source(starts: Tensor, sources: Tensor, length: int, fraction: float,
                      seed: int) -> tuple[Tensor, Tensor]:
    """Windows of several sources: ``floor(fraction * sources)`` of them (at random, seeded) are held out,
    each tiled by windows that do not overlap (so no scored value is given in another scored window); the
    rest of a held-out source's windows are left out."""
    ids = sources.unique()
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    out = perm[:int(fraction * len(ids))]
    held: list[int] = []
    for src in out:
        idx = (sources == src).nonzero().flatten()
        held += _tile_back(idx[starts[idx].argsort()].tolist(), starts, length, -math.inf)
    return (~torch.isin(sources, out)).nonzero().flatten(), torch.tensor(sorted(held), dtype=torch.long)


def split_apart(starts: Tensor, sources: Tensor, length: int, fraction: float, *, seed: int, name: str,
                what: str = "window", unit: str = "step",
                option: str = "data.holdout") -> tuple[Tensor, Tensor] | None:
    """(train, held-out) indices of windows (``starts`` in their ``sources``) that share no step, and no
    two held-out ones either: :func:`holdout_by_source` when ``fraction`` of the sources is at least one
    whole one and not all, else :func:`chronological_holdout`; None when no two windows overlap (any
    split keeps them apart). Reports what it held out and left out; ``what`` and ``unit`` name a window
    and its step in the messages (``"clip"``, ``"frame"``), ``option`` the setting that asked."""
    if not overlapping(starts, sources, length):
        return None
    if not 0 < fraction < 1:
        raise ValueError(f"{option} must be in (0, 1), got {fraction}")
    n = len(sources.unique())
    whole = n > 1 and 1 <= int(fraction * n) < n  # enough sources to hold some out whole
    train, held = (holdout_by_source(starts, sources, length, fraction, seed) if whole
                   else chronological_holdout(starts, sources, length, fraction))
    if len(train) == 0:
        raise ValueError(f"{name}: {what}s overlap (they share {unit}s), so the held-out ones must lie apart from "
                         f"the training ones, and with {option} = {fraction} no training {what} ends before the "
                         f"held-out ones start: use more data or shorter {what}s" + (
                             "" if whole or n > 1 else f", or {option} = 0 (score the training {what}s)"))
    if whole:
        how = f"{what}s tiling {len(sources[held].unique())} of the {n} sources"
    else:
        share = float(length * len(held)) / float(sum(int(starts[sources == s].max()) + length
                                                      - int(starts[sources == s].min()) for s in sources.unique()))
        how = (f"{what}s tiling the last {share:.0%} of the " + (f"{int(starts.max()) + length - int(starts.min())} "
               f"{unit}s" if n == 1 else f"{unit}s of each of the {n} sources"))
    report(f"{name}: the {what}s overlap, so the held-out ones are {how}: {len(held)} held-out and {len(train)} "
           f"training {what}(s), {len(starts) - len(train) - len(held)} left out (they share {unit}s with a "
           "held-out one)")
    return train, held


def holdout_apart(dataset: DiffusionDataset, fraction: float, *, seed: int, length: int, name: str,
                  what: str = "window", unit: str = "step") -> tuple[Subset, Subset]:
    """A ``holdout_split`` for a dataset of windows ``length`` long with ``starts`` and ``sources``
    attributes (``None``: not cut from longer sources): :func:`split_apart` where windows overlap, else
    the core's random :func:`~polydiff.diffusion.data.holdout_split`."""
    starts, sources = getattr(dataset, "starts", None), getattr(dataset, "sources", None)
    apart = (None if starts is None or sources is None or fraction == 0 else
             split_apart(starts, sources, length, fraction, seed=seed, name=name, what=what, unit=unit))
    if apart is None:
        return holdout_split(dataset, fraction, seed=seed)
    return Subset(dataset, apart[0]), Subset(dataset, apart[1])
