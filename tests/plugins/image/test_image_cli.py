"""End to end through the CLI on a tiny class-conditional U-Net: train, sample with CFG, evaluate;
inpaint held-out digits with ``polydiff impute`` and score them."""

from __future__ import annotations

import json
import math

import torch

from polydiff.app.cli import main
from polydiff.app.impute_workflow import read_imputation

TINY = ["data.n=120", "model.channels=8", "model.channel_mult=1,2", "model.heads=2", "model.class_cond=true",
        "train.steps=4", "train.batch_size=16", "train.checkpoint_every=4", "train.warmup_steps=0",
        "train.device=cpu", "sample.n=16", "sample.steps=3", "sample.sampler=euler"]


def test_cli_train_sample_evaluate_impute(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "image", *TINY, "--out", str(run), "--quiet"]) == 0
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["data"]["dataset"] == "digits" and cfg["model"]["backbone"] == "unet"

    assert main(["sample", str(run), "--cfg-scale", "2", "--label", "3", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "NFE 3" in out
    pngs = sorted(p.name for p in (run / "samples").rglob("*.png"))
    assert any(p.endswith("-trajectory.png") for p in pngs) and any(p.endswith("_label3.png") for p in pngs)

    assert main(["evaluate", str(run), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 16 and res["classifier_fd"] > 0 and 0 <= res["classifier_accuracy"] <= 1
    assert math.isfinite(res["nll_nats_per_dim"])

    assert main(["impute", str(run), "--mask", "center_box", "--mask-option", "size=0.5", "--n", "4",
                 "--n-samples", "2", "--steps", "2", "--quiet"]) == 0
    files = sorted((run / "imputations").glob("*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".png").stat().st_size > 1000
    imp, meta = read_imputation(files[0])
    assert imp.samples.shape == (4, 2, 1, 16, 16) and meta["mask"] == "center_box"
    assert imp.target[..., 4:12, 4:12].eq(1).all() and imp.target.sum() == 4 * 64
    given = imp.given.bool().unsqueeze(1).expand_as(imp.samples)
    assert torch.equal(imp.samples[given], imp.truth.unsqueeze(1).expand_as(imp.samples)[given])
    capsys.readouterr()
    assert main(["evaluate", str(run), "--imputations", str(files[0]), "--json", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out)
    # errors in [0, 1] intensity units (the dataset's denormalize): a 4-step model is poor, not absurd
    assert 0 < scores["mae"] < 1 and 0 < scores["rmse"] < 1.5 and scores["coverage_90"] is None  # 2 samples


def test_cli_errors_are_clear(tmp_path, capsys):
    assert main(["train", "image", "data.dataset=folder", "data.path=" + str(tmp_path / "none"),
                 "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "does not exist; set data.path=DIR" in capsys.readouterr().err
    assert main(["train", "image", "data.dataset=fashion_mnist", f"data.root={tmp_path}",
                 "--out", str(tmp_path / "r1"), "--quiet"]) == 2
    assert "apt-get install -y dataset-fashion-mnist" in capsys.readouterr().err
    assert main(["train", "image", "model.chanels=8", "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "did you mean 'channels'" in capsys.readouterr().err


def test_cli_masked_training_then_outpainting(tmp_path, capsys):
    """A CSDI-style conditional U-Net (trained on image_mixed targets) gets the visible pixels as input."""
    run = tmp_path / "cond"
    tiny = [t for t in TINY if "class_cond" not in t]
    assert main(["train", "image", *tiny, "train.conditional=true", "train.mask_strategy=image_mixed",
                 "model.conditional=true", "--out", str(run), "--quiet"]) == 0
    assert main(["sample", str(run), "--quiet"]) == 2
    assert "conditional (masked) model" in capsys.readouterr().err
    assert main(["impute", str(run), "--mask", "half", "--mask-option", "side=right", "--n", "3",
                 "--n-samples", "2", "--steps", "2", "--quiet"]) == 0
    imp, _ = read_imputation(next((run / "imputations").glob("*.safetensors")))
    assert imp.target[..., 8:].eq(1).all() and imp.target[..., :8].eq(0).all()
    assert torch.equal(imp.samples[..., :8], imp.truth[:, None, ..., :8].expand_as(imp.samples[..., :8]))
