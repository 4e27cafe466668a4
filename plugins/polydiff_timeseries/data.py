"""Multivariate time series as the core sees them: windows ``x[B, K, L]`` with an observed mask.

NaN in the input marks a missing value: it becomes ``observed = 0`` and a 0 in ``x`` (the core never
sees a NaN). Values are normalised per feature with the mean and standard deviation of the OBSERVED
values of the windows the statistics are fitted on (by default all of them; :meth:`split` fits them
on the training part only), as CSDI does (Tashiro et al. 2021, App. E). :meth:`denormalize` maps
model-space tensors back to data units, which the core's impute metrics use.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from polydiff import ArrayDataset, Field, StateSpec, report
from polydiff.diffusion import Subset, holdout_apart, split_apart

FLOAT32_MAX = float(torch.finfo(torch.float32).max)
PARTS = ("train", "test", "all")


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
        alignment: the training windows' stride where they tile the series, else 1
            (:func:`tile_alignment`); ``--calibrate given`` moves a forecast window by multiples of it.
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
        self.timestamps: list[list[str]] | None = None  # per window its steps' time labels (gridded loads)
        self.starts: Tensor | None = None  # per window its first step in its source series (loaders that cut)
        self.sources: Tensor | None = None  # per window the index of its source series
        self.summary = ""  # what the loader did (items, grid, merged, dropped), one line; see polydiff.report
        x = torch.where(observed > 0, (raw - self.mean[:, None]) / self.std[:, None], torch.zeros_like(raw))
        _check_range(x, raw, self.features)
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
        stats = {} if refit else {"mean": self.mean, "std": self.std}
        return self._take(torch.as_tensor(indices, dtype=torch.long), stats)

    def _take(self, idx: Tensor, stats: dict[str, Tensor]) -> TimeSeriesDataset:
        out = TimeSeriesDataset(self.raw()[idx], padding=None if self.padding is None else self.padding[idx],
                                features=self.features, name=self.name, log=self.log, **stats)
        if self.timestamps is not None:
            out.timestamps = [self.timestamps[int(i)] for i in idx]
        if self.starts is not None and self.sources is not None:
            out.starts, out.sources = self.starts[idx], self.sources[idx]
        out.alignment = self.alignment
        return out

    @property
    def window_length(self) -> int:
        """Steps per window (what ``starts`` count in)."""
        return self.sample_shape[-1]

    def holdout_split(self, fraction: float, *, seed: int = 0) -> tuple[Subset, Subset]:
        """The run's (train, held-out) windows (``data.holdout``). Windows that share steps (``stride <
        length``) are split apart: of one series, its last ``fraction`` of steps tiled by windows that do not
        overlap is held out, and the windows sharing a step with those are left out of training; of
        several, whole series (the end of each when ``fraction`` of them is under one). Otherwise at
        random, as any dataset."""
        return holdout_apart(self, fraction, seed=seed, length=self.window_length, name=self._label)

    @property
    def _label(self) -> str:
        return f"timeseries {self.name!r}"

    def _apart(self, fraction: float) -> tuple[Tensor, Tensor] | None:
        if self.starts is None or self.sources is None:
            return None
        return split_apart(self.starts, self.sources, self.window_length, fraction, seed=0, name=self._label,
                           option="split fraction")

    def split(self, fraction: float) -> tuple[TimeSeriesDataset, TimeSeriesDataset]:
        """Chronological (train, test): the last ``fraction`` of the windows are the test set (of overlapping
        windows, as :meth:`holdout_split` holds them out: apart from the training ones), and the statistics
        of BOTH are fitted on the observed training values only."""
        if not 0 < fraction < 1:
            raise ValueError(f"split fraction must be in (0, 1), got {fraction}")
        apart = self._apart(fraction)
        if apart is None:
            n_test = max(1, round(fraction * len(self)))
            if n_test >= len(self):
                raise ValueError(f"{len(self)} windows are too few to hold out {fraction:.0%}")
            apart = torch.arange(len(self) - n_test), torch.arange(len(self) - n_test, len(self))
        train = self.subset(apart[0], refit=True)
        return train, self._take(apart[1], {"mean": train.mean, "std": train.std})

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
    bad = [features[i] for i in range(len(features))
           if not (abs(float(mean[i])) <= FLOAT32_MAX and float(std[i]) <= FLOAT32_MAX)]
    if bad:
        peak = float(torch.where(observed > 0, raw.abs(), torch.zeros_like(raw)).amax())
        raise ValueError(f"feature(s) {bad} overflow normalisation: values up to {peak:.3g} give a mean or standard "
                         f"deviation beyond the float32 range ({FLOAT32_MAX:.3g}); fix the bad entries (a sentinel "
                         "such as 1e300 for 'missing'? use NaN) or rescale the column")
    # a constant feature has std 0: dividing by 1 keeps it exact (it is 0 after centring)
    return mean, torch.where(std > 0, std, torch.ones_like(std))


def _check_range(x: Tensor, raw: Tensor, features: Sequence[str]) -> None:
    """Normalised values must fit float32 (the model's precision): a 1e300 among O(1) data does not."""
    over = ~(x.abs() <= FLOAT32_MAX)
    if over.any():
        n, k, t = (int(i) for i in over.nonzero()[0])
        raise ValueError(f"{int(over.sum())} value(s) overflow normalisation, e.g. {float(raw[n, k, t]):.3g} in "
                         f"feature {features[k]!r} (window {n}, step {t}), which is beyond the float32 range "
                         "after scaling by the training statistics; fix the bad entries (use NaN for missing) "
                         "or rescale the column")


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


def _windows(series: np.ndarray, length: int, stride: int, what: str,
             notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`sliding_windows` that notes the uncovered tail and drops (and counts) windows with no
    observed value (they carry nothing to learn or score); returns the windows and their start steps."""
    if series.shape[0] < length:
        raise ValueError(f"the {what} has {series.shape[0]} time steps, shorter than the window length {length}; "
                         f"use length <= {series.shape[0]}" + (" or a smaller test_fraction" if what != "series"
                                                               else ""))
    w = sliding_windows(series, length, stride)
    tail = series.shape[0] - ((len(w) - 1) * stride + length)
    if tail:
        notes.append(f"last {tail} step(s) of the {what} shorter than a window, not used")
    empty = np.isnan(w).all(axis=(1, 2))
    if empty.all():
        raise ValueError(f"every window of the {what} is entirely missing; check the columns and the grid (freq=)")
    if empty.any():
        notes.append(f"{int(empty.sum())} window(s) of the {what} with no observed value dropped")
    return w[~empty], np.arange(0, len(w) * stride, stride)[~empty]


def tile_alignment(stride: int, length: int) -> int:
    """The dataset's ``alignment`` for training windows cut every ``stride`` steps: ``stride`` when they tile
    the series (``stride >= length``: days of an hourly series all start at midnight, and a model may read
    a step's position as its hour), else 1. Overlapping windows show each step at several positions; on
    CO2 (stride 4, 52 weeks) a forecast calibration moved by its horizon held 0.921 of the test values, and
    moved by a multiple of 4, the next larger one, 0.981 (one model, benchmarks/README.md)."""
    return stride if stride >= length else 1


def window_series(series: np.ndarray, *, length: int, stride: int | None = None, part: str = "all",
                  test_fraction: float = 0.0, test_stride: int | None = None, features: Sequence[str] | None = None,
                  name: str = "series", log: bool = False, notes: Sequence[str] = (),
                  times: Sequence[Any] | None = None) -> TimeSeriesDataset:
    """Windows of ``part`` of one long ``[T, K]`` series (NaN = missing), split in time.

    ``test_fraction > 0``: the last ``test_fraction`` of the steps are the test part (``part = "test"``:
    windows every ``test_stride``, default ``length``), the rest the train part; the statistics are
    fitted on the observed values of the train windows, whatever ``part`` is (``"all"``: windows of the
    whole series). ``test_fraction = 0``: no split, statistics of every window (``part`` must be
    ``"all"``). The load summary (``dataset.summary``) is reported with ``notes`` in front. ``times``
    (``[T]`` grid time stamps) gives the dataset ``timestamps``: per window the labels of its steps.
    """
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")
    if not 0 <= test_fraction < 1:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if test_fraction == 0 and part != "all":
        raise ValueError(f"part={part!r} needs a split: set test_fraction in (0, 1), e.g. 0.2")
    stride = train_stride = stride or length
    dropped: list[str] = []  # what windowing left out, after the source's notes
    total = series.shape[0]
    cut = round((1 - test_fraction) * total) if test_fraction else total
    if test_fraction and cut in (0, total):
        raise ValueError(f"test_fraction={test_fraction} of {total} steps leaves an empty part")
    what = "train part" if test_fraction else "series"
    train_notes = dropped if part == "train" or not test_fraction else []
    train_w, starts = _windows(series[:cut], length, stride, what, train_notes)
    train = TimeSeriesDataset(train_w, features=features, name=name, log=log)
    if part == "train" or not test_fraction:
        out = train
        span = f"first {1 - test_fraction:.0%}: {cut} of {total} steps" if test_fraction else f"{total} steps"
    else:
        rest = series[cut:] if part == "test" else series
        stride = (test_stride or length) if part == "test" else stride
        w, starts = _windows(rest, length, stride, "test part" if part == "test" else "series", dropped)
        out = TimeSeriesDataset(w, features=features, name=name, mean=train.mean, std=train.std, log=log)
        span = f"last {test_fraction:.0%}: {total - cut} of {total} steps" if part == "test" else f"{total} steps"
    out.alignment = tile_alignment(train_stride, length)
    out.starts, out.sources = torch.as_tensor(starts, dtype=torch.long), torch.zeros(len(out), dtype=torch.long)
    if times is not None:
        offset = cut if test_fraction and part == "test" else 0
        out.timestamps = [[str(t) for t in times[offset + s:offset + s + length]] for s in starts]
    names = ", ".join(out.features[:6]) + (", ..." if out.num_features > 6 else "")
    out.summary = "; ".join([
        f"timeseries {name!r}", *notes, f"{out.num_features} feature(s) ({names}), "
        f"{float(np.isnan(series).mean()):.1%} of the series missing",
        f"part={part} ({span}) -> {len(out)} window(s) of {length} steps, stride {stride}, statistics from "
        + ("the train part" if test_fraction else "all windows"), *dropped])
    report(out.summary)
    return out


def from_array(values: np.ndarray | Sequence[np.ndarray], *, length: int | None = None, stride: int | None = None,
               features: Sequence[str] | None = None, name: str = "array") -> TimeSeriesDataset:
    """A dataset from numpy data with NaN for missing values.

    * ``[T, K]`` (one long series): cut into windows of ``length`` every ``stride`` (default ``length``);
    * ``[N, K, L]``: windows as given (``length``, if given, must equal ``L``);
    * a list of ``[K, L_i]`` arrays of different lengths: without ``length``, padded to the longest (a
      padding mask); with ``length``, each series is cut into windows of ``length`` every ``stride``
      and a series shorter than ``length`` becomes one padded window.
    """
    if isinstance(values, np.ndarray) and values.ndim == 2:
        if length is None:
            raise ValueError("a [T, K] series needs a window length (length=...)")
        return window_series(values.astype(np.float64), length=length, stride=stride, features=features, name=name)
    if isinstance(values, np.ndarray) and values.ndim == 3:
        if length is not None and length != values.shape[2]:
            raise ValueError(f"values of shape {list(values.shape)} are already windows of {values.shape[2]} steps; "
                             f"length={length} would be ignored: drop it, or pass one [T, K] series to cut")
        return TimeSeriesDataset(values, features=features, name=name)
    if isinstance(values, np.ndarray):
        raise ValueError(f"expected [T, K], [N, K, L] or a list of [K, L_i] arrays, got shape {list(values.shape)}")
    arrays = [np.asarray(a, dtype=np.float64) for a in values]
    if not arrays or any(a.ndim != 2 or a.shape[0] != arrays[0].shape[0] for a in arrays):
        raise ValueError("a list of series must hold [K, L_i] arrays with the same K")
    notes: list[str] = []
    pieces: list[np.ndarray] = []
    starts: list[int] = []
    sources: list[int] = []
    short = 0
    if length is not None:
        for i, a in enumerate(arrays):
            if a.shape[1] >= length:
                cut, at = _windows(a.T, length, stride or length, f"series {i}", notes)
                pieces.extend(cut)
                starts.extend(int(s) for s in at)
                sources.extend([i] * len(cut))
            else:
                pieces.append(a)
                starts.append(0)
                sources.append(i)
                short += 1
    else:
        pieces = arrays
    longest = length or max(a.shape[1] for a in pieces)
    out = np.full((len(pieces), arrays[0].shape[0], longest), np.nan)
    padding = torch.zeros(out.shape)
    for i, a in enumerate(pieces):
        out[i, :, :a.shape[1]] = a
        padding[i, :, :a.shape[1]] = 1
    ds = TimeSeriesDataset(out, padding=padding, features=features, name=name)
    if length is not None:
        ds.alignment = tile_alignment(stride or length, length)
        ds.starts, ds.sources = torch.tensor(starts, dtype=torch.long), torch.tensor(sources, dtype=torch.long)
    sizes = sorted(a.shape[1] for a in arrays)
    ds.summary = (f"timeseries {name!r}: {len(arrays)} series of {sizes[0]}-{sizes[-1]} steps x "
                  f"{ds.num_features} feature(s) -> {len(ds)} window(s) of {longest} steps"
                  + (f" (stride {stride or length}; {short} series shorter than {length} padded)" if length else
                     f" (padded to the longest; {sum(s < longest for s in sizes)} series padded)")
                   + "".join(f"; {n}" for n in notes))
    report(ds.summary)
    return ds
