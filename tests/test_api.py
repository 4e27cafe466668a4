"""The Python API mirrors the CLI: polydiff.train / load_run -> sample, impute, evaluate."""

import json
import re

import pytest
import torch

import polydiff

TINY = {"train.steps": 30, "train.batch_size": 64, "train.checkpoint_every": 30, "data.n": 512, "model.width": 32,
        "model.depth": 1, "sample.n": 64, "sample.steps": 4}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return polydiff.train("points", out=tmp_path_factory.mktemp("api") / "ring", overrides=TINY, progress=False)


def test_train_returns_the_opened_run(run):
    assert isinstance(run, polydiff.TrainedRun) and run.config.train.steps == 30
    assert json.loads((run.path / "config.json").read_text())["model"]["width"] == 32
    assert polydiff.load_run(run.path).config == run.config


def test_sample_returns_tensors_and_writes_the_cli_files(run):
    out = run.sample(n=50, sampler="dpmpp_2m", steps=5, seed=3)
    assert out.x.shape == (50, 2) and torch.isfinite(out.x).all() and out.nfe == 5
    assert out.path.parent == run.path / "samples" and out.path.exists()
    again = run.sample(n=10, sampler="dpmpp_2m", steps=5, seed=3)  # per-sample seeds: a prefix of the first call
    torch.testing.assert_close(again.x, out.x[:10])


def test_evaluate_and_impute(run, capsys):
    scores = run.evaluate(likelihood_n=16)
    assert scores["sliced_w2"] > 0 and "nll_nats_per_dim" in scores
    imp = run.impute(mask="random_ratio", n=8, n_samples=3, steps=4)
    assert imp.samples.shape == (8, 3, 2)
    given = imp.given.bool()
    assert torch.equal(imp.samples[:, 0][given], imp.truth[given])  # given entries are exact
    wide = run.impute(mask="random_ratio", n=8, n_samples=3, steps=4, calibrate=20)  # same items, mask, noise
    spread, wide_spread = imp.samples - imp.median()[:, None], wide.samples - wide.median()[:, None]
    torch.testing.assert_close(wide.median(), imp.median())
    assert not torch.allclose(wide_spread, spread)  # widened (or narrowed) by the fitted factor
    scale = (wide_spread.abs().sum() / spread.abs().sum()).item()
    torch.testing.assert_close(wide_spread, scale * spread, atol=1e-4, rtol=1e-4)
    # nothing held back: the items' own given entries (2-D points: ~1 per item, so 40 items for 10+ targets)
    raw = run.impute(mask="random_ratio", n=40, n_samples=3, steps=4)
    own = run.impute(mask="random_ratio", n=40, n_samples=3, steps=4, calibrate="given")
    torch.testing.assert_close(own.median(), raw.median())
    assert not torch.allclose(own.samples - own.median()[:, None], raw.samples - raw.median()[:, None])
    capsys.readouterr()
    run.impute(mask="random_ratio", n=8, n_samples=3, steps=4, calibrate="given")  # ~4 targets a draw: 16 draws
    assert re.search(r"split conformal on \d+ given entries of the scored items, 16 draws", capsys.readouterr().err)


def test_impute_from_a_high_level_in_one_step_is_a_point_estimate(run):
    # one denoising from 50 x sigma_data: the input is all noise, so every draw lands near the same
    # (posterior) mean; sampled draws keep the spread of the data
    hidden = run.impute(mask="random_ratio", n=32, n_samples=8, steps=4).target.bool()
    sampled = run.impute(mask="random_ratio", n=32, n_samples=8, steps=4)
    point = run.impute(mask="random_ratio", n=32, n_samples=8, sampler="euler", steps=1, sigma_max="50x")
    assert point.nfe == 1 and torch.equal(point.target.bool(), hidden)
    spread = {k: v.samples.std(1)[hidden].mean().item() for k, v in (("sampled", sampled), ("point", point))}
    assert spread["point"] < 0.2 * spread["sampled"], spread


def test_overrides_take_python_values_and_bad_ones_fail_clearly(tmp_path):
    with pytest.raises(polydiff.ConfigError, match="train.steps"):
        polydiff.train("points", out=tmp_path / "bad", overrides={"train.steps": 0}, progress=False)
    assert not (tmp_path / "bad").exists()
