"""Datasets as the core sees them: random access to :class:`~polydiff.diffusion.state.Batch` es.

A plugin's dataset only has to implement :class:`DiffusionDataset`; :class:`ArrayDataset` covers
data that fits in memory (most research datasets of this library's size).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from .state import Batch, StateSpec


@runtime_checkable
class DiffusionDataset(Protocol):
    """What training, sampling and evaluation need from data.

    Attributes:
        spec: the state's fields.
        num_classes: number of class labels in ``cond["label"]`` (``None``: unlabelled).
        sample_shape: packed per-sample shape at full length (for a variable-length state, the
            longest sample), used to size backbones and draw noise.
        alignment (optional, default 1): the period at which the items tile longer data along the last
            axis (a series cut into days: 24 hours): every item starts at the same phase, so a model may
            read an entry's position as its phase; calibration tasks move entries along that axis by
            multiples of it only. 1 where items overlap (each step is seen at several positions).
        holdout_split(fraction, *, seed) (optional): the dataset's own (train, held-out) split, for items
            that share entries (overlapping windows of one series: a held-out item's values would be
            training inputs); without it, :func:`holdout_split` at random.
    """

    spec: StateSpec
    num_classes: int | None

    def __len__(self) -> int: ...

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    def get_batch(self, indices: Tensor) -> Batch:
        """The samples at ``indices`` (a ``[B]`` LongTensor), collated and padded.

        Every batch is padded to ``sample_shape`` (``batch.x.shape[1:] == sample_shape``), however
        short its samples: the trainer draws noise of that shape."""
        ...


class ArrayDataset:
    """In-memory dataset from a packed tensor plus optional masks and labels.

    Args:
        spec: the state's fields.
        x: packed data ``[N, ...]`` (finite; NaN is rejected: encode missing values as
            ``observed = 0``).
        padding, observed: packed-shape masks, as in :class:`~polydiff.diffusion.state.Batch`.
        labels: ``[N]`` integer class labels.
        num_classes: defaults to ``labels.max() + 1``.
    """

    alignment = 1  # set by a loader that cuts items at a stride (see DiffusionDataset)

    def __init__(self, spec: StateSpec, x: Tensor, *, padding: Tensor | None = None,
                 observed: Tensor | None = None, labels: Tensor | None = None,
                 num_classes: int | None = None) -> None:
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"dataset contains {bad} non-finite values; mark missing entries with "
                             "an observed mask (observed = 0) and fill them with 0 instead of NaN")
        try:  # the packed layout must be the spec's (a wrong shape would otherwise fail deep in training)
            spec.pack(spec.unpack(x))
        except (ValueError, RuntimeError) as e:
            raise ValueError(f"data of shape {list(x.shape)} does not fit {spec!r}: {e}") from None
        Batch(x=x, padding=padding, observed=observed)  # validates mask shapes
        if labels is not None:
            if labels.shape != (x.shape[0],):
                raise ValueError(f"labels must have shape [{x.shape[0]}], got {list(labels.shape)}")
            labels = labels.long()
            num_classes = int(labels.max()) + 1 if num_classes is None else num_classes
        self.spec, self.x, self.padding, self.observed = spec, x.float(), padding, observed
        self.labels, self.num_classes = labels, num_classes

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def get_batch(self, indices: Tensor) -> Batch:
        sel = lambda t: None if t is None else t[indices]  # noqa: E731
        cond = {} if self.labels is None else {"label": self.labels[indices]}
        return Batch(x=self.x[indices], padding=sel(self.padding), observed=sel(self.observed), cond=cond)

    def __repr__(self) -> str:
        return f"ArrayDataset({self.spec!r}, n={len(self)}, classes={self.num_classes})"


_PER_ITEM = ("starts", "sources")  # per-item attributes of windowed datasets: a Subset's are its items'
_WHOLE_ONLY = ("holdout_split", "split", "subset")  # would split the parent, ignoring the Subset's items


class Subset:
    """The samples of ``dataset`` at ``indices`` (other attributes, e.g. a known mixture, pass through; the
    per-item ``starts`` / ``sources`` of windows are indexed; splitting methods are refused)."""

    def __init__(self, dataset: DiffusionDataset, indices: Tensor) -> None:
        self.dataset, self.indices = dataset, indices.long()
        self.spec, self.num_classes = dataset.spec, dataset.num_classes

    def __len__(self) -> int:
        return len(self.indices)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return self.dataset.sample_shape

    def get_batch(self, indices: Tensor) -> Batch:
        return self.dataset.get_batch(self.indices[indices])

    def __getattr__(self, name: str) -> object:
        if name in ("dataset", "indices"):  # not yet set (e.g. during unpickling)
            raise AttributeError(name)
        if name in _WHOLE_ONLY:
            raise AttributeError(f"{name} splits the whole dataset, not a Subset of it: call it on .dataset")
        value = getattr(self.dataset, name)
        return value[self.indices] if name in _PER_ITEM and value is not None else value

    def __repr__(self) -> str:
        return f"Subset({self.dataset!r}, n={len(self)})"


def holdout_split(dataset: DiffusionDataset, fraction: float, *, seed: int = 0) -> tuple[Subset, Subset]:
    """A reproducible (train, held-out) split of any dataset."""
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout fraction must be in [0, 1), got {fraction}")
    perm = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))
    n_out = round(fraction * len(dataset))
    if len(dataset) - n_out < 1:
        raise ValueError(f"dataset of {len(dataset)} samples is too small to hold out {fraction:.0%}")
    return Subset(dataset, perm[n_out:]), Subset(dataset, perm[:n_out])
