"""Gridded loads give every window the time stamps of its steps (``dataset.timestamps``), so the CSV
that ``polydiff impute`` writes has a filled ``time`` column (issue 18 s4)."""
from __future__ import annotations

import numpy as np
import pandas as pd

from polydiff_timeseries import from_dataframe


def _frame() -> pd.DataFrame:
    t = pd.date_range("2024-01-01", periods=60, freq="1h")
    df = pd.DataFrame({"v": np.arange(60, dtype=float)}, index=t)
    df.loc[t[8:16], "v"] = np.nan  # one whole window missing: dropped, must not shift later labels
    return df


def test_train_windows_carry_their_grid_time_stamps() -> None:
    ds = from_dataframe(_frame(), length=8, part="train", test_fraction=0.2)
    assert ds.timestamps is not None and len(ds.timestamps) == len(ds)
    # window 0 covers 00:00-07:00; window [8, 16) is all missing and dropped, so the next starts at 16:00
    assert ds.timestamps[0][0] == "2024-01-01 00:00:00" and ds.timestamps[0][-1] == "2024-01-01 07:00:00"
    assert ds.timestamps[1][0] == "2024-01-01 16:00:00"
    first_value = float(ds.raw()[1, 0, 0])
    assert abs(first_value - 16.0) < 1e-4  # the label and the value agree


def test_test_part_labels_start_after_the_cut_and_survive_subset() -> None:
    ds = from_dataframe(_frame(), length=4, part="test", test_fraction=0.2)
    assert ds.timestamps is not None
    assert ds.timestamps[0][0] == "2024-01-03 00:00:00"  # step 48 = the last 20 % of 60 steps
    assert abs(float(ds.raw()[0, 0, 0]) - 48.0) < 1e-4
    sub = ds.subset([1])
    assert sub.timestamps == [ds.timestamps[1]]


def test_no_time_index_means_no_time_stamps() -> None:
    ds = from_dataframe(pd.DataFrame({"v": np.arange(20.0)}), length=5)
    assert ds.timestamps is None
