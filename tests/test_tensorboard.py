"""Issue 21: train.log = "tensorboard" writes the metrics.jsonl scalars (and sample pictures) as events."""

import json

import pytest

from polydiff.app.cli import main

pytest.importorskip("tensorboard")


def test_tensorboard_events_hold_the_logged_scalars_and_pictures(tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "ring"
    assert main(["train", "points", "--out", str(out), "train.steps=20", "train.log_every=5", "train.log=tensorboard",
                 "train.checkpoint_every=20", "data.n=128", "model.width=16", "--quiet"]) == 0
    assert main(["sample", str(out), "--n", "32", "--steps", "3", "--quiet"]) == 0
    acc = EventAccumulator(str(out / "tensorboard"), size_guidance={"scalars": 0, "images": 0}).Reload()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    events = acc.Scalars("train/loss")
    assert [e.step for e in events] == [r["step"] for r in rows] == [5, 10, 15, 20]
    assert [e.value for e in events] == pytest.approx([r["loss"] for r in rows], rel=1e-6)
    assert any(tag.startswith("samples/") for tag in acc.Tags()["images"])


def test_without_tensorboard_the_option_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    assert main(["train", "points", "--out", str(tmp_path / "r"), "train.log=tensorboard"]) == 2
    assert "pip install tensorboard" in capsys.readouterr().err and not (tmp_path / "r").exists()
