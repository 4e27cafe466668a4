"""The command line end to end on a tiny video run: train, sample (GIF/MP4), evaluate; a conditional
future-frame model: impute --mask future_frames, evaluate --imputations."""

import json

import pytest
from safetensors.torch import load_file

from polydiff.app.cli import main

TINY = ["data.n=24", "data.frames=4", "data.size=16", "data.digit_size=8", "data.holdout=0.25", "model.channels=8",
        "train.steps=4", "train.batch_size=8", "train.log_every=2", "train.checkpoint_every=4", "sample.n=6",
        "sample.steps=3"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("video-runs")
    assert main(["train", "video", *TINY, "model.class_cond=true", "--out", str(root / "uncond"), "--quiet"]) == 0
    assert main(["train", "video", *TINY, "model.conditional=true", "train.conditional=true",
                 "train.mask_strategy=future_frames", "train.mask_options={given=0}", "--out", str(root / "cond"),
                 "--quiet"]) == 0
    return root


def test_train_sample_evaluate(runs, capsys):
    run = runs / "uncond"
    assert json.loads((run / "config.json").read_text())["model"]["backbone"] == "video_unet"
    capsys.readouterr()
    assert main(["sample", str(run), "--label", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    gifs = sorted(run.glob("samples/*/*_label3.gif"))
    assert len(gifs) == 6 and all(g.read_bytes()[:6] == b"GIF89a" for g in gifs)
    assert next(run.glob("samples/*/grid.mp4")).stat().st_size > 1000 and "trajectory.png" in out
    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 6 and res["frame_fd"] > 0 and res["frame_diff_w1"] >= 0
    assert 0 <= res["frame_accuracy"] <= 1  # samples asked for label 3


def test_impute_future_frames_then_evaluate(runs, capsys):
    run = runs / "cond"
    capsys.readouterr()
    assert main(["impute", str(run), "--mask", "future_frames", "--mask-option", "given=1", "--n", "3",
                 "--n-samples", "2", "--steps", "3", "--quiet"]) == 0
    files = list((run / "imputations").glob("future_frames-given1-*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".png").stat().st_size > 1000
    t = load_file(str(files[0]))
    assert t["samples"].shape == (3, 2, 4, 1, 16, 16)
    assert (t["samples"][:, :, 0] == t["truth"][:, None, 0]).all()  # the given frame is returned exactly
    assert t["target"][:, 0].sum() == 0 and t["target"][:, 1:].min() == 1
    capsys.readouterr()
    assert main(["evaluate", str(run), "--imputations", str(files[0]), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["targets"] == 3 * 3 * 16 * 16 and res["mae"] > 0 and res["centroid_error"] >= 0
    assert 0 <= res["digit_identity"] <= 1


def test_bad_video_path_is_a_clear_cli_error(tmp_path, capsys):
    assert main(["train", "video", "data.dataset=files", f"data.path={tmp_path}/missing.mp4",
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "does not exist" in capsys.readouterr().err
