"""Months, quarters and years are calendar periods, not fixed spacings: quarterly data is never bent."""

import numpy as np
import pandas as pd
import pytest

from polydiff_timeseries import from_csv
from polydiff_timeseries.frames import regularize


def test_quarterly_csv_keeps_every_quarter(tmp_path):
    idx = pd.date_range("1959-01-01", periods=204, freq="QS")
    df = pd.DataFrame({"date": idx, "gdp": np.arange(204.0)}).drop(index=range(80, 88))  # a 2-year gap
    df = pd.concat([df, df.iloc[[5]].assign(gdp=1000.0)])  # a duplicated quarter
    df.to_csv(tmp_path / "macro.csv", index=False)
    ds = from_csv(tmp_path / "macro.csv", length=4, time_column="date")
    values = {t: float(v) for w, stamps in zip(ds.raw()[:, 0], ds.timestamps, strict=True)
              for t, v in zip(stamps, w, strict=True)}
    assert len(ds) == 49  # 51 windows of 4 quarters; the 2 inside the gap hold nothing and are dropped
    near = lambda v: pytest.approx(v, abs=1e-3)  # noqa: E731  (float32 storage)
    assert values["1959Q1"] == near(0.0) and values["1960Q2"] == near((5.0 + 1000.0) / 2)  # its own quarter
    assert values["1984Q1"] == near(100.0) and values["2009Q4"] == near(203.0)  # no drift after 50 years
    assert "1979Q1" not in values and "1980Q4" not in values  # the gap's windows hold nothing: dropped, counted
    assert values["1978Q4"] == near(79.0) and values["1981Q1"] == near(88.0)  # not joined across the gap
    assert "one step per calendar quarter" in ds.summary and "off-grid" not in ds.summary


@pytest.mark.parametrize("freq,start", [("ME", "2020-01-31"), ("MS", "2020-01-01"), ("YS", "1990-01-01")])
def test_month_and_year_stamps_at_either_end_of_the_period(freq, start):
    idx = pd.date_range(start, periods=30, freq=freq)
    out = regularize(pd.DataFrame({"x": np.arange(30.0)}, index=idx))
    assert out.values[:, 0].tolist() == list(range(30)) and len(out.notes) == 1


def test_an_explicit_calendar_freq_and_a_fixed_one():
    idx = pd.to_datetime(["2021-01-15", "2021-02-20", "2021-04-02"])
    out = regularize(pd.DataFrame({"x": [1.0, 2.0, 3.0]}, index=idx), freq="M")
    assert np.isnan(out.values[2, 0]) and out.values[3, 0] == 3.0
    assert "dated inside their month" in "; ".join(out.notes)
    fixed = regularize(pd.DataFrame({"x": [1.0, 2.0]}, index=pd.to_datetime(["2021-01-01", "2021-01-03"])),
                       freq="1D")
    assert fixed.values.shape == (3, 1)
