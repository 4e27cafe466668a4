"""Probabilistic imputation metrics for series (``MetricSpec(task="impute")``), in data units.

``fn(imputation, reference) -> float`` with ``imputation.samples [n, S, K, L]``, ``truth [n, K, L]`` and
``target [n, K, L]`` (the held-out entries that are scored). When the reference dataset has
``denormalize`` (every :class:`~polydiff_timeseries.data.TimeSeriesDataset` does) values are mapped to
data units first. The core adds ``mae``, ``rmse``, ``crps`` and ``coverage_90``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polydiff import MetricSpec
from polydiff.diffusion import Imputation, in_data_units
from polydiff.plugins import NotApplicable

QUANTILES = tuple(round(0.05 * i, 2) for i in range(1, 20))  # CSDI's 0.05, 0.10, ..., 0.95
PIT_BINS = 10


def data_units(imputation: Imputation, reference: Any) -> tuple[Tensor, Tensor, Tensor]:
    """``(samples [n, S, K, L], truth [n, K, L], target [n, K, L])`` as float64, in data units when
    ``reference`` can denormalise (the core's :func:`~polydiff.diffusion.imputation.in_data_units`)."""
    imp = in_data_units(imputation, reference)
    samples, truth, target = imp.samples.double(), imp.truth.double(), imp.target.double()
    if samples.ndim != 4 or truth.shape != samples.shape[:1] + samples.shape[2:]:
        raise ValueError(f"time-series metrics need samples [n, S, K, L] and truth [n, K, L], got "
                         f"{list(samples.shape)} and {list(truth.shape)}")
    if int(target.sum()) == 0:
        raise ValueError("the imputation has no target entry to score (did the mask hide nothing?)")
    return samples, truth, target


def crps_sum(imputation: Imputation, reference: Any) -> float:
    """CSDI's CRPS-sum (Tashiro et al. 2021, App. E.2): the quantile CRPS of the feature-summed series,
    at every time step, weighted by the fraction of features scored there, normalised by sum |y|."""
    samples, truth, target = data_units(imputation, reference)
    weight = target.mean(dim=1)  # [n, L]
    y = truth.sum(dim=1)  # [n, L]
    summed = samples.sum(dim=2)  # [n, S, L]
    denom = (y.abs() * weight).sum().clamp_min(1e-12)
    q = torch.tensor(QUANTILES, dtype=summed.dtype)
    pred = torch.quantile(summed, q, dim=1)  # [Q, n, L]
    indicator = (y[None] <= pred).to(pred.dtype)
    loss = 2 * ((pred - y[None]) * weight[None] * (indicator - q[:, None, None])).abs().sum(dim=(1, 2))
    return float((loss / denom).mean())


def energy_crps_values(samples: Tensor, truth: Tensor) -> Tensor:
    """Sample CRPS per entry, ``E|X - y| - E|X - X'| / 2`` with the unbiased (fair) pair term
    (Gneiting & Raftery 2007, Eq. 21; Ferro 2014): samples ``[n, S, ...]``, truth ``[n, ...]``."""
    s = samples.shape[1]
    if s < 2:
        raise NotApplicable("the energy form of CRPS needs at least 2 samples per series (a point forecast has 1)")
    first = (samples - truth[:, None]).abs().mean(dim=1)
    ordered = samples.sort(dim=1).values
    j = torch.arange(s, dtype=samples.dtype).reshape(1, s, *[1] * (samples.ndim - 2))
    pairs = 2 * ((2 * j - s + 1) * ordered).sum(dim=1)  # sum over ALL ordered pairs of |x_i - x_j|
    return first - pairs / (2 * s * (s - 1))


def crps_energy(imputation: Imputation, reference: Any) -> float:
    """Mean sample (energy-form) CRPS over the target entries, in data units (lower is better)."""
    samples, truth, target = data_units(imputation, reference)
    values = energy_crps_values(samples, truth)
    return float((values * target).sum() / target.sum())


def pit_values(imputation: Imputation, *, seed: int = 0) -> Tensor:
    """Randomised probability integral transform of every target entry: ``(#{samples < y} + U) / (S + 1)``,
    exactly uniform on [0, 1] when the truth is exchangeable with the samples (a calibrated model)."""
    samples, truth, target = imputation.samples.double(), imputation.truth.double(), imputation.target > 0
    below = (samples < truth[:, None]).sum(dim=1).double()
    u = torch.rand(truth.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return ((below + u) / (samples.shape[1] + 1))[target]


def pit_histogram(pit: Tensor, bins: int = PIT_BINS) -> Tensor:
    """Relative frequencies of the PIT values in ``bins`` equal bins of [0, 1]."""
    counts = torch.histc(pit.double(), bins=bins, min=0.0, max=1.0)
    return counts / counts.sum().clamp_min(1)


def pit_error(imputation: Imputation, reference: Any) -> float:
    """Calibration error: total-variation distance between the 10-bin PIT histogram and the uniform one,
    ``0.5 * sum_b |f_b - 1/10|`` in [0, 1] (0: calibrated; a U shape means too narrow, a hump too wide).
    Monotone maps (normalisation) leave the PIT unchanged, so ``reference`` is not needed."""
    del reference
    if imputation.n_samples < 2:
        raise NotApplicable("a PIT histogram needs at least 2 samples per entry (a point forecast has 1)")
    hist = pit_histogram(pit_values(imputation))
    return float(0.5 * (hist - 1.0 / len(hist)).abs().sum())


METRICS = [
    MetricSpec(name="crps_sum", modality="timeseries", fn=crps_sum, task="impute",
               description="CSDI's CRPS-sum: quantile CRPS of the feature-summed series (normalised)"),
    MetricSpec(name="crps_energy", modality="timeseries", fn=crps_energy, task="impute",
               description="sample (energy-form, fair) CRPS per target value, data units"),
    MetricSpec(name="pit_error", modality="timeseries", fn=pit_error, task="impute",
               description="PIT calibration error: total variation from uniform of a 10-bin histogram"),
]
