"""Classical imputation baselines on the same masks: per-series mean, last observation carried
forward, linear interpolation. Each maps ``(x [n, K, L], given [n, K, L]) -> [n, K, L]`` point
predictions (the given entries unchanged) and works in any units (affine maps commute with them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion import linear_fill, locf_fill


def mean_fill(x: Tensor, given: Tensor) -> Tensor:
    """Each feature's mean over its given steps in that series (0, the training mean, if none)."""
    g = given.to(x.dtype)
    mean = (x * g).sum(-1, keepdim=True) / g.sum(-1, keepdim=True).clamp_min(1)
    return torch.where(given > 0, x, mean.expand_as(x))


def locf(x: Tensor, given: Tensor) -> Tensor:
    """Last observation carried forward; steps before the first observation take the next one."""
    return locf_fill(x, given)  # the core's fill along time; only given entries are read


def linear_interpolation(x: Tensor, given: Tensor) -> Tensor:
    """Straight lines between the given steps of each feature, held flat beyond the first and last."""
    return linear_fill(x, given)


BASELINES: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "mean": mean_fill, "locf": locf, "linear": linear_interpolation,
}


class RidgeImputer:
    """A small learned (non-diffusion) baseline: per feature k, ridge regression of x_k(t) on the linear
    interpolations of ALL features at t (and a bias), so it uses both the series' own neighbours and the
    co-moving features. Fitted on training windows with random held-out masks, like the diffusion model."""

    def __init__(self, l2: float = 1e-2) -> None:
        self.l2 = l2
        self.weights: Tensor | None = None  # [K, K + 1]

    @staticmethod
    def _design(x: Tensor, given: Tensor) -> Tensor:
        filled = linear_interpolation(x, given)  # [n, K, L]
        ones = torch.ones_like(filled[:, :1])
        return torch.cat([filled, ones], dim=1).transpose(1, 2)  # [n, L, K + 1]

    def fit(self, x: Tensor, observed: Tensor, *, ratios: tuple[float, ...] = (0.1, 0.3, 0.5),
            seed: int = 0) -> RidgeImputer:
        from .masks import random_fixed

        x, observed = x.double(), observed.double()
        k = x.shape[1]
        gram, rhs = torch.zeros(k, k + 1, k + 1, dtype=x.dtype), torch.zeros(k, k + 1, dtype=x.dtype)
        g = torch.Generator().manual_seed(seed)
        for ratio in ratios:
            target = random_fixed(observed, g, ratio=ratio).double()
            design = self._design(x, observed * (1 - target))  # [n, L, K + 1]
            for f in range(k):
                rows = design[target[:, f] > 0]  # [m, K + 1]
                gram[f] += rows.T @ rows
                rhs[f] += rows.T @ x[:, f][target[:, f] > 0]
        eye = torch.eye(k + 1, dtype=x.dtype) * self.l2 * gram.diagonal(dim1=1, dim2=2).mean(dim=1)[:, None, None]
        self.weights = torch.linalg.solve(gram + eye, rhs)
        return self

    def __call__(self, x: Tensor, given: Tensor) -> Tensor:
        if self.weights is None:
            raise RuntimeError("RidgeImputer: call fit(...) first")
        pred = torch.einsum("nlj,kj->nkl", self._design(x.double(), given.double()), self.weights)
        return torch.where(given > 0, x.double(), pred)


# ---- the same methods as ModalitySpec.baselines: scored beside every model (polydiff.evaluation.baselines) ----

def _filled(method: Callable[[Tensor, Tensor], Tensor]) -> Callable[..., Tensor]:
    def fn(observed: Any, ctx: Any) -> Tensor:
        return method(observed.truth, observed.given)

    fn.__name__ = fn.__qualname__ = method.__name__
    return fn


def ridge_baseline(observed: Any, ctx: Any) -> Tensor:
    """:class:`RidgeImputer` fitted on the training windows (their observed values), then applied."""
    train = ctx.train.get_batch(torch.arange(len(ctx.train)))
    seen = train.observed if train.observed is not None else torch.ones_like(train.x)
    if train.padding is not None:
        seen = seen * train.padding
    return RidgeImputer().fit(train.x, seen, seed=ctx.seed)(observed.truth, observed.given).to(observed.truth.dtype)


def _specs() -> tuple[Any, ...]:
    from polydiff.evaluation import gaussian_fit, training_items
    from polydiff.plugins import BaselineSpec

    return (
        BaselineSpec(name="gaussian_fit", role="floor", fn=gaussian_fit,
                     description="one Gaussian fitted to the training windows (missing values count as the mean)"),
        BaselineSpec(name="real_series", role="ceiling", fn=training_items,
                     description="real windows of the training split, scored like samples"),
        BaselineSpec(name="mean", task="impute", fn=_filled(mean_fill),
                     description="each feature's mean over the given steps of its window"),
        BaselineSpec(name="locf", task="impute", fn=_filled(locf),
                     description="last observation carried forward (next one before the first)"),
        BaselineSpec(name="linear", task="impute", fn=_filled(linear_interpolation),
                     description="linear interpolation between given steps, flat beyond the ends"),
        BaselineSpec(name="ridge", task="impute", fn=ridge_baseline,
                     description="ridge regression on all features' interpolations, fitted on training windows"),
    )


BASELINE_SPECS = _specs()
