"""A PyPOTS-like convenience: fit a CSDI-style imputer on arrays with NaN, impute keeping every sample.

    from polydiff_timeseries import Imputer

    imputer = Imputer(steps=2000).fit(X_train)        # X: [N, L, K] (series, time steps, features), NaN = missing
    samples = imputer.impute(X_test, n_samples=50)    # [N, 50, L, K]; observed entries equal X_test exactly
    median = np.median(samples, axis=1)

It is the same model, training and sampling as ``polydiff train timeseries`` with ``train.conditional``
(the ``csdi`` backbone, EDM preconditioning, the ``mix`` training masks), without a run directory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

import polydiff
from polydiff import EDM, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting

from .data import TimeSeriesDataset


class Imputer:
    """Probabilistic imputation of ``[N, L, K]`` arrays (PyPOTS's layout) with NaN for missing values.

    Args:
        steps, batch_size, lr, seed, device: training (``polydiff.TrainConfig``).
        model: options of the ``csdi`` backbone (``channels``, ``layers``, ``heads``, ...).
        sampler, sampler_steps: how :meth:`impute` samples (DDPM with 50 steps, as CSDI).
        mask_strategy: training target masks (``mix``: random ratios, historical gaps and blocks).
    """

    def __init__(self, *, steps: int = 2000, batch_size: int = 32, lr: float = 2e-3, seed: int = 0,
                 device: str = "cpu", model: Mapping[str, Any] | None = None, sampler: str = "ddpm",
                 sampler_steps: int = 50, mask_strategy: str = "mix") -> None:
        self.config = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device,  # type: ignore[arg-type]
                                  conditional=True, mask_strategy=mask_strategy, warmup_steps=min(50, steps),
                                  ema_decay=0.995, label_dropout=0.0)
        self.model_options = {"channels": 32, "layers": 3, "heads": 4, "time_dim": 32, "emb_dim": 64,
                              **dict(model or {})}
        self.sampler, self.sampler_steps = sampler, sampler_steps
        self.denoiser: Denoiser | None = None
        self.dataset: TimeSeriesDataset | None = None

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
        denoiser = Denoiser(backbone, Parameterization(kind="edm", sigma_data=1.0))  # series are normalised
        Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                weighting=Weighting(kind="edm"), config=self.config).fit(progress=progress)
        self.denoiser, self.dataset = denoiser.eval(), ds
        return self

    def impute(self, X: np.ndarray, *, n_samples: int = 50, seed: int = 0, progress: bool = False) -> np.ndarray:
        """Every sample of the missing entries of ``X``: ``[N, n_samples, L, K]`` in data units, with
        the observed entries of ``X`` kept exactly."""
        if self.denoiser is None or self.dataset is None:
            raise RuntimeError("call fit(X) before impute(X)")
        ds = self._dataset(X, like=self.dataset)
        device = next(self.denoiser.parameters()).device
        batch = ds.get_batch(torch.arange(len(ds))).to(device)
        # no known value is hidden (an empty target): every observed entry is given, every missing one sampled
        with torch.no_grad():
            imp = polydiff.impute(self.denoiser, batch, torch.zeros_like(batch.x), n_samples=n_samples, seed=seed,
                                  sampler=self.sampler, schedule=EDM(), steps=self.sampler_steps, grid="karras",
                                  conditional_model=True, progress=progress, batch_size=4096)
        n, s = imp.samples.shape[:2]
        flat = imp.samples.reshape(n * s, *imp.samples.shape[2:]).cpu()
        out = ds.denormalize(flat).reshape(n, s, *flat.shape[1:]).numpy().transpose(0, 1, 3, 2)
        given = ~np.isnan(np.asarray(X, dtype=np.float64))
        out = np.where(given[:, None], np.asarray(X, dtype=np.float64)[:, None], out)  # exact, not a round trip
        return out


__all__ = ["Imputer"]
