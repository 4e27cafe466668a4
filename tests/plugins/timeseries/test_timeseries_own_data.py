"""A user's own series: non-numbers read as missing and counted, duplicates merged, a regular grid with
gaps as missing, a chronological split with training statistics, and errors instead of silent bending."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from polydiff import plugins
from polydiff.reporting import quiet, report

pytest.importorskip("statsmodels")
from polydiff_timeseries import from_array, from_csv, from_dataframe


def _export(path, rows) -> None:
    pd.DataFrame(rows, columns=["Timestamp", "Glucose", "Insulin"]).to_csv(path, index=False)


def test_non_numeric_cells_become_missing_and_are_counted(tmp_path) -> None:
    rows = [(f"2024-01-01 00:{5 * i:02d}", "nil" if i in (2, 5) else ("-" if i == 7 else str(100.0 + i)),
             str(float(i))) for i in range(12)]
    _export(tmp_path / "cgm.csv", rows)
    ds = from_csv(tmp_path / "cgm.csv", length=4)
    assert ds.features == ["Glucose", "Insulin"]  # nothing dropped: the text-polluted column is kept
    raw = ds.raw().numpy()[:, 0].reshape(-1)
    assert np.isnan(raw).sum() == 3 and np.isnan(raw[[2, 5, 7]]).all()
    assert raw[0] == pytest.approx(100.0)
    assert "3 non-numeric cell(s) in 'Glucose' ('nil', '-') read as missing" in ds.summary
    chosen = from_csv(tmp_path / "cgm.csv", length=4, columns=["Glucose"])  # columns=[...] parses the same way
    assert chosen.features == ["Glucose"] and torch.equal(chosen.observed_mask, ds.observed_mask[:, :1])
    assert "3 non-numeric cell(s)" in chosen.summary


def test_a_column_without_numbers_is_named_in_an_error(tmp_path) -> None:
    df = pd.DataFrame({"t": range(10), "value": np.arange(10.0), "device": ["G6"] * 10})
    df.to_csv(tmp_path / "x.csv", index=False)
    with pytest.raises(ValueError, match=r"\['device'\] hold no number at all.*columns="):
        from_csv(tmp_path / "x.csv", length=5)
    assert from_csv(tmp_path / "x.csv", length=5, columns=["value"]).features == ["value"]
    with pytest.raises(ValueError, match=r"\['nope'\] are not in the data"):
        from_csv(tmp_path / "x.csv", length=5, columns=["nope"])
    with pytest.raises(ValueError, match="time column 'when' is not in"):
        from_csv(tmp_path / "x.csv", length=5, time_column="when")


def test_duplicates_merged_by_mean_and_gaps_become_missing_on_the_grid() -> None:
    t = pd.date_range("2024-01-01", periods=40, freq="5min")
    truth = np.stack([np.arange(40.0), 10 + np.arange(40.0) ** 0.5], axis=1)
    df = pd.DataFrame(truth, index=t, columns=["a", "b"])
    gap = list(range(12, 20))
    df = df.drop(t[gap])
    dup = df.iloc[[3]].copy()
    dup.iloc[0, 0] = 103.0  # the merged value must be the mean (3 + 103) / 2 = 53
    dup.iloc[0, 1] = np.nan  # a missing duplicate cell does not count in the mean
    df = pd.concat([df, dup]).sample(frac=1.0, random_state=0)  # shuffled, as exports sometimes are
    ds = from_dataframe(df, length=40)
    expected = truth.copy()
    expected[gap] = np.nan
    expected[3, 0] = 53.0
    got = ds.raw().numpy()[0].T
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    np.testing.assert_allclose(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-6, atol=1e-5)
    assert "grid 5min (inferred" in ds.summary and "1 duplicate time stamp row(s) merged" in ds.summary
    assert "8 empty grid step(s) in gaps set missing" in ds.summary and "rows sorted by time" in ds.summary
    assert f"{np.isnan(expected).mean():.1%} of the series missing" in ds.summary


def test_freq_option_and_snapping_of_jittered_time_stamps() -> None:
    t = pd.date_range("2024-01-01", periods=24, freq="10min") + pd.to_timedelta([0, -7] * 12, unit="s")
    df = pd.DataFrame({"v": np.arange(24.0)}, index=t)
    ds = from_dataframe(df, length=24, freq="10min")
    np.testing.assert_allclose(ds.raw().numpy()[0, 0], np.arange(24.0), atol=1e-5)  # float32 storage
    assert "12 off-grid time stamp(s) moved to the nearest step" in ds.summary
    coarse = from_dataframe(df, length=12, freq="20min")  # two rows per step: merged by their mean
    np.testing.assert_allclose(coarse.raw().numpy()[0, 0], np.arange(24.0).reshape(12, 2).mean(1), atol=1e-5)
    with pytest.raises(ValueError, match="shorter than the window length"):  # a calendar month: 1 step
        from_dataframe(df, length=4, freq="MS")
    with pytest.raises(ValueError, match="coarser freq"):
        from_dataframe(df, length=4, freq="1ms")


def test_numeric_time_column_with_a_gap(tmp_path) -> None:
    seconds = np.r_[np.arange(0, 50, 0.5), np.arange(57, 80, 0.5)]  # 7 s without a reading
    pd.DataFrame({"sec": seconds, "acc": np.sin(seconds)}).to_csv(tmp_path / "imu.csv", index=False)
    ds = from_csv(tmp_path / "imu.csv", length=20, stride=20)
    assert ds.length == 20 and "grid 0.5 (inferred" in ds.summary and "14 empty grid step(s)" in ds.summary
    observed = ds.observed_mask.sum(dim=(1, 2))
    assert (observed < 20).any()  # the gap is missing inside a window, not joined over


def test_chronological_split_fits_statistics_on_the_train_part_only(tmp_path) -> None:
    t = pd.date_range("2024-01-01", periods=100, freq="h")
    v = np.random.default_rng(0).normal(size=100)
    v[80:] += 1000.0  # a level shift in the test period must not leak into the statistics
    path = tmp_path / "s.csv"
    pd.DataFrame({"time": t, "v": v}).to_csv(path, index=False)
    train = from_csv(path, length=10, part="train", test_fraction=0.2)
    test = from_csv(path, length=10, part="test", test_fraction=0.2)
    everything = from_csv(path, length=10, part="all", test_fraction=0.2)
    assert (len(train), len(test), len(everything)) == (8, 2, 10)
    assert float(train.mean[0]) == pytest.approx(v[:80].mean()) and torch.equal(test.std, train.std)
    assert torch.equal(everything.mean, train.mean)
    np.testing.assert_allclose(test.raw().numpy().reshape(-1), v[80:], rtol=1e-6)
    assert "part=test (last 20%: 20 of 100 steps)" in test.summary
    with pytest.raises(ValueError, match="part='test' needs a split"):
        from_csv(path, length=10, part="test", test_fraction=0.0)
    with pytest.raises(ValueError, match="train part has 8 time steps, shorter than the window length 10"):
        from_csv(path, length=10, part="train", test_fraction=0.92)


def test_from_array_honours_length_for_variable_length_series() -> None:
    rng = np.random.default_rng(0)
    series = [rng.normal(size=(2, n)) for n in (30, 7, 12)]
    ds = from_array(series, length=10)
    assert ds.sample_shape == (2, 10) and len(ds) == 3 + 1 + 1  # 30 -> 3, 7 -> 1 padded, 12 -> 1 (+2 unused)
    assert ds.padding is not None and float(ds.padding[3, :, 7:].sum()) == 0 and float(ds.padding[4].sum()) == 20
    np.testing.assert_allclose(ds.raw().numpy()[1], series[0][:, 10:20], rtol=1e-6)
    assert "1 series shorter than 10 padded" in ds.summary and "last 2 step(s) of the series 2" in ds.summary
    with pytest.raises(ValueError, match="already windows of 8 steps; length=5"):
        from_array(rng.normal(size=(3, 2, 8)), length=5)


def test_values_that_overflow_normalisation_are_an_error() -> None:
    x = np.random.default_rng(0).normal(size=(50, 1))
    x[3, 0] = 1e300
    with pytest.raises(ValueError, match="overflow normalisation.*1e\\+300"):
        from_array(x, length=10)
    ok = np.random.default_rng(0).normal(size=(100, 1))
    ok[95, 0] = 1e300  # only in the test part: the training statistics are fine, the scaled value is not
    df = pd.DataFrame({"v": ok[:, 0]}, index=pd.date_range("2024-01-01", periods=100, freq="D"))
    with pytest.raises(ValueError, match="overflow normalisation, e.g. 1e\\+300 in feature 'v'"):
        from_dataframe(df, length=10, part="test", test_fraction=0.2)


def test_csv_dataset_options_from_the_registry(tmp_path) -> None:
    t = pd.date_range("2024-01-01", periods=60, freq="15min")
    pd.DataFrame({"when": t, "a": np.arange(60.0), "b": ["nil"] + ["1.5"] * 59}).to_csv(tmp_path / "f.csv",
                                                                                          index=False)
    spec = plugins.get_dataset("timeseries", "csv")
    assert {"freq", "part", "test_fraction", "date_format"} <= set(spec.options)  # every keyword of the loader
    ds = spec.build(path=str(tmp_path / "f.csv"), length=6, freq="30min", part="train", test_fraction=0.5)
    assert len(ds) == 2 and "grid 30min" in ds.summary and "1 non-numeric cell(s) in 'b'" in ds.summary


def test_the_summary_is_one_line_on_stderr_and_quiet_silences_it(tmp_path, capsys) -> None:
    from_array(np.random.default_rng(0).normal(size=(30, 2)), length=10)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("polydiff: timeseries 'array'") and "3 window(s)" in err[0]
    with quiet():
        report("not shown")
        from_array(np.random.default_rng(0).normal(size=(30, 2)), length=10)
    assert capsys.readouterr().err == ""


def test_cli_trains_on_a_csv_export_and_a_text_column_stops_it_with_its_name(tmp_path, capsys) -> None:
    from polydiff.app.cli import main

    t = pd.date_range("2024-01-01", periods=200, freq="5min").delete(range(60, 70))
    glucose = np.round(120 + 20 * np.sin(np.arange(len(t)) / 9), 1).astype(object)
    glucose[::13] = "nil"
    path = tmp_path / "cgm.csv"
    pd.DataFrame({"time": t, "glucose": glucose, "device": "G6"}).to_csv(path, index=False)
    tiny = ["model.channels=8", "model.layers=1", "model.heads=2", "model.time_dim=8", "model.feature_dim=4",
            "model.emb_dim=8", "train.steps=2", "train.batch_size=4", "train.device=cpu", "train.warmup_steps=0"]
    data = ["data.dataset=csv", f"data.path={path}", "data.length=12", "data.part=train"]
    assert main(["train", "timeseries", *data, *tiny, "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "['device'] hold no number at all" in capsys.readouterr().err
    assert main(["train", "timeseries", *data, "data.columns=glucose", *tiny, "--out", str(tmp_path / "run"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "non-numeric cell(s) in 'glucose' ('nil') read as missing" in err
    assert "10 empty grid step(s) in gaps set missing" in err and "part=train (first 80%: 160 of 200 steps)" in err
    # data.date_format reaches the loader from the CLI; one that reads nothing names the file, exit 2
    glucose_only = [*data, "data.columns=glucose", *tiny]
    assert main(["train", "timeseries", *glucose_only, "data.date_format=%d/%m/%Y", "--out",
                 str(tmp_path / "fmt"), "--quiet"]) == 2
    assert "time column 'time' of cgm.csv: date_format '%d/%m/%Y' reads none of its dates" in capsys.readouterr().err
    assert main(["train", "timeseries", *glucose_only, "data.date_format=%Y-%m-%d %H:%M:%S", "--out",
                 str(tmp_path / "fmt"), "--quiet"]) == 0


def test_day_first_dates_are_read_in_one_format_for_the_whole_column(tmp_path) -> None:
    """A European export (DD/MM/YYYY): read value by value, '02/01/2021' was February and '13/01/2021'
    January, and 40 days became a scrambled series with gaps. One format for the column keeps them in order."""
    days = pd.date_range("2021-01-01", periods=40, freq="D")
    values = np.arange(40.0)
    pd.DataFrame({"date": days.strftime("%d/%m/%Y"), "kwh": values}).to_csv(tmp_path / "eu.csv", index=False)
    junk_first = tmp_path / "eu_junk.csv"  # a junk cell first: the format comes from the first real date
    pd.DataFrame({"date": ["??", *days.strftime("%d/%m/%Y")], "kwh": [0.0, *values]}).to_csv(junk_first, index=False)
    assert "1 row(s) without a readable time stamp dropped" in from_csv(junk_first, length=40).summary
    ds = from_csv(tmp_path / "eu.csv", length=40)
    assert "dates read day first (%d/%m/%Y): '13/01/2021' is not a month/day date" in ds.summary
    assert "sorted" not in ds.summary and "grid 24h" in ds.summary and "0.0% of the series missing" in ds.summary
    assert np.allclose(ds.raw().numpy()[0, 0], values, atol=1e-4)  # every day in place, none missing
    us = tmp_path / "us.csv"  # month first: read as written, no note
    pd.DataFrame({"date": days.strftime("%m/%d/%Y"), "kwh": values}).to_csv(us, index=False)
    assert np.allclose(from_csv(us, length=40).raw().numpy()[0, 0], values, atol=1e-4)
    # only days 1-12: either order reads every date, differently; an error names the option
    short = tmp_path / "short.csv"
    pd.DataFrame({"date": days[:12].strftime("%d/%m/%Y"), "kwh": values[:12]}).to_csv(short, index=False)
    with pytest.raises(ValueError, match=r"'01/01/2021' read as month/day and as day/month alike; set date_format="):
        from_csv(short, length=4)
    ds = plugins.get_dataset("timeseries", "csv").build(path=str(short), length=12, date_format="%d/%m/%Y",
                                                         test_fraction=0)
    assert np.allclose(ds.raw().numpy()[0, 0], values[:12], atol=1e-4)
    with pytest.raises(ValueError, match=r"date_format '%Y' reads none of its dates"):
        from_csv(short, length=4, date_format="%Y")
    # two-digit years, which pandas guesses no format for, day first too
    yy = tmp_path / "yy.csv"
    pd.DataFrame({"date": days.strftime("%d/%m/%y"), "kwh": values}).to_csv(yy, index=False)
    ds = from_csv(yy, length=40)
    assert "dates read day first (%d/%m/%y)" in ds.summary
    assert np.allclose(ds.raw().numpy()[0, 0], values, atol=1e-4)
    # month names: both orders guess one format, read as written
    named = tmp_path / "named.csv"
    pd.DataFrame({"date": [*days[:20].strftime("%b %d, %Y"), "n/a"], "kwh": np.arange(21.0)}).to_csv(named, index=False)
    ds = from_csv(named, length=20)
    assert np.allclose(ds.raw().numpy()[0, 0], np.arange(20.0), atol=1e-4) and "dropped" in ds.summary
    # a junk cell in an ISO column: its row is dropped and counted, the rest read as ISO
    iso = tmp_path / "iso.csv"
    stamps = [*days[:10].strftime("%Y-%m-%d"), "n/a", *days[10:20].strftime("%Y-%m-%d")]
    pd.DataFrame({"date": stamps, "kwh": np.arange(21.0)}).to_csv(iso, index=False)
    ds = from_csv(iso, length=20)
    assert "1 row(s) without a readable time stamp dropped" in ds.summary and "day first" not in ds.summary
