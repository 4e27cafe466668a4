"""A PyPOTS-like convenience: fit a CSDI-style imputer on arrays with NaN, impute keeping every sample.

    from polydiff_timeseries import Imputer

    imputer = Imputer(steps=2000).fit(X_train)        # X: [N, L, K] (series, time steps, features), NaN = missing
    samples = imputer.impute(X_test, n_samples=50)    # [N, 50, L, K]; observed entries equal X_test exactly
    median = np.median(samples, axis=1)

It is the model ``benchmarks/timeseries.py`` measures (the ``csdi`` backbone with centred conditioning,
``prior_fill = "residual"``: it diffuses ``x - linear interpolation``; EDM preconditioning with the
schedule and training levels scaled to the residual's spread; DPM-Solver++(2M) SDE at 20 steps), without
a run directory, trained on the ``gaps`` masks (the benchmark's own training masks add forecasts).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch

import polydiff
from polydiff import EDM, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting
from polydiff.diffusion import attach_prior_fill, conformal_scale, resolve_prior_fill, scaled_to_data, widen

from .data import TimeSeriesDataset


class Imputer:
    """Probabilistic imputation of ``[N, L, K]`` arrays (PyPOTS's layout) with NaN for missing values.

    Args:
        steps, batch_size, lr, seed, device: training (``polydiff.TrainConfig``).
        model: options of the ``csdi`` backbone (``channels``, ``layers``, ``heads``, ``centre_condition``, ...).
        prior_fill: ``residual`` (default: diffuse ``x - linear interpolation``), ``condition`` (the network
            reads the interpolation, PriSTI) or ``none`` (CSDI as published).
        sampler, sampler_steps: how :meth:`impute` samples.
        mask_strategy: training target masks (``gaps``: random ratios, historical gaps and blocks; ``mix``
            adds forecasts of the last quarter, for a model that will forecast).
        p_mean, p_std: lognormal training noise levels in EDM's units for data of spread 0.5 (shifted by
            ``ln(sigma_data / 0.5)``, as the schedule is scaled; ``-2.6`` was tuned on validation windows).
    """

    def __init__(self, *, steps: int = 2000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                 device: str = "cpu", model: Mapping[str, Any] | None = None,
                 prior_fill: Literal["none", "condition", "residual"] = "residual",
                 sampler: str = "dpmpp_2m_sde", sampler_steps: int = 20, mask_strategy: str = "gaps",
                 p_mean: float = -2.6, p_std: float = 1.2) -> None:
        if prior_fill not in ("none", "condition", "residual"):
            raise ValueError(f"prior_fill must be 'none', 'condition' or 'residual', got {prior_fill!r}")
        self.config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device,  # type: ignore[arg-type]
                                  conditional=True, mask_strategy=mask_strategy, warmup_steps=min(50, steps),
                                  ema_decay=0.995, label_dropout=0.0)
        self.model_options = {"channels": 32, "layers": 3, "heads": 4, "time_dim": 32, "emb_dim": 64,
                              "centre_condition": True, **dict(model or {})}
        self.prior_fill, self.p_mean, self.p_std = prior_fill, p_mean, p_std
        self.sampler, self.sampler_steps = sampler, sampler_steps
        self.denoiser: Denoiser | None = None
        self.dataset: TimeSeriesDataset | None = None
        self.schedule = EDM()
        self.interval_scale_: float | None = None  # set by impute(calibrate=True)

    @staticmethod
    def _dataset(X: np.ndarray, like: TimeSeriesDataset | None = None) -> TimeSeriesDataset:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 3:
            raise ValueError(f"X must be [N, L, K] (series, time steps, features) with NaN for missing values, "
                             f"got shape {list(X.shape)}")
        values = X.transpose(0, 2, 1)  # polydiff's state is [K, L]
        if like is None:
            return TimeSeriesDataset(values, name="array")
        if values.shape[1] != like.num_features:
            raise ValueError(f"X has {values.shape[1]} features, the imputer was fitted on {like.num_features}")
        return TimeSeriesDataset(values, features=like.features, mean=like.mean, std=like.std, name="array")

    def fit(self, X: np.ndarray, *, progress: bool = False) -> Imputer:
        """Train on ``X`` ``[N, L, K]`` (normalisation statistics fitted on its observed values)."""
        ds = self._dataset(X)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.config.seed)
            backbone = polydiff.plugins.get_backbone("csdi").build(ds, **self.model_options)
        fill = resolve_prior_fill(self.prior_fill, polydiff.plugins.get_modality("timeseries"), conditional=True)
        sigma_data = self._residual_spread(ds, fill) if self.prior_fill == "residual" else 1.0  # normalised data
        denoiser = attach_prior_fill(Denoiser(backbone, Parameterization(kind="edm", sigma_data=sigma_data)), fill)
        schedule, levels = scaled_to_data(EDM(), NoiseLevels(kind="lognormal", p_mean=self.p_mean, p_std=self.p_std),
                                          sigma_data)  # EDM's levels are tuned for sigma_data = 0.5
        self.schedule = schedule  # type: ignore[assignment]
        Trainer(denoiser=denoiser, dataset=ds, schedule=self.schedule, noise_levels=levels,
                weighting=Weighting(kind="edm"), config=self.config).fit(progress=progress)
        self.denoiser, self.dataset = denoiser.eval(), ds
        return self

    def _residual_spread(self, ds: TimeSeriesDataset, fill: Any) -> float:
        """sigma_data of ``x - fill`` on the targets of the training mask strategy (seeded)."""
        batch = ds.get_batch(torch.arange(min(4096, len(ds))))
        observed = batch.present()
        mask = polydiff.plugins.get_mask_strategy(self.config.mask_strategy).bind(self.config.mask_options)
        target = mask(observed, torch.Generator().manual_seed(self.config.seed)).to(batch.x.dtype) * observed
        return max(fill.residual_spread(batch.x, observed, target, batch.padding), 1e-3)

    def impute(self, X: np.ndarray, *, n_samples: int = 50, seed: int = 0, progress: bool = False,
               calibrate: bool = False, calibration_mask: str = "historical") -> np.ndarray:
        """Every sample of the missing entries of ``X``: ``[N, n_samples, L, K]`` in data units, with
        the observed entries of ``X`` kept exactly.

        ``calibrate``: widen the samples around their median so that 90% intervals hold 90% of the
        values, by split conformal prediction on ``X``'s own observed values: the mask strategy
        ``calibration_mask`` (``historical``: another series' missing pattern, so the hidden values look
        like the real gaps; random ones where the other series has no gap) hides some of them, they are
        imputed from the rest, and the factor that makes their intervals hold 90% (``interval_scale_``)
        widens every sample. The median does not move. The 90% interval is
        ``np.quantile(samples, [0.05, 0.95], axis=1, method="weibull")`` (polydiff's ``coverage_90``);
        plain quantiles of few samples are narrower, and below 19 samples the factor fits their range."""
        if self.denoiser is None or self.dataset is None:
            raise RuntimeError("call fit(X) before impute(X)")
        self.interval_scale_ = None
        ds = self._dataset(X, like=self.dataset)
        device = next(self.denoiser.parameters()).device
        batch = ds.get_batch(torch.arange(len(ds))).to(device)
        run: dict[str, Any] = {"n_samples": n_samples, "sampler": self.sampler, "schedule": self.schedule,
                               "steps": self.sampler_steps, "grid": "karras", "conditional_model": True,
                               "progress": progress, "batch_size": 4096}
        # no known value is hidden (an empty target): every observed entry is given, every missing one sampled
        with torch.no_grad():
            imp = polydiff.impute(self.denoiser, batch, torch.zeros_like(batch.x), seed=seed, **run)
            if calibrate:
                observed = batch.present()
                mask = polydiff.plugins.get_mask_strategy(calibration_mask).bind({})
                hide = mask(observed, torch.Generator(device).manual_seed(seed + 1)).to(observed.dtype) * observed
                cal = polydiff.impute(self.denoiser, batch, hide, seed=seed + 1, **run)
                self.interval_scale_ = conformal_scale(cal, level=0.9)
                imp = widen(imp, self.interval_scale_)
        n, s = imp.samples.shape[:2]
        flat = imp.samples.reshape(n * s, *imp.samples.shape[2:]).cpu()
        out = ds.denormalize(flat).reshape(n, s, *flat.shape[1:]).numpy().transpose(0, 1, 3, 2)
        given = ~np.isnan(np.asarray(X, dtype=np.float64))
        out = np.where(given[:, None], np.asarray(X, dtype=np.float64)[:, None], out)  # exact, not a round trip
        return out


__all__ = ["Imputer"]
