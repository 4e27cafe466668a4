"""The image prior fill: a harmonic (Laplace) inpainting of hidden pixels, no model."""

from __future__ import annotations

import torch

from polydiff import plugins
from polydiff.diffusion.prior_fill import mean_fill
from polydiff.testing import check_prior_fill


def test_harmonic_fill_stays_within_the_given_range_and_beats_the_mean_on_a_smooth_image() -> None:
    fill = plugins.get_modality("image").prior_fill
    assert fill is not None
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 16), torch.linspace(-1, 1, 16), indexing="ij")
    img = torch.stack([torch.sin(2 * xx) * torch.cos(yy), xx * yy])[None]  # [1, 2, 16, 16]
    given = torch.ones_like(img)
    given[..., 5:11, 4:12] = 0
    out = fill(img * given, given)
    hidden = given == 0
    for c in range(2):  # maximum principle, per channel
        known = img[0, c][given[0, c] > 0]
        assert out[0, c].min() >= known.min() - 1e-6 and out[0, c].max() <= known.max() + 1e-6
    err = (out - img)[hidden].abs().mean()
    assert err < 0.5 * (mean_fill(img * given, given, dims=(-2, -1)) - img)[hidden].abs().mean()


def test_conformance_of_the_fill() -> None:
    report = check_prior_fill("image", dataset_options={"n": 8})
    assert report["batch_shape"] == [4, 1, 16, 16]
