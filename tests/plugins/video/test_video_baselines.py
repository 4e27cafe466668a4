"""Video results beside their baselines on the same clips and masks (copy-last-frame, mean frame,
global-motion extrapolation; Gaussian fit and real clips for generation), and the GIFs of
`polydiff impute`."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("PIL")
from PIL import Image

from polydiff.app.cli import main

TINY = ["data.n=24", "data.frames=4", "data.size=16", "data.digit_size=8", "data.holdout=0.25", "model.channels=8",
        "train.steps=2", "train.batch_size=8", "train.checkpoint_every=2", "sample.n=6", "sample.steps=2"]


def test_video_evaluate_and_impute_print_baseline_rows_and_write_gifs(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "video", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("gaussian_fit", "real_clips", "frame_fd [lower]", "frame CNN: held-out accuracy"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval.json").read_text())["table"]["rows"]}
    assert rows["real_clips"]["frame_fd"] < rows["gaussian_fit"]["frame_fd"]

    assert main(["impute", str(run), "--mask", "future_frames", "--mask-option", "given=2", "--n", "6",
                 "--n-samples", "1", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("copy_last_frame", "mean_frame", "motion", "centroid_error [lower]"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval-imputation.json").read_text())["table"]["rows"]}
    # digits move, so freezing the last frame misplaces them; the three methods give three answers
    assert rows["copy_last_frame"]["centroid_error"] > 0 and 0 < rows["copy_last_frame"]["mae"] < 1
    assert len({rows[m]["mae"] for m in ("copy_last_frame", "mean_frame", "motion")}) == 3
    gifs = sorted((run / "imputations").glob("*-clip*.gif"))
    assert len(gifs) == 6 and all(f"media: {g}" in out for g in gifs)
    with Image.open(gifs[0]) as im:
        assert im.n_frames == 4 and im.size[0] > 2 * im.size[1]  # truth | sample, side by side
