"""Held-out items for datasets of windows cut from longer sources (series, videos): when windows overlap
(``stride < length``), held out apart from the training ones. Split at random, a held-out window would
share up to ``length - 1`` steps with training windows, so its hidden values were training inputs and a
model's scores would beat the baselines' unfairly. A dataset that knows its windows' ``starts`` and
``sources`` gives its ``holdout_split`` (see :class:`~polydiff.diffusion.data.DiffusionDataset`) by
:func:`split_apart`."""

from __future__ import annotations

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


def chronological_holdout(starts: Tensor, sources: Tensor, length: int, fraction: float) -> tuple[Tensor, Tensor]:
    """Per source: the last ``fraction`` of its steps (at least its last window) is held out, tiled by
    windows that do not overlap; the windows that end before it train; the ones between share steps with
    a held-out window and are left out. Returns (train, held-out) window indices, in source and time order."""
    train: list[int] = []
    held: list[int] = []
    for src in sources.unique():
        idx = (sources == src).nonzero().flatten()
        idx = idx[starts[idx].argsort()]
        first, last = int(starts[idx[0]]), int(starts[idx[-1]])
        cut = min(first + round((1 - fraction) * (last + length - first)), last)  # at least the last window
        free = cut  # the first step no held-out window covers yet
        for i in idx.tolist():
            s = int(starts[i])
            if s + length <= cut:
                train.append(i)
            elif s >= free:
                held.append(i)
                free = s + length
    return torch.tensor(train, dtype=torch.long), torch.tensor(held, dtype=torch.long)


def holdout_by_source(sources: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Windows of several sources: ``fraction`` of the sources (at random, seeded) are held out whole."""
    ids = sources.unique()
    perm = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed))]
    out = perm[:round(fraction * len(ids))]
    held = torch.isin(sources, out)
    return (~held).nonzero().flatten(), held.nonzero().flatten()


def split_apart(starts: Tensor, sources: Tensor, length: int, fraction: float, *, seed: int,
                name: str, what: str = "window", unit: str = "step") -> tuple[Tensor, Tensor] | None:
    """(train, held-out) indices of windows (``starts`` in their ``sources``) that share no step:
    :func:`holdout_by_source` when ``fraction`` of the sources is at least one and not all of them, else
    :func:`chronological_holdout` (one source, or two with ``fraction`` 0.1); None when no two
    windows overlap (any split keeps them apart). Reports what it held out and left out; ``what`` and
    ``unit`` name a window and its step in the messages (``"clip"``, ``"frame"``)."""
    if not overlapping(starts, sources, length):
        return None
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be in (0, 1), got {fraction}")
    n = len(sources.unique())
    whole = n > 1 and 1 <= round(fraction * n) < n  # enough sources to hold some out whole
    train, held = (holdout_by_source(sources, fraction, seed) if whole
                   else chronological_holdout(starts, sources, length, fraction))
    if len(train) == 0:
        raise ValueError(f"{name}: {what}s overlap (they share {unit}s), so the held-out ones must lie apart from "
                         f"the training ones, and data.holdout = {fraction} leaves no training {what} before the "
                         f"held-out ones; use more data, shorter {what}s or a smaller data.holdout")
    steps = int(starts.max()) + length - int(starts.min())
    span = f"the {steps} {unit}s" if n == 1 else f"each source's {unit}s"
    how = (f"all {what}s of {len(sources[held].unique())} of the {n} sources" if whole else
           f"the last {fraction:.0%} of {span}, tiled by {what}s that do not overlap")
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
