"""Issue 18 section 3: a short run's EMA weights are at least as good as its raw weights (EMA warmup)."""

import pytest
import torch

import polydiff
from polydiff.app.runs import load_data
from polydiff.app.workflows import QUICKSTART
from polydiff.diffusion.gmm import sliced_wasserstein


def _w2(run, weights):
    _, held_out = load_data(run.config)
    ref = held_out.get_batch(torch.arange(len(held_out))).x
    x = run.sample(n=len(ref), weights=weights, sampler="heun", steps=12).x
    return sliced_wasserstein(x, ref)


@pytest.mark.parametrize("warmup", [True, False])
def test_ema_of_a_300_step_quickstart(tmp_path, warmup):
    overrides = {"train.steps": 300, "train.checkpoint_every": 300, "train.ema_warmup": warmup}
    run = polydiff.train(config=QUICKSTART, out=tmp_path / "q", overrides=overrides, progress=False)
    ema, raw = _w2(run, "ema"), _w2(run, "raw")
    if warmup:  # min(0.999, (1 + s) / (10 + s)) averages the last few dozen steps: no worse than raw
        assert ema <= raw * 1.05, (ema, raw)
    else:  # d = 0.999 over 300 steps keeps 74% of the random initialisation: the EMA samples are far off
        assert ema > 2 * raw, (ema, raw)
