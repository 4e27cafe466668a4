"""Multivariate time series as the core sees them: windows ``x[B, K, L]`` with an observed mask.

NaN in the input marks a missing value: it becomes ``observed = 0`` and a 0 in ``x`` (the core never
sees a NaN). Values are normalised per feature with the mean and standard deviation of the OBSERVED
values of the windows the statistics are fitted on (by default all of them; :meth:`split` fits them
on the training part only), as CSDI does (Tashiro et al. 2021, App. E). :meth:`denormalize` maps
model-space tensors back to data units, which the core's impute metrics use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polydiff import ArrayDataset, Field, StateSpec


class TimeSeriesDataset(ArrayDataset):
    """Windows of a K-feature series, normalised per feature, NaN-free, with an observed mask.

    Args:
        values: ``[N, K, L]`` raw values in data units; NaN = missing.
        padding: ``[N, K, L]`` (1 = real time step) for series shorter than ``L``; padded steps must be
            NaN or 0 in ``values`` and are never observed.
        features: names of the K features (default ``x0, x1, ...``).
        mean, std: per-feature statistics ``[K]`` (default: fitted on the observed values of ``values``).
        log: model ``log(1 + x)`` instead of ``x`` (non-negative, right-skewed data such as pollutant
            concentrations); :meth:`denormalize` then ends with ``exp(y) - 1``, so samples stay >= 0.
        name: a label for reprs and pictures.

    Attributes:
        mean, std: ``[K]`` float64 tensors; ``x_model = (x_data - mean) / std``.
        features: feature names.
    """

    def __init__(self, values: Tensor | np.ndarray, *, padding: Tensor | None = None,
                 features: Sequence[str] | None = None, mean: Tensor | None = None, std: Tensor | None = None,
                 log: bool = False, name: str = "series") -> None:
        raw = torch.as_tensor(np.asarray(values, dtype=np.float64))
        if raw.ndim != 3:
            raise ValueError(f"time series values must be [N, K, L] (series, features, time steps), got shape "
                             f"{list(raw.shape)}")
        n, k, length = raw.shape
        if n == 0 or length == 0 or k == 0:
            raise ValueError(f"empty time series data of shape {list(raw.shape)}")
        if torch.isinf(raw).any():
            raise ValueError("time series values contain +-inf; mark missing values with NaN")
        real = torch.ones_like(raw) if padding is None else padding.to(torch.float64)
        observed = (~torch.isnan(raw)).to(torch.float64) * real
        self.log = log
        if log:
            if (raw[observed > 0] < 0).any():
                raise ValueError("log=True needs non-negative values (it models log(1 + x)); got negative ones")
            raw = torch.log1p(raw)
        self.features = list(features) if features is not None else [f"x{i}" for i in range(k)]
        if len(self.features) != k:
            raise ValueError(f"{len(self.features)} feature names for {k} features")
        if mean is None or std is None:
            mean, std = fit_statistics(raw, observed, self.features)
        self.mean, self.std = mean.to(torch.float64), std.to(torch.float64)
        self.name = name
        x = torch.where(observed > 0, (raw - self.mean[:, None]) / self.std[:, None], torch.zeros_like(raw))
        super().__init__(StateSpec((Field("x", (k, None)),)), x.float(),
                         padding=None if padding is None else real.float(), observed=observed.float())

    @property
    def observed_mask(self) -> Tensor:
        """``[N, K, L]``, 1 = observed (never ``None`` for series)."""
        assert self.observed is not None
        return self.observed

    @property
    def num_features(self) -> int:
        return self.x.shape[1]

    @property
    def length(self) -> int:
        return self.x.shape[2]

    def normalize(self, x: Tensor) -> Tensor:
        """Data units -> model space; ``x`` is ``[..., K, L]``."""
        x = torch.log1p(x) if self.log else x
        return (x - self.mean[:, None].to(x)) / self.std[:, None].to(x)

    def denormalize(self, x: Tensor) -> Tensor:
        """Model space -> data units; ``x`` is ``[..., K, L]`` (e.g. samples ``[n, S, K, L]``)."""
        y = x * self.std[:, None].to(x) + self.mean[:, None].to(x)
        return torch.expm1(y) if self.log else y

    def raw(self) -> Tensor:
        """The data in data units with NaN where nothing was observed (the inverse of the constructor)."""
        x = self.denormalize(self.x.double())
        return torch.where(self.observed_mask > 0, x, torch.full_like(x, float("nan")))

    def subset(self, indices: Tensor | Sequence[int], *, refit: bool = False) -> TimeSeriesDataset:
        """The windows at ``indices``; ``refit=False`` keeps this dataset's statistics."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        stats = {} if refit else {"mean": self.mean, "std": self.std}
        return TimeSeriesDataset(self.raw()[idx], padding=None if self.padding is None else self.padding[idx],
                                 features=self.features, name=self.name, log=self.log, **stats)

    def split(self, fraction: float) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
        """Chronological (train, test): the last ``fraction`` of the windows are the test set, and the
        statistics of BOTH are fitted on the observed training values only."""
        if not 0 < fraction < 1:
            raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
        n_test = max(1, round(fraction * len(self)))
        if n_test >= len(self):
            raise ValueError(f"{len(self)} windows are too few to hold out {fraction:.0%}")
        train = self.subset(range(len(self) - n_test), refit=True)
        test = TimeSeriesDataset(self.raw()[len(self) - n_test:], features=self.features, name=self.name, log=self.log,
                                 padding=None if self.padding is None else self.padding[len(self) - n_test:],
                                 mean=train.mean, std=train.std)
        return train, test

    def __repr__(self) -> str:
        real = float(self.x.numel() if self.padding is None else self.padding.sum())
        miss = 1 - float(self.observed_mask.sum()) / real
        return (f"TimeSeriesDataset({self.name!r}, n={len(self)}, features={self.num_features}, "
                f"length={self.length}, missing={miss:.1%})")


def fit_statistics(raw: Tensor, observed: Tensor, features: Sequence[str]) -> tuple[Tensor, Tensor]:
    """Per-feature mean and std of the observed entries of ``raw [N, K, L]``; a feature without any
    observed value, or a constant one, cannot be normalised and raises."""
    count = observed.sum(dim=(0, 2))
    empty = [features[i] for i in range(len(features)) if count[i] == 0]
    if empty:
        raise ValueError(f"feature(s) {empty} have no observed value (all NaN); drop them before loading "
                         "(e.g. df.dropna(axis=1, how='all'))")
    filled = torch.where(observed > 0, raw, torch.zeros_like(raw))
    mean = filled.sum(dim=(0, 2)) / count
    var = (((filled - mean[None, :, None]) * observed) ** 2).sum(dim=(0, 2)) / count
    std = var.sqrt()
    # a constant feature has std 0: dividing by 1 keeps it exact (it is 0 after centring)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def sliding_windows(series: np.ndarray, length: int, stride: int) -> np.ndarray:
    """``[T, K]`` -> ``[N, K, length]`` windows starting every ``stride`` steps (the last partial one dropped)."""
    if series.ndim != 2:
        raise ValueError(f"a series must be [T, K] (time steps, features), got shape {list(series.shape)}")
    if length < 2 or stride < 1:
        raise ValueError(f"window length must be >= 2 and stride >= 1, got length={length}, stride={stride}")
    t = series.shape[0]
    if t < length:
        raise ValueError(f"the series has {t} time steps, shorter than the window length {length}; "
                         f"use length <= {t}")
    starts = range(0, t - length + 1, stride)
    return np.stack([series[s:s + length].T for s in starts])


def from_array(values: np.ndarray | Sequence[np.ndarray], *, length: int | None = None, stride: int | None = None,
               features: Sequence[str] | None = None, name: str = "array") -> TimeSeriesDataset:
    """A dataset from numpy data with NaN for missing values.

    * ``[T, K]`` (one long series): cut into windows of ``length`` every ``stride`` (default ``length``);
    * ``[N, K, L]``: windows as given;
    * a list of ``[K, L_i]`` arrays of different lengths: padded to the longest (a padding mask).
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if length is None:
            raise ValueError("a [T, K] series needs a window length (length=...)")
        return TimeSeriesDataset(sliding_windows(values.astype(np.float64), length, stride or length),
                                 features=features, name=name)
    if isinstance(values, np.ndarray) and values.ndim == 3:
        return TimeSeriesDataset(values, features=features, name=name)
    if isinstance(values, np.ndarray):
        raise ValueError(f"expected [T, K], [N, K, L] or a list of [K, L_i] arrays, got shape {list(values.shape)}")
    arrays = [np.asarray(a, dtype=np.float64) for a in values]
    if not arrays or any(a.ndim != 2 or a.shape[0] != arrays[0].shape[0] for a in arrays):
        raise ValueError("a list of series must hold [K, L_i] arrays with the same K")
    longest = max(a.shape[1] for a in arrays)
    out = np.full((len(arrays), arrays[0].shape[0], longest), np.nan)
    padding = torch.zeros(out.shape)
    for i, a in enumerate(arrays):
        out[i, :, :a.shape[1]] = a
        padding[i, :, :a.shape[1]] = 1
    return TimeSeriesDataset(out, padding=padding, features=features, name=name)


def from_dataframe(df: Any, *, length: int, stride: int | None = None, columns: Sequence[str] | None = None,
                   name: str = "dataframe") -> TimeSeriesDataset:
    """A dataset from a pandas DataFrame with a time index (sorted here), one column per feature."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    frame = df[list(columns)] if columns is not None else df.select_dtypes("number")
    if frame.shape[1] == 0:
        raise ValueError("the DataFrame has no numeric column to model")
    frame = frame.sort_index()
    return from_array(frame.to_numpy(dtype=np.float64), length=length, stride=stride,
                      features=[str(c) for c in frame.columns], name=name)


def from_csv(path: str | Path, *, length: int, stride: int | None = None, time_column: str | None = None,
             columns: Sequence[str] | None = None) -> TimeSeriesDataset:
    """A dataset from a CSV file: ``time_column`` (default: the first column) is parsed as the time index."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CSV file {p} does not exist")
    df = pd.read_csv(p)
    col = time_column or str(df.columns[0])
    if col not in df.columns:
        raise ValueError(f"time column {col!r} is not in {p.name}; columns: {list(df.columns)}")
    index = df[col] if pd.api.types.is_numeric_dtype(df[col]) else pd.to_datetime(df[col], errors="raise")
    df = df.set_index(index).drop(columns=[col])
    return from_dataframe(df, length=length, stride=stride, columns=columns, name=p.stem)
