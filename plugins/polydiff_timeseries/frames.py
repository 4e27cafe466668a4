"""A user's table -> one regular ``[T, K]`` series, saying what was done to it.

The rules, applied in this order (each one counted in the load summary):

1. **Numbers.** Every selected column is read as numbers; cells that are not numbers ('nil', '-',
   'n/a', 'error', ...) become missing (NaN) and are counted per column with the words found. A
   column without a single number (a name, an ID, a note) is an error naming it: choose the model's
   columns with ``columns=[...]`` (``data.columns = "a,b"``). Columns are never dropped silently.
2. **Time stamps** (a ``DatetimeIndex`` / numeric index, or the CSV's time column): rows are sorted
   by time; rows whose time cannot be read are dropped and counted.
3. **Grid.** The series is put on a regular grid of spacing ``freq`` (a pandas offset such as
   ``"5min"``, ``"1h"``, ``"D"`` for dates; a number for a numeric time column), inferred when not given
   as the most common spacing between consecutive distinct time stamps. Each row goes to the nearest
   grid step counted from the first time stamp (rows off the grid are counted as snapped). Months,
   quarters and years have no fixed length: ``freq = "M" | "MS" | "Q" | "QS" | "Y" | "YS"`` (or a most
   common spacing of 28-31, 89-92 or 365-366 days) puts each row in its calendar period instead.
4. **Duplicates.** Rows that share a time stamp, or land on the same grid step, are merged into one:
   per column the **mean of the non-missing values** (missing when none is).
5. **Gaps.** Grid steps without any row become missing (NaN), so a window never joins two sides of a
   gap silently; the fraction of missing cells is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MAX_GRID_RATIO = 50  # a grid this many times longer than the rows (and > 100k steps) is a wrong freq


@dataclass
class RegularSeries:
    """One series on a regular grid.

    Attributes:
        values: ``[T, K]`` float64, NaN = missing.
        features: column names.
        times: ``[T]`` grid time stamps (``None`` without a time index).
        notes: what was done, one clause each, for the load summary.
    """

    values: np.ndarray
    features: list[str]
    times: Any = None
    notes: list[str] = field(default_factory=list)


def _tokens(cells: Any, limit: int = 3) -> str:
    words = [str(w) for w in dict.fromkeys(cells.astype(str).str.strip())][:limit]
    return ", ".join(repr(w) for w in words) + (", ..." if cells.astype(str).nunique() > limit else "")


def numeric_frame(df: Any, columns: Sequence[str] | None) -> tuple[Any, list[str]]:
    """``df`` (or its ``columns``) as float64 columns; non-numbers become NaN and are counted (rule 1)."""
    import pandas as pd

    if columns is not None:
        absent = [c for c in columns if c not in df.columns]
        if absent:
            raise ValueError(f"column(s) {absent} are not in the data; its columns are {list(map(str, df.columns))}")
        if not columns:
            raise ValueError("columns=[] selects nothing: name at least one column (or leave it out for all)")
    cols = list(columns) if columns is not None else list(df.columns)
    if not cols:
        raise ValueError("the table has no column to model (only a time column?)")
    out, notes, empty = {}, [], []
    for c in cols:
        s = df[c]
        if pd.api.types.is_datetime64_any_dtype(s) or pd.api.types.is_timedelta64_dtype(s):
            raise ValueError(f"column {c!r} holds time stamps, not values: make it the time column "
                             f"(time_column={c!r}) or leave it out with columns=[...]")
        num = pd.to_numeric(s.astype(float) if pd.api.types.is_bool_dtype(s) else s, errors="coerce")
        bad = num.isna() & s.notna() & (s.astype(str).str.strip() != "")
        if not num.notna().any():
            empty.append(str(c))
            continue
        if bad.any():
            notes.append(f"{int(bad.sum())} non-numeric cell(s) in {c!r} ({_tokens(s[bad])}) read as missing")
        out[str(c)] = num.astype(np.float64)
    if empty:
        raise ValueError(f"column(s) {empty} hold no number at all (text, IDs or all missing); choose the value "
                         "columns with columns=[...] (CLI: data.columns='a,b') or drop them from the file")
    frame = pd.DataFrame(out, index=df.index)
    return frame, notes


def _step_of(freq: str | float | None, kind: str) -> tuple[float | None, str]:
    """A grid spacing in index units (ns for dates) and its readable form, or ``None`` to infer it."""
    import pandas as pd

    if freq is None or freq == "":
        return None, ""
    if kind == "datetime":
        try:
            from pandas.tseries.frequencies import to_offset

            offset = to_offset(str(freq))
            # pandas 3.0 made 'D' a calendar day, which Timedelta refuses; on a grid of dates it is 24 h
            delta = pd.Timedelta(days=offset.n) if isinstance(offset, pd.offsets.Day) else pd.Timedelta(offset)
        except (ValueError, TypeError):
            raise ValueError(f"freq={freq!r} is not a fixed time spacing; use a pandas offset such as '30s', "
                             "'5min', '1h' or 'D' (months and years have no fixed length)") from None
        if delta <= pd.Timedelta(0):
            raise ValueError(f"freq must be a positive spacing, got {freq!r}")
        return float(delta.value), str(freq)
    try:
        step = float(freq)
    except ValueError:
        raise ValueError(f"the time column is numeric, so freq must be a number (e.g. freq=0.5), "
                         f"got {freq!r}") from None
    if not step > 0:
        raise ValueError(f"freq must be a positive spacing, got {freq!r}")
    return step, f"{step:g}"


def _readable(step: float, kind: str) -> str:
    import pandas as pd

    if kind == "datetime":
        from pandas.tseries.frequencies import to_offset

        try:
            return str(to_offset(pd.Timedelta(int(step), unit="ns")).freqstr)
        except ValueError:
            return str(pd.Timedelta(int(step), unit="ns"))
    return f"{step:g}"


def regularize(frame: Any, *, freq: str | float | None = None, numeric_time: bool = False) -> RegularSeries:
    """Rules 2-5 on a numeric frame whose index holds the time stamps: a ``DatetimeIndex``, or numbers
    with ``numeric_time``. Any other index is not time: the rows are taken as consecutive steps, in
    index order."""
    import pandas as pd

    features = [str(c) for c in frame.columns]
    notes: list[str] = []
    kind = "datetime" if isinstance(frame.index, pd.DatetimeIndex) else "numeric"
    if kind == "numeric" and not numeric_time:
        if freq not in (None, ""):
            raise ValueError("freq= needs time stamps: name a time column (time_column=...) or use a "
                             "DatetimeIndex")
        if not frame.index.is_monotonic_increasing:
            notes.append("rows sorted by index")
            frame = frame.sort_index(kind="stable")
        return RegularSeries(frame.to_numpy(np.float64), features, notes=[*notes, "no time stamps: rows taken "
                                                                          "as consecutive steps"])
    if kind == "numeric" and not pd.api.types.is_numeric_dtype(frame.index):
        raise ValueError(f"the time index must hold dates or numbers, got {frame.index.dtype}")
    ok = ~pd.isna(frame.index)
    if not ok.all():
        notes.append(f"{int((~ok).sum())} row(s) without a readable time stamp dropped")
        frame = frame[ok]
    if len(frame) == 0:
        raise ValueError("no row has a readable time stamp")
    if not frame.index.is_monotonic_increasing:
        notes.append("rows sorted by time")
        frame = frame.sort_index(kind="stable")
    t = (frame.index.as_unit("ns").asi8 if kind == "datetime" else frame.index.to_numpy(np.float64))
    rel = (t - t[0]).astype(np.float64)
    distinct = np.unique(rel)
    calendar = _calendar_period(freq, distinct) if kind == "datetime" else None
    if calendar is not None:
        return _calendar_grid(frame, calendar, freq, features, notes)
    step, shown = _step_of(freq, kind)
    if step is None:
        if len(distinct) < 2:
            raise ValueError("all rows share one time stamp: there is no spacing to build a grid from")
        gaps, counts = np.unique(np.diff(distinct), return_counts=True)
        step = float(gaps[counts.argmax()])
        share = counts.max() / counts.sum()
        shown = f"{_readable(step, kind)} (inferred: the most common spacing, {share:.0%} of steps; set freq= " \
                "to choose)"
    pos = np.rint(rel / step).astype(np.int64)
    n_grid = int(pos[-1]) + 1
    if n_grid > MAX_GRID_RATIO * len(distinct) and n_grid > 100_000:
        raise ValueError(f"a grid of spacing {_readable(step, kind)} spans {n_grid} steps for {len(distinct)} time "
                         "stamps (almost all gaps); choose a coarser freq=")
    off = np.abs(rel / step - pos) > 1e-6
    duplicates = len(rel) - len(distinct)
    grouped = frame.set_axis(pos).groupby(level=0, sort=True).mean()  # mean skips NaN (rule 4)
    collided = len(distinct) - len(grouped)
    gridded = grouped.reindex(np.arange(n_grid))
    notes.append(f"grid {shown}")
    if duplicates:
        notes.append(f"{duplicates} duplicate time stamp row(s) merged (mean of the non-missing values)")
    if off.any():
        notes.append(f"{int(off.sum())} off-grid time stamp(s) moved to the nearest step"
                     + (f", {collided} of them onto an occupied step and merged (mean)" if collided else ""))
    if n_grid > len(grouped):
        notes.append(f"{n_grid - len(grouped)} empty grid step(s) in gaps set missing")
    times = (pd.Timestamp(int(t[0]), unit="ns") + pd.to_timedelta(np.arange(n_grid) * step, unit="ns")
             if kind == "datetime" else t[0] + np.arange(n_grid) * step)
    return RegularSeries(gridded.to_numpy(np.float64), features, times, notes)


CALENDAR = {"M": "M", "MS": "M", "ME": "M", "Q": "Q", "QS": "Q", "QE": "Q", "Y": "Y", "YS": "Y", "YE": "Y",
            "A": "Y", "AS": "Y"}
CALENDAR_DAYS = (("M", 28, 31), ("Q", 89, 92), ("Y", 365, 366))  # spacings that mean one calendar period


def _calendar_period(freq: str | float | None, distinct_ns: np.ndarray) -> str | None:
    """``M``, ``Q`` or ``Y`` when ``freq`` names a calendar period, or (``freq`` unset) when the most
    common spacing between distinct time stamps is one month, quarter or year; else ``None``."""
    if freq not in (None, ""):
        return CALENDAR.get(str(freq).upper().split("-")[0])
    if len(distinct_ns) < 2:
        return None
    days = np.round(np.diff(distinct_ns) / 86_400e9).astype(np.int64)
    values, counts = np.unique(days, return_counts=True)
    common = int(values[counts.argmax()])
    return next((p for p, lo, hi in CALENDAR_DAYS if lo <= common <= hi), None)


def _calendar_grid(frame: Any, period: str, freq: str | float | None, features: list[str],
                   notes: list[str]) -> RegularSeries:
    """Rules 3-5 on calendar periods: each row belongs to its month / quarter / year."""
    import pandas as pd

    periods = frame.index.to_period(period)
    pos = (periods.asi8 - periods.asi8[0]).astype(np.int64)
    n_grid = int(pos[-1]) + 1
    day = frame.index.normalize()
    at_start = day == periods.start_time.normalize()
    at_end = day == periods.end_time.normalize()
    off = np.zeros(len(pos), bool) if at_start.all() or at_end.all() else ~(at_start | at_end)
    duplicates = len(pos) - len(np.unique(pos))
    grouped = frame.set_axis(pos).groupby(level=0, sort=True).mean()  # mean skips NaN (rule 4)
    gridded = grouped.reindex(np.arange(n_grid))
    name = {"M": "month", "Q": "quarter", "Y": "year"}[period]
    how = f"freq={freq}" if freq not in (None, "") else "inferred: the most common spacing is one " + name
    notes.append(f"grid: one step per calendar {name} ({how})")
    if duplicates:
        notes.append(f"{duplicates} row(s) sharing a {name} merged (mean of the non-missing values)")
    if off.any():
        notes.append(f"{int(off.sum())} row(s) dated inside their {name}, not at its start or end (grouped by "
                     f"{name} all the same)")
    if n_grid > len(grouped):
        notes.append(f"{n_grid - len(grouped)} empty {name}(s) in gaps set missing")
    times = pd.period_range(periods[0], periods=n_grid, freq=period)  # labels such as 1959Q1, 2020-01
    return RegularSeries(gridded.to_numpy(np.float64), features, times, notes)


def time_indexed(df: Any, time_column: str | None, *, source: str, date_format: str = "",
                 notes: list[str] | None = None) -> Any:
    """``df`` with ``time_column`` (default: the first column) parsed as dates or numbers and set as index
    (dates: :func:`parse_dates`, whose note is appended to ``notes``)."""
    import pandas as pd

    col = time_column or str(df.columns[0])
    if col not in df.columns:
        raise ValueError(f"time column {col!r} is not in {source}; its columns are {list(map(str, df.columns))}")
    raw = df[col]
    if pd.api.types.is_numeric_dtype(raw):
        index: Any = pd.Index(raw.to_numpy(np.float64), name=col)
    else:
        parsed, note = parse_dates(raw, f"time column {col!r} of {source}", date_format)
        if note and notes is not None:
            notes.append(note)
        index = pd.DatetimeIndex(parsed, name=col)
    return df.drop(columns=[col]).set_axis(index)


def parse_dates(raw: Any, what: str, date_format: str = "") -> tuple[Any, str | None]:
    """Dates in ONE format for the whole column: ``date_format`` (strptime codes), else ISO 8601, else the
    format of the first date read month first or day first, whichever reads more of the column (the other
    order's misses show it: '13/01/2021' has no month 13). Parsed value by value, '02/01/2021' would be
    February where '13/01/2021' is January, and the series would be scrambled without a word. Both orders
    reading every date differently is ambiguous: an error asking for ``date_format``. Cells no format
    reads become missing time stamps (their rows are dropped and counted). Returns the dates and a note."""
    import warnings

    import pandas as pd
    text = raw.astype("string").str.strip()
    filled = text.notna() & (text != "")
    if not filled.any():
        raise ValueError(f"{what} is empty; name the right one with time_column=...")
    if date_format:
        parsed = pd.to_datetime(text, errors="coerce", format=date_format)
        if parsed[filled].isna().all():
            raise ValueError(f"{what}: date_format {date_format!r} reads none of its dates (first: "
                             f"{text[filled].iloc[0]!r})")
        return parsed, None
    iso = pd.to_datetime(text, errors="coerce", format="ISO8601")
    if iso[filled].notna().all():
        return iso, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        readable = filled & pd.to_datetime(text, errors="coerce", format="mixed").notna()
    first = str(text[readable if readable.any() else filled].iloc[0])  # a junk first cell guesses no format
    reads = []  # (format, dates): month first, then day first (often one format: 'Jan 05, 2021')
    for dayfirst in (False, True):
        fmt = _guess_format(first, dayfirst)
        with warnings.catch_warnings():  # no single format: dateutil, value by value
            warnings.simplefilter("ignore")
            reads.append((fmt or f"dayfirst={dayfirst}", pd.to_datetime(
                text, errors="coerce", **({"format": fmt} if fmt else {"format": "mixed", "dayfirst": dayfirst}))))
    (_, month), (day_fmt, day) = reads
    n_month, n_day = int(month[filled].notna().sum()), int(day[filled].notna().sum())
    if max(n_month, n_day, int(iso[filled].notna().sum())) == 0:
        raise ValueError(f"{what} holds no readable date or number (first value: {first!r}); name the right one "
                         "with time_column=...")
    if int(iso[filled].notna().sum()) >= max(n_month, n_day):
        return iso, None
    if n_month == n_day and not month.equals(day):
        raise ValueError(f"{what}: dates such as {first!r} read as month/day and as day/month alike; set "
                         "date_format= (e.g. '%d/%m/%Y' or '%m/%d/%Y')")
    if n_day > n_month:
        missed = text[filled & month.isna()].iloc[0]
        return day, (f"dates read day first ({day_fmt}): {missed!r} is not a month/day date")
    return month, None


def _guess_format(first: str, dayfirst: bool) -> str | None:
    """pandas' guess of ``first``'s format; it guesses none for two-digit years ('13/01/21'), so those are
    guessed with the year written out and read back as ``%y``."""
    import re

    from pandas.tseries.api import guess_datetime_format

    fmt = guess_datetime_format(first, dayfirst=dayfirst)
    short = re.match(r"^(\d{1,2}[/.-]\d{1,2}[/.-])(\d{2})(?!\d)(.*)$", first)
    if fmt is None and short:
        fmt = guess_datetime_format(f"{short[1]}20{short[2]}{short[3]}", dayfirst=dayfirst)
        return fmt.replace("%Y", "%y") if fmt else None
    return fmt
