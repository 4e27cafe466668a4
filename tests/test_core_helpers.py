"""The glue benchmarks and plugins share: CPU-second training budgets, EMA weights in and out, and the
mask of entries that hold data."""

from __future__ import annotations

import re
import time

import pytest
import torch

from polydiff import Batch
from polydiff.training import TrainConfig
from train_script import make_trainer


def test_max_cpu_seconds_stops_training_and_says_so():
    trainer = make_trainer("labels", steps=10**6, max_cpu_seconds=0.5)
    start = time.process_time()
    summary = trainer.fit(progress=False)
    spent = time.process_time() - start
    assert 0.5 <= spent < 5 and 0 < summary["step"] < 10**6
    assert summary["stopped"].startswith("train.max_cpu_seconds = 0.5 reached at step")
    # the budget counts every fit of this Trainer: raising steps does not reset it
    trainer.config = TrainConfig(**{**trainer.config.__dict__, "steps": summary["step"] + 10**6})
    assert trainer.fit(progress=False)["step"] <= summary["step"] + 2


def test_the_progress_bar_shows_the_budget_that_ends_the_run(capsys):
    """Its step count and ETA assume train.steps; with a budget the bar says how much of it is spent."""
    trainer = make_trainer("labels", steps=10**6, max_cpu_seconds=0.3)
    trainer.config = TrainConfig(**{**trainer.config.__dict__, "log_every": 1})
    trainer.fit(progress=True)
    err = capsys.readouterr().err
    assert re.search(r"loss=[\d.]+, cpu=\d+/0\.3s", err), err[-300:]


def test_a_bad_cpu_budget_is_named():
    with pytest.raises(ValueError, match="train.max_cpu_seconds must be > 0"):
        TrainConfig(max_cpu_seconds=0)


def test_ema_weights_in_the_block_and_raw_weights_after():
    trainer = make_trainer("labels", steps=12)
    trainer.fit(progress=False)
    raw = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    ema = trainer.ema_state_dict()
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    with trainer.ema_weights() as model:
        assert all(torch.equal(model.state_dict()[k], ema[k]) for k in ema)
    assert all(torch.equal(trainer.model.state_dict()[k], raw[k]) for k in raw)
    model = trainer.apply_ema()
    assert not model.training and all(torch.equal(model.state_dict()[k], ema[k]) for k in ema)


def test_present_is_observed_else_padding_else_everything():
    x = torch.randn(2, 3)
    pad = torch.tensor([[1.0, 1, 0], [1, 0, 0]])
    obs = torch.tensor([[1.0, 0, 0], [0, 0, 0]])
    assert torch.equal(Batch(x=x).present(), torch.ones_like(x))
    assert torch.equal(Batch(x=x, padding=pad).present(), pad)
    assert torch.equal(Batch(x=x, padding=pad, observed=obs).present(), obs)
