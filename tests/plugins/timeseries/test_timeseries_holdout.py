"""The run's held-out windows never share a step with its training windows: overlapping windows (stride <
length) are split in time (one series) or by series (several); windows that tile are split at random."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("statsmodels")
from polydiff.app.cli import main
from polydiff.app.config import load_file
from polydiff.app.runs import load_data, resolve_config
from polydiff.diffusion.data import holdout_split
from polydiff_timeseries import from_array


def _steps(ds: object, rows: torch.Tensor) -> list[set[int]]:
    """Each window's steps: the series holds its own step index + 1 as the value (NaN where missing)."""
    raw = ds.raw()[rows].nan_to_num(-1.0)  # type: ignore[attr-defined]
    return [set(np.rint(w[0].numpy()).astype(int).tolist()) - {-1} for w in raw]


def _csv(tmp_path, steps: int = 400):
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=steps, freq="h"),
                          "load": np.arange(steps, dtype=float) + 1.0})
    frame.loc[7, "load"] = np.nan
    path = tmp_path / "load.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("stride", [1, 5])
def test_overlapping_windows_of_one_series_are_held_out_apart_in_time(tmp_path, capsys, stride: int) -> None:
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.2, "path": str(_csv(tmp_path)), "length": 24, "stride": stride}})
    train, held = load_data(config)
    assert "the windows overlap, so the held-out ones are the last 20% of the" in capsys.readouterr().err
    ds = train.dataset  # type: ignore[attr-defined]
    train_steps = set().union(*_steps(ds, train.indices))  # type: ignore[attr-defined]
    held_windows = _steps(ds, held.indices)  # type: ignore[attr-defined]
    held_steps = set().union(*held_windows)
    assert len(held_windows) == 3 and sum(map(len, held_windows)) == len(held_steps)  # tiled, no overlap
    assert not train_steps & held_steps and max(train_steps) < min(held_steps) <= 321
    assert len(train) >= (320 - 24) // stride  # every window that ends before the held-out part trains


def test_windows_that_tile_are_held_out_at_random_as_any_dataset(tmp_path) -> None:
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.2, "path": str(_csv(tmp_path)), "length": 20, "stride": 20}})
    train, held = load_data(config)
    reference = holdout_split(train.dataset, 0.2, seed=config.data.split_seed)  # type: ignore[attr-defined]
    assert torch.equal(held.indices, reference[1].indices)  # type: ignore[attr-defined]


def test_overlapping_windows_of_several_series_hold_out_whole_series() -> None:
    series = [np.arange(60, dtype=float)[None] + 1000 * i for i in range(10)]
    ds = from_array(series, length=12, stride=3)
    train, held = ds.holdout_split(0.3, seed=1)
    sources = ds.sources
    assert len(sources[held.indices].unique()) == 3
    assert not set(sources[held.indices].tolist()) & set(sources[train.indices].tolist())
    assert len(train) + len(held) == len(ds)


def test_a_small_holdout_still_holds_out_the_last_window_and_no_room_to_train_is_a_clear_error(
        tmp_path, capsys) -> None:
    path = _csv(tmp_path, steps=200)
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.05, "path": str(path), "length": 24, "stride": 1}})
    train, held = load_data(config)  # 5% of 200 steps is under one window: the last window is held out
    assert held.indices.tolist() == [176] and int(train.indices.max()) == 152  # type: ignore[attr-defined]
    capsys.readouterr()
    assert main(["train", "timeseries", "data.dataset=csv", f"data.path={_csv(tmp_path, steps=30)}",
                 "data.length=24", "data.stride=1", "train.steps=1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "data.holdout: timeseries 'load': windows overlap" in err and "leaves no training window" in err
    assert "Traceback" not in err


def test_the_example_holds_out_the_last_fifth_of_the_year_as_the_benchmark_tests() -> None:
    train, held = load_data(resolve_config(load_file("examples/timeseries.toml")))
    starts = train.dataset.starts  # type: ignore[attr-defined]
    assert starts[held.indices].tolist() == [293, 317, 341]  # type: ignore[attr-defined]
    assert int(starts[train.indices].max()) + 24 <= 293 and len(train) == 270  # type: ignore[attr-defined]
