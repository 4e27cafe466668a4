"""Series from tables: a DataFrame with a time index, or a CSV file with a time column, put on a regular
grid (:mod:`polydiff_timeseries.frames`) and cut into windows (:func:`polydiff_timeseries.data.window_series`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .data import TimeSeriesDataset, window_series
from .frames import numeric_frame, regularize, time_indexed


def from_dataframe(df: Any, *, length: int, stride: int | None = None, columns: Sequence[str] | None = None,
                   time_column: str | None = None, freq: str | float | None = None, part: str = "all",
                   test_fraction: float = 0.0, name: str = "dataframe", notes: Sequence[str] = (),
                   date_format: str = "", source: str = "the DataFrame") -> TimeSeriesDataset:
    """A dataset from a pandas DataFrame, one column per feature (every column, or ``columns``).

    The time stamps are the ``DatetimeIndex``, or ``time_column`` (dates or numbers); the series is
    put on a regular grid of spacing ``freq`` (inferred: the most common spacing), duplicate time
    stamps are merged (mean of the non-missing values) and gaps become missing values; dates are read in
    one format for the whole column (``date_format``, else inferred by
    :func:`~polydiff_timeseries.frames.parse_dates`); cells that are not numbers are read as missing and
    counted (rules in :mod:`polydiff_timeseries.frames`). Without time stamps the rows are consecutive
    steps. ``part`` / ``test_fraction``: a chronological split,
    statistics fitted on the train part (:func:`window_series`). A one-line summary is reported.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame, got {type(df).__name__}")
    notes = list(notes)
    if time_column:
        df = time_indexed(df, time_column, source=source, date_format=date_format, notes=notes)
    numeric_time = bool(time_column) and not isinstance(df.index, pd.DatetimeIndex)
    frame, parsed = numeric_frame(df, columns)
    regular = regularize(frame, freq=freq, numeric_time=numeric_time)
    return window_series(regular.values, length=length, stride=stride, part=part, test_fraction=test_fraction,
                         features=regular.features, name=name, notes=[*notes, *parsed, *regular.notes],
                         times=regular.times)


def from_csv(path: str | Path, *, length: int, stride: int | None = None, time_column: str | None = None,
             columns: Sequence[str] | None = None, freq: str | float | None = None, part: str = "all",
             test_fraction: float = 0.0, date_format: str = "") -> TimeSeriesDataset:
    """A dataset from a CSV file: ``time_column`` (default: the first column) holds the time stamps
    (dates or numbers; ``date_format``: their strptime format, e.g. ``%d/%m/%Y``); the rest as
    :func:`from_dataframe`."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"CSV file {p} does not exist")
    try:
        df = pd.read_csv(p, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise ValueError(f"{p} is not a readable CSV file: {e}") from None
    if df.shape[1] < 2:
        raise ValueError(f"{p.name} has {df.shape[1]} column(s): it needs a time column and at least one value "
                         "column (comma-separated, with a header row)")
    col = time_column or str(df.columns[0])
    notes = [f"{len(df)} rows from {p.name}, time column {col!r}"]
    return from_dataframe(df, length=length, stride=stride, columns=columns, time_column=col, freq=freq, part=part,
                          test_fraction=test_fraction, name=p.stem, notes=notes, date_format=date_format,
                          source=p.name)
