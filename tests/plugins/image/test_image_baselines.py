"""Image results beside their baselines: `polydiff evaluate` and `polydiff impute` print the model with
the Gaussian fit (floor), real images (ceiling), the mean image and the harmonic fill, on the same items."""

from __future__ import annotations

import json

from polydiff.app.cli import main

TINY = ["data.n=120", "model.channels=8", "model.channel_mult=1,2", "model.heads=2", "train.steps=2",
        "train.batch_size=16", "train.checkpoint_every=2", "train.warmup_steps=0", "train.device=cpu",
        "sample.n=32", "sample.steps=2", "sample.sampler=euler"]


def test_image_evaluate_and_impute_print_baseline_rows(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "image", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("gaussian_fit", "floor", "real_images", "ceiling", "classifier_fd [lower]",
                  "reference CNN: held-out accuracy"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval.json").read_text())["table"]["rows"]}
    # real digits are far closer to the held-out digits than a 2-step model or a Gaussian blur
    assert rows["real_images"]["classifier_fd"] < rows["gaussian_fit"]["classifier_fd"]
    assert rows["real_images"]["classifier_fd"] < rows["model"]["classifier_fd"]

    assert main(["impute", str(run), "--mask", "center_box", "--mask-option", "size=0.5", "--n", "8",
                 "--n-samples", "2", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mean_image" in out and "harmonic_fill" in out and "mae [lower]" in out
    table = json.loads((run / "eval-imputation.json").read_text())["table"]
    rows = {r["method"]: r["scores"] for r in table["rows"]}
    # on the centre of digits, smooth inpainting from the border beats nothing; both are real numbers
    assert 0 < rows["harmonic_fill"]["mae"] < 1 and 0 < rows["mean_image"]["mae"] < 1
