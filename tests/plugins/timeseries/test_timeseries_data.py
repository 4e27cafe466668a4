"""Time-series data: NaN handling, normalisation fitted on observed training values, loaders, errors."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from polydiff import plugins

pytest.importorskip("statsmodels")
from polydiff_timeseries import (
    TimeSeriesDataset,
    from_array,
    from_csv,
    from_dataframe,
    load_co2,
    sliding_windows,
)
from polydiff_timeseries.datasets import load_basic_motions


def _series(seed: int = 0, t: int = 60, k: int = 3, missing: float = 0.2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=[5.0, -2.0, 100.0][:k], scale=[1.0, 0.1, 30.0][:k], size=(t, k))
    x[rng.random(x.shape) < missing] = np.nan
    return x


def test_nan_becomes_unobserved_and_normalisation_round_trips() -> None:
    raw = _series()
    ds = from_array(raw, length=20, stride=10)
    windows = sliding_windows(raw, 20, 10)
    assert torch.isfinite(ds.x).all()  # the core never sees a NaN
    assert torch.equal(ds.observed_mask.bool(), torch.from_numpy(~np.isnan(windows)))
    assert (ds.x[ds.observed_mask == 0] == 0).all()
    back = ds.raw().numpy()
    np.testing.assert_array_equal(np.isnan(back), np.isnan(windows))
    np.testing.assert_allclose(back[~np.isnan(back)], windows[~np.isnan(windows)], rtol=1e-6, atol=1e-5)
    # statistics of the OBSERVED values only, per feature
    np.testing.assert_allclose(ds.mean.numpy(), np.nanmean(windows, axis=(0, 2)), rtol=1e-10)
    np.testing.assert_allclose(ds.std.numpy(), np.nanstd(windows, axis=(0, 2)), rtol=1e-10)
    x = torch.randn(2, 5, 3, 20, dtype=torch.float64)  # [n, S, K, L] samples too
    assert torch.allclose(ds.normalize(ds.denormalize(x)), x, atol=1e-12)


def test_split_fits_statistics_on_the_training_part_only() -> None:
    raw = _series(t=100)
    raw[80:, 0] += 1000.0  # a level shift in the test period must not leak into the statistics
    ds = from_array(raw, length=10)
    train, test = ds.split(0.2)
    assert len(train) == 8 and len(test) == 2
    assert torch.equal(train.mean, test.mean) and torch.equal(train.std, test.std)
    np.testing.assert_allclose(train.mean.numpy(), np.nanmean(raw[:80], axis=0), rtol=1e-6)  # float32 storage
    assert float(test.x[:, 0][test.observed_mask[:, 0] > 0].mean()) > 100  # far from 0 in training units
    co2_train, co2_test = load_co2(part="train"), load_co2(part="test")
    assert torch.equal(co2_train.mean, co2_test.mean)
    assert co2_train.observed_mask.mean() < 1  # natural gaps (early years) survive


def test_clear_errors_for_all_nan_features_and_short_series() -> None:
    raw = _series()
    raw[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"\['x1'\] have no observed value"):
        from_array(raw, length=20)
    with pytest.raises(ValueError, match="shorter than the window length 100; use length <= 60"):
        from_array(_series(), length=100)
    with pytest.raises(ValueError, match=r"\[N, K, L\]"):
        TimeSeriesDataset(np.zeros((4, 5)))
    with pytest.raises(ValueError, match="inf"):
        TimeSeriesDataset(np.full((1, 1, 4), np.inf))


def test_dataframe_csv_and_ragged_loaders(tmp_path) -> None:
    raw = _series(t=40, k=2)
    index = pd.date_range("2024-01-01", periods=40, freq="D")
    df = pd.DataFrame(raw, index=index, columns=["a", "b"]).iloc[::-1]  # unsorted on purpose
    ds = from_dataframe(df, length=10, stride=5)
    assert ds.features == ["a", "b"] and len(ds) == 7
    np.testing.assert_allclose(ds.raw().numpy()[0], raw[:10].T, rtol=1e-6, atol=1e-5)  # sorted by time
    path = tmp_path / "series.csv"
    df.rename_axis("when").reset_index().to_csv(path, index=False)
    from_file = from_csv(path, length=10, stride=5)
    assert torch.equal(from_file.observed_mask, ds.observed_mask) and torch.allclose(from_file.x, ds.x)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        from_csv(tmp_path / "nope.csv", length=4)
    spec = plugins.get_dataset("timeseries", "csv")  # the same file through the registry (data.dataset = "csv")
    registered = spec.build(path=str(path), length=10, stride=5, columns="b")
    assert registered.features == ["b"] and torch.equal(registered.observed_mask, ds.observed_mask[:, 1:])
    with pytest.raises(ValueError, match="data.path"):
        spec.build()
    # tiled training windows all start at one phase: a forecast's --calibrate given moves them by multiples
    # of the stride; overlapping ones (stride 5 < length 10) may move by any step
    assert (ds.alignment, from_file.alignment, registered.alignment) == (1, 1, 1)
    tiled = from_csv(path, length=10)  # stride defaults to the length: cut into days, say
    assert tiled.alignment == 10 and from_csv(path, length=10, stride=12).alignment == 12
    assert load_co2(part="test", stride=52).alignment == 52  # the test part's windows: the training stride
    assert [d.alignment for d in tiled.split(0.3)] == [10, 10] and tiled.subset([0, 2]).alignment == 10
    ragged = from_array([raw[:12].T, raw[:7].T])
    assert ragged.sample_shape == (2, 12) and ragged.padding is not None
    assert ragged.padding[1, :, 7:].sum() == 0 and ragged.observed_mask[1, :, 7:].sum() == 0


def test_missing_optional_package_names_the_pip_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)  # what an uninstalled package looks like to import
    with pytest.raises(ImportError, match="pip install aeon"):
        load_basic_motions()


def test_log_transform_round_trips_and_rejects_negative_values() -> None:
    raw = np.abs(_series())
    windows = sliding_windows(raw, 20, 20)
    ds = TimeSeriesDataset(windows, log=True)
    np.testing.assert_allclose(ds.mean.numpy(), np.nanmean(np.log1p(windows), axis=(0, 2)), rtol=1e-10)
    back = ds.raw().numpy()
    np.testing.assert_allclose(back[~np.isnan(back)], windows[~np.isnan(windows)], rtol=1e-5)
    assert (ds.denormalize(torch.full((1, 3, 20), -50.0)) >= -1).all()  # exp(y) - 1 > -1: never below the floor
    with pytest.raises(ValueError, match="non-negative"):
        TimeSeriesDataset(-windows, log=True)
