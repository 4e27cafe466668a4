"""model.prior_fill from a config reaches the model: the run's denoiser carries the fill, a residual
run estimates sigma_data of x - fill, and configs that cannot use a fill are refused before training."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("statsmodels")
from polydiff.app.cli import main
from polydiff.app.run_model import load_denoiser
from polydiff.app.runs import Run, load_data
from polydiff.diffusion.prior_fill import prior_fill_of

TINY = ["data.dataset=co2", "data.length=26", "data.stride=26", "data.holdout=0.1", "model.channels=8",
        "model.layers=1", "model.heads=2", "model.time_dim=8", "model.feature_dim=4", "model.emb_dim=8",
        "train.steps=4", "train.batch_size=8", "train.conditional=true", "train.mask_strategy=mix",
        "train.device=cpu", "train.checkpoint_every=4", "train.warmup_steps=0"]


@pytest.mark.parametrize("mode", ["condition", "residual"])
def test_prior_fill_from_the_cli(tmp_path, capsys, mode):
    out = tmp_path / mode
    assert main(["train", "timeseries", *TINY, f"model.prior_fill={mode}", "--out", str(out), "--quiet"]) == 0
    run = Run.open(out)
    denoiser = load_denoiser(run, load_data(run.config)[0])
    assert prior_fill_of(denoiser) is not None and prior_fill_of(denoiser).mode == mode
    sigma_data = json.loads((out / "config.json").read_text())["model"]["sigma_data"]
    if mode == "residual":  # co2 is smooth: what linear interpolation misses is far below the data's spread
        assert 0 < sigma_data < 0.5
    assert main(["impute", str(out), "--mask", "random_fixed", "--mask-option", "ratio=0.2", "--n", "3",
                 "--n-samples", "2", "--steps", "3", "--quiet"]) == 0


@pytest.mark.parametrize("bad,message", [(["train.conditional=false"], "needs a conditional"),
                                         (["model.prior_fill=sometimes"], "prior_fill")])
def test_prior_fill_config_errors(tmp_path, capsys, bad, message):
    code = main(["train", "timeseries", *TINY, "model.prior_fill=residual", *bad, "--out", str(tmp_path / "r")])
    assert code == 2 and message in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_a_modality_without_a_fill_is_refused(tmp_path, capsys):
    code = main(["train", "points", "model.prior_fill=condition", "train.conditional=true", "model.conditional=true",
                 "--out", str(tmp_path / "p")])
    assert code == 2 and "declares no prior fill" in capsys.readouterr().err
