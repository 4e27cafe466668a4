"""``polydiff evaluate`` on a run with no samples says it samples first (and how to draw fewer); the
trajectory picture keeps only the paths the modality asks for."""

from __future__ import annotations

import dataclasses

from polydiff import plugins
from polydiff.app.cli import main
from polydiff.plugins.specs import spec_problems

TINY = ["train.steps=4", "train.batch_size=32", "train.checkpoint_every=4", "data.n=256", "model.width=16",
        "model.depth=1", "sample.n=64", "sample.steps=4"]


def test_evaluate_without_samples_says_it_samples_first(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "points", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"no samples in {run / 'samples'} yet: drawing sample.n = 64 with heun (4 steps) first" in err
    assert f"`polydiff sample {run} --n N` draws fewer" in err
    assert list((run / "samples").glob("*.safetensors"))


def test_trajectory_items_is_a_positive_int():
    points = plugins.get_modality("points")
    assert points.trajectory_items == 512 and plugins.get_modality("video").trajectory_items == 4
    assert "trajectory_items must be a positive int, got 0" in spec_problems(dataclasses.replace(points,
                                                                                                trajectory_items=0))
