"""Mask strategies (inpainting, outpainting) and masked sampling that keeps observed pixels exact."""

from __future__ import annotations

import pytest
import torch
from image_testing import randomize

from polydiff import Denoiser, Parameterization, plugins
from polydiff.diffusion.imputation import impute
from polydiff_image.data import load_digits
from polydiff_image.masks import center_box, half, random_boxes
from polydiff_image.registry import build_unet

OBS = torch.ones(4, 3, 8, 8)


def g(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_center_box_hides_exactly_the_centre_in_every_channel():
    t = center_box(OBS, g(), size=0.5)
    assert t.shape == OBS.shape and t[:, :, 2:6, 2:6].eq(1).all() and t.sum() == 4 * 3 * 16


ALL, LOW, HIGH = slice(None), slice(0, 4), slice(4, 8)


@pytest.mark.parametrize(("side", "region"), [("left", (ALL, LOW)), ("right", (ALL, HIGH)), ("top", (LOW, ALL)),
                                              ("bottom", (HIGH, ALL))])
def test_half_hides_one_side(side, region):
    t = half(OBS, g(), side=side)
    assert t[:, :, region[0], region[1]].eq(1).all() and t.sum() == 4 * 3 * 32


def test_random_half_and_boxes_are_seeded_and_respect_observed():
    sides = half(torch.ones(64, 1, 8, 8), g(), side="random")
    assert len({tuple(m.flatten().tolist()) for m in sides}) == 4  # all four sides occur
    observed = (torch.rand(8, 1, 16, 16, generator=g(1)) > 0.3).float()
    a, b = random_boxes(observed, g(2), boxes=2), random_boxes(observed, g(2), boxes=2)
    assert torch.equal(a, b) and (a <= observed).all() and a.sum() > 0
    assert not torch.equal(a, random_boxes(observed, g(3), boxes=2))
    assert torch.equal(a[:, :1], a[:, :1].expand_as(a[:, :1]))


def test_bad_options_fail_clearly():
    with pytest.raises(ValueError, match="side must be one of"):
        half(OBS, g(), side="middle")
    with pytest.raises(ValueError, match="size must be in"):
        center_box(OBS, g(), size=1.5)
    with pytest.raises(ValueError, match="min_size"):
        random_boxes(OBS, g(), min_size=0.6, max_size=0.3)
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        center_box(torch.ones(4, 16), g())
    with pytest.raises(ValueError):  # unknown option, through the registry
        plugins.get_mask_strategy("center_box").bind({"radius": 3})


def test_registered_strategies_bind_options():
    fn = plugins.get_mask_strategy("half").bind({"side": "top", "fraction": 0.25})
    t = fn(OBS, g())
    assert t[:, :, :2].eq(1).all() and t.sum() == 4 * 3 * 16
    mixed = plugins.get_mask_strategy("image_mixed").bind(None)(torch.ones(32, 1, 16, 16), g())
    assert mixed.shape == (32, 1, 16, 16) and 0 < mixed.mean() < 1


@pytest.mark.parametrize("conditional", [False, True])
def test_masked_sampling_keeps_observed_pixels_exact(conditional):
    ds = load_digits(n=8)
    net = randomize(build_unet(ds, channels=8, channel_mult="1,2", heads=2, conditional=conditional))
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=0.5)).eval()
    batch = ds.get_batch(torch.arange(3))
    target = center_box(torch.ones_like(batch.x), g())
    with torch.no_grad():
        imp = impute(denoiser, batch, target, n_samples=2, sampler="euler", steps=3, seed=0,
                     conditional_model=conditional)
    given = imp.given.bool().unsqueeze(1).expand_as(imp.samples)
    assert imp.samples.shape == (3, 2, 1, 16, 16)
    assert torch.equal(imp.samples[given], batch.x.unsqueeze(1).expand_as(imp.samples)[given])
    assert (imp.samples[~given] != batch.x.unsqueeze(1).expand_as(imp.samples)[~given]).float().mean() > 0.9
