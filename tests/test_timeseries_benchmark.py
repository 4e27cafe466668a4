"""benchmarks/timeseries.py's tuning split: validation windows carved from the training part share no
time step with the windows the tuning model trains on, and none comes from the test part."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

from polydiff_timeseries.data import window_series

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "timeseries.py"


@pytest.fixture(scope="module")
def bench(load_script) -> ModuleType:
    return load_script(BENCH, "bench_timeseries")


def _steps(ds: object) -> list[set[int]]:
    """Each window's time steps: the series below holds its own step index as the value."""
    raw = ds.raw()  # type: ignore[attr-defined]
    return [set(np.rint(w[0].numpy()).astype(int).tolist()) for w in raw]


@pytest.mark.parametrize(("stride", "length"), [(1, 16), (4, 52), (3, 12)])
def test_validation_windows_disjoint_from_tuning_train_and_inside_train_part(bench: ModuleType, stride: int,
                                                                            length: int) -> None:
    total = 600
    series = np.arange(total, dtype=np.float64)[:, None] + 1.0  # value = step + 1 (no zero-variance window)
    train = window_series(series, length=length, stride=stride, part="train", test_fraction=0.2, name="steps")
    test = window_series(series, length=length, stride=length, part="test", test_fraction=0.2, name="steps")
    fit, val = bench.validation_split(train, stride, 0.2)
    fit_steps = set().union(*_steps(fit))
    val_windows = _steps(val)
    val_steps = set().union(*val_windows)
    test_steps = set().union(*_steps(test))
    assert len(val) >= 1 and len(fit) >= 1
    assert not fit_steps & val_steps, "a validation step is also a tuning-training step"
    assert not val_steps & test_steps and not fit_steps & test_steps, "tuning touched a test step"
    assert max(fit_steps) < min(val_steps)
    assert sum(len(w) for w in val_windows) == len(val_steps), "validation windows overlap"
    assert torch.equal(val.mean, train.mean) and torch.equal(val.std, train.std)  # statistics of the train part


def test_validation_split_without_room_is_a_clear_error(bench: ModuleType) -> None:
    series = np.arange(100, dtype=np.float64)[:, None] + 1.0
    train = window_series(series, length=40, stride=40, part="train", test_fraction=0.2, name="short")
    with pytest.raises(ValueError, match="holds no full window"):
        bench.validation_split(train, 40, 0.05)
