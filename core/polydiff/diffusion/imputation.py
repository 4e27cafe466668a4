"""Probabilistic imputation: S samples per item given its observed entries, and how to score them.

An evaluation hides a *target* set of known entries (picked by a mask strategy), samples the rest
``n_samples`` times and scores the targets against the truth. Every sample is kept (not only the
mean, unlike PyPOTS' CSDI), so medians, quantiles, intervals and calibration come from the same
tensor. Works for any modality: inpainting an image, forecasting a series, fixing a scaffold.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor

from polydiff.exceptions import NotApplicable

from .contracts import SamplerSpec
from .data import DiffusionDataset
from .grids import OptimizedGrid, optimize_grid
from .guidance import with_conditioning, with_observed, with_prior_fill
from .masking import cond_mask_of
from .parameterization import DenoiserLike
from .prior_fill import prior_fill_of
from .sampling import sample
from .schedules import Schedule
from .state import Batch, StateSpec


@dataclass
class Imputation:
    """S imputations of n items.

    Attributes:
        samples: ``[n, S, *shape]``; given entries equal ``truth`` exactly.
        truth: ``[n, *shape]`` the data (0 where the data itself is missing).
        given: ``[n, *shape]`` 1 where the model saw the value.
        target: ``[n, *shape]`` 1 where a known value was hidden and is scored.
        padding: ``[n, *shape]`` 1 on real entries of variable-length states, or ``None``.
        cond: per-item conditioning (e.g. ``label``), rows ``[n, ...]``.
        nfe, seconds: denoiser calls per sample and wall time of the sampling.
    """

    samples: Tensor
    truth: Tensor
    given: Tensor
    target: Tensor
    padding: Tensor | None = None
    cond: dict[str, Tensor] = field(default_factory=dict)
    nfe: int = 0
    seconds: float = 0.0

    def __len__(self) -> int:
        return self.samples.shape[0]

    @property
    def n_samples(self) -> int:
        return self.samples.shape[1]

    def quantile(self, q: float | Tensor) -> Tensor:
        """Per-entry sample quantile(s): ``[n, *shape]`` for a float, ``[len(q), n, *shape]`` for a tensor."""
        qt = torch.as_tensor(q, dtype=self.samples.dtype, device=self.samples.device)
        return torch.quantile(self.samples, qt, dim=1)

    def median(self) -> Tensor:
        return self.quantile(0.5)

    def mean(self) -> Tensor:
        return self.samples.mean(dim=1)

    def to(self, device: torch.device | str) -> Imputation:
        """The imputation with every tensor on ``device`` (e.g. sampled on a GPU, scored on the CPU)."""
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return replace(self, samples=self.samples.to(device), truth=self.truth.to(device), given=self.given.to(device),
                       target=self.target.to(device), padding=mv(self.padding),
                       cond={k: v.to(device) for k, v in self.cond.items()})

    def to_tensors(self) -> dict[str, Tensor]:
        """Flat tensors for a safetensors file (see :meth:`from_tensors`)."""
        out = {"samples": self.samples, "truth": self.truth, "given": self.given, "target": self.target}
        if self.padding is not None:
            out["padding"] = self.padding
        out.update({f"cond.{k}": v for k, v in self.cond.items()})
        return {k: v.contiguous() for k, v in out.items()}

    @classmethod
    def from_tensors(cls, tensors: Mapping[str, Tensor], *, nfe: int = 0, seconds: float = 0.0) -> Imputation:
        missing = {"samples", "truth", "given", "target"} - set(tensors)
        if missing:
            raise ValueError(f"not an imputation file: no {', '.join(sorted(missing))} tensor(s); "
                             "imputation files are written by `polydiff impute`")
        cond = {k.removeprefix("cond."): v for k, v in tensors.items() if k.startswith("cond.")}
        return cls(samples=tensors["samples"], truth=tensors["truth"], given=tensors["given"],
                   target=tensors["target"], padding=tensors.get("padding"), cond=cond, nfe=nfe, seconds=seconds)


def impute(denoiser: DenoiserLike, batch: Batch, target: Tensor, *, n_samples: int, seed: int = 0,
           sampler: str | SamplerSpec = "heun", schedule: Schedule | None = None, steps: int = 32,
           grid: str = "karras", spec: StateSpec | None = None, conditional_model: bool = False,
           options: Mapping[str, Any] | None = None, progress: bool = False,
           batch_size: int | None = None, sigmas: Tensor | None = None) -> Imputation:
    """Sample every item of ``batch`` ``n_samples`` times given its entries outside ``target``.

    Args:
        denoiser: ``D(x, sigma, **cond) -> x0_hat``.
        batch: the items (``observed``: which entries the data has; ``None``: all).
        target: packed mask of the entries to hide and score; only observed ones count.
        n_samples: samples per item (S).
        conditional_model: the model was trained with masks (``x_cond`` / ``cond_mask``, CSDI);
            otherwise observed-value replacement steers an unconditional model.
        seed, sampler, schedule, steps, grid, spec, options, progress, batch_size, sigmas: as in
            :func:`~polydiff.diffusion.sampling.sample`; item i's s-th sample uses the seed of row ``i * S + s``,
            so results do not depend on ``batch_size``. An optimised grid for imputation comes from
            :func:`imputation_grid`.
    """
    if target.shape != batch.x.shape:
        raise ValueError(f"target mask has shape {list(target.shape)} but the batch has {list(batch.x.shape)}")
    if n_samples < 1:
        raise ValueError(f"n_samples must be >= 1, got {n_samples}")
    observed = batch.present()
    target = target.to(batch.x.dtype) * observed
    given = cond_mask_of(observed, target)
    if batch.padding is not None:
        given = given * batch.padding
    rep = lambda t: t.repeat_interleave(n_samples, dim=0)  # noqa: E731
    truth = batch.x * observed
    result = sample(denoiser, shape=tuple(batch.x.shape[1:]), n=len(batch) * n_samples, seed=seed,
                    sampler=sampler, schedule=schedule, steps=steps, grid=grid, spec=spec,
                    padding=None if batch.padding is None else rep(batch.padding), x_obs=rep(truth),
                    observed=rep(given), conditional_model=conditional_model,
                    cond={k: rep(v) for k, v in batch.cond.items()}, options=options, progress=progress,
                    batch_size=batch_size, device=batch.x.device, sigmas=sigmas)
    samples = result.x.reshape(len(batch), n_samples, *batch.x.shape[1:])
    return Imputation(samples=samples, truth=truth, given=given, target=target, padding=batch.padding,
                      cond=dict(batch.cond), nfe=result.nfe, seconds=result.seconds)


def imputation_grid(denoiser: DenoiserLike, batch: Batch, target: Tensor, *, steps: int,
                    sampler: str | SamplerSpec = "heun", schedule: Schedule | None = None,
                    spec: StateSpec | None = None, conditional_model: bool = False,
                    options: Mapping[str, Any] | None = None, seed: int = 0,
                    **kwargs: Any) -> OptimizedGrid:
    """An optimised sigma grid (:func:`~polydiff.diffusion.grids.optimize_grid`) for imputing: one
    calibration draw per item of ``batch`` with ``target`` hidden, conditioned as :func:`impute`
    conditions it (the given entries, the model's prior fill, observed-value replacement).

    A residual model (``prior_fill = "residual"``) samples x = fill + y from y = noise; the grid is
    fitted on y, which follows the same sigmas. ``kwargs`` go to ``optimize_grid`` (``reference_steps``,
    ``candidates``, ``dp_items``, ``rounds``, ``device``).
    """
    if target.shape != batch.x.shape:
        raise ValueError(f"target mask has shape {list(target.shape)} but the batch has {list(batch.x.shape)}")
    observed = batch.present()
    given = cond_mask_of(observed, target.to(batch.x.dtype) * observed)
    if batch.padding is not None:
        given = given * batch.padding
    truth = batch.x * observed
    prior_fill = prior_fill_of(denoiser) if conditional_model else None
    fill = None if prior_fill is None else prior_fill.fill(truth, given, batch.padding)
    residual = prior_fill is not None and prior_fill.mode == "residual"

    def calibrated(y: Tensor, sigma: Tensor, *, x_obs: Tensor, given: Tensor, fill: Tensor | None = None,
                   **cond: Tensor) -> Tensor:
        d = denoiser  # the wrappers of sample(), for this call's rows (the grid search slices them)
        if conditional_model:
            if fill is not None and prior_fill is not None:
                d = with_prior_fill(d, fill, prior_fill.mode)
            d = with_conditioning(d, x_obs, given)
        shift = fill.to(y.dtype) if residual and fill is not None else torch.zeros_like(y)
        if cond.get("x_self") is not None:
            cond["x_self"] = cond["x_self"] + shift
        return with_observed(d, x_obs, given)(y + shift, sigma, **cond) - shift

    calibrated.self_condition = bool(getattr(denoiser, "self_condition", False))  # type: ignore[attr-defined]
    rows = {"x_obs": truth, "given": given, **({} if fill is None else {"fill": fill}), **batch.cond}
    return optimize_grid(calibrated, shape=tuple(batch.x.shape[1:]), steps=steps, sampler=sampler,
                         schedule=schedule, calibration=len(batch), seed=seed, options=options, spec=spec,
                         padding=batch.padding, cond=rows, **kwargs)


# ---- modality-agnostic metrics on the target entries ------------------------------------------

def in_data_units(imp: Imputation, reference: DiffusionDataset) -> Imputation:
    """The imputation mapped back to data units with the dataset's optional ``denormalize(x)``
    (e.g. per-feature scaling of a time series); unchanged when the dataset has none."""
    denorm = getattr(reference, "denormalize", None)
    if denorm is None:
        return imp
    n, s = imp.samples.shape[:2]
    samples = denorm(imp.samples.reshape(n * s, *imp.samples.shape[2:])).reshape(imp.samples.shape)
    return Imputation(samples=samples, truth=denorm(imp.truth), given=imp.given, target=imp.target,
                      padding=imp.padding, cond=imp.cond, nfe=imp.nfe, seconds=imp.seconds)


def _targets(imp: Imputation) -> Tensor:
    mask = imp.target.bool()
    if not mask.any():
        raise ValueError("the imputation has no target entries to score (empty target mask)")
    return mask


def mae(imp: Imputation, reference: DiffusionDataset) -> float:
    """Mean absolute error of the per-entry sample median on the targets (CSDI's deterministic MAE)."""
    imp = in_data_units(imp, reference)
    mask = _targets(imp)
    return float((imp.median() - imp.truth).abs()[mask].mean())


def rmse(imp: Imputation, reference: DiffusionDataset) -> float:
    """Root mean squared error of the per-entry sample mean on the targets."""
    imp = in_data_units(imp, reference)
    mask = _targets(imp)
    return float((imp.mean() - imp.truth).pow(2)[mask].mean().sqrt())


CRPS_LEVELS = torch.arange(1, 20) / 20  # 0.05 ... 0.95, as CSDI's evaluation (Tashiro et al. 2021, App. E)


def crps(imp: Imputation, reference: DiffusionDataset) -> float:
    """CSDI's normalised CRPS: the quantile (pinball) loss averaged over 19 levels, summed over the
    targets and divided by the sum of |truth| on the targets."""
    imp = in_data_units(imp, reference)
    mask = _targets(imp)
    return quantile_crps(imp.quantile(CRPS_LEVELS.to(imp.samples.dtype))[:, mask], imp.truth[mask])


def quantile_crps(quantiles: Tensor, truth: Tensor) -> float:
    """``quantiles [19, m]`` at :data:`CRPS_LEVELS` against ``truth [m]``, normalised by sum |truth|."""
    levels = CRPS_LEVELS.to(quantiles.device, quantiles.dtype).reshape(-1, *([1] * truth.dim()))
    pinball = 2 * ((truth - quantiles) * ((truth <= quantiles).to(quantiles.dtype) - levels)).abs()
    denom = truth.abs().sum().clamp_min(1e-12)
    return float(pinball.sum(dim=tuple(range(1, pinball.dim()))).mean() / denom)


def weibull_levels(q: Tensor, n_samples: int) -> Tensor:
    """Levels for ``torch.quantile`` of ``n_samples`` samples that put quantile ``q`` at rank ``(S + 1) q``
    (Weibull's plotting position; numpy's ``method="weibull"``), clipped to the samples' range: the value a
    new draw from the samples' law stays below with probability ``q``."""
    if n_samples < 2:
        return q.clamp(0, 1)
    return (((n_samples + 1) * q - 1) / (n_samples - 1)).clamp(0, 1)


def interval_samples(level: float = 0.9) -> int:
    """The fewest samples per entry that give a central ``level`` interval (19 at 90%): a new draw
    lies beyond the largest of S samples with probability 1 / (S + 1), which must not exceed the tail."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return math.ceil(2 / (1 - level) - 1 - 1e-9)


def interval(imp: Imputation, level: float = 0.9, *, clip: bool = False) -> tuple[Tensor, Tensor]:
    """Per-entry central ``level`` prediction interval ``(lo, hi)`` from the S samples: the order
    statistics at ranks ``(S + 1) * tail`` and ``(S + 1) * (1 - tail)`` (Weibull's plotting positions,
    interpolated: numpy's ``quantile(..., method="weibull")``), so a new draw from the samples' own law
    falls inside with probability ~``level``. The plain ``tail`` / ``1 - tail`` sample quantiles are
    narrower: a perfectly calibrated model's 5%-95% quantiles of 32 samples hold 0.85 of new draws, of
    10 samples 0.70.

    Needs :func:`interval_samples` samples (a ``ValueError`` otherwise); ``clip=True`` takes the
    samples' range instead when there are fewer (a narrower interval, for conformal widening)."""
    s, tail = imp.n_samples, (1 - level) / 2
    if s < 2 or (s < interval_samples(level) and not clip):
        raise ValueError(f"a {level:.0%} interval needs at least {interval_samples(level)} samples per entry, "
                         f"got {s}: a new draw falls outside all {s} with probability {2 / (s + 1):.2f}")
    lo, hi = imp.quantile(weibull_levels(torch.tensor([tail, 1 - tail], dtype=imp.samples.dtype), s))
    return lo, hi


def coverage_90(imp: Imputation, reference: DiffusionDataset) -> float:
    """Fraction of targets inside the central 90% prediction interval (:func:`interval`); calibrated: 0.9.
    Needs 19 samples per entry (fewer: not applicable, with that reason)."""
    if imp.n_samples < 2:
        raise NotApplicable("a 90% interval needs samples, and a point forecast has 1")
    imp = in_data_units(imp, reference)
    try:
        lo, hi = interval(imp, 0.9)
    except ValueError as e:
        raise NotApplicable(f"{e}; impute with --n-samples {interval_samples(0.9)} or more") from None
    mask = _targets(imp)
    inside = (imp.truth >= lo) & (imp.truth <= hi)
    return float(inside[mask].to(torch.float32).mean())


def coverage_error_90(imp: Imputation, reference: DiffusionDataset) -> float:
    """``|coverage_90 - 0.9|``: how far the 90% interval is from calibrated (rank by this, not coverage)."""
    return abs(coverage_90(imp, reference) - 0.9)


__all__ = ["CRPS_LEVELS", "Imputation", "coverage_90", "coverage_error_90", "crps", "imputation_grid", "impute",
           "in_data_units", "interval", "interval_samples", "mae", "quantile_crps", "rmse", "weibull_levels"]
