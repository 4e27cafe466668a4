"""Datasets as the core sees them: random access to :class:`~polydiff.state.Batch` es.

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
    """

    spec: StateSpec
    num_classes: int | None

    def __len__(self) -> int: ...

    @property
    def sample_shape(self) -> tuple[int, ...]: ...

    def get_batch(self, indices: Tensor) -> Batch:
        """The samples at ``indices`` (a ``[B]`` LongTensor), collated and padded."""
        ...


class ArrayDataset:
    """In-memory dataset from a packed tensor plus optional masks and labels.

    Args:
        spec: the state's fields.
        x: packed data ``[N, ...]`` (finite; NaN is rejected: encode missing values as
            ``observed = 0``).
        padding, observed: packed-shape masks, as in :class:`~polydiff.state.Batch`.
        labels: ``[N]`` integer class labels.
        num_classes: defaults to ``labels.max() + 1``.
    """

    def __init__(self, spec: StateSpec, x: Tensor, *, padding: Tensor | None = None,
                 observed: Tensor | None = None, labels: Tensor | None = None,
                 num_classes: int | None = None) -> None:
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"dataset contains {bad} non-finite values; mark missing entries with "
                             "an observed mask (observed = 0) and fill them with 0 instead of NaN")
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

    def split(self, fraction: float, *, seed: int = 0) -> tuple[ArrayDataset, ArrayDataset]:
        """A reproducible (train, held-out) split with ``fraction`` of the samples held out."""
        perm = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        n_out = int(round(fraction * len(self)))
        return self._subset(perm[n_out:]), self._subset(perm[:n_out])

    def _subset(self, idx: Tensor) -> ArrayDataset:
        b = self.get_batch(idx)
        return ArrayDataset(self.spec, b.x, padding=b.padding, observed=b.observed,
                            labels=b.cond.get("label"), num_classes=self.num_classes)

    def __repr__(self) -> str:
        return f"ArrayDataset({self.spec!r}, n={len(self)}, classes={self.num_classes})"
