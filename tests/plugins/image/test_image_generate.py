"""Interpolation through the initial noise, super-resolution plumbing, and the pictures."""

from __future__ import annotations

import pytest
import torch
from image_testing import randomize

from polydiff import Batch, Denoiser, Parameterization, sample
from polydiff.diffusion.imputation import Imputation
from polydiff_image.data import load_digits
from polydiff_image.generate import consistency, interpolate, plot_interpolation, psnr, slerp, super_resolve
from polydiff_image.plots import plot_imputation, save_samples, save_trajectory_gif
from polydiff_image.registry import build_unet

PNG, GIF = b"\x89PNG\r\n\x1a\n", b"GIF89a"


def _denoiser(ds, **options):
    net = randomize(build_unet(ds, channels=8, channel_mult="1,2", heads=2, **options))
    return Denoiser(net, Parameterization(kind="edm", sigma_data=0.5)).eval()


def test_slerp_keeps_the_norm_and_hits_the_end_points():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 1, 16, 16, generator=g), torch.randn(3, 1, 16, 16, generator=g)
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-5) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-5)
    mid = slerp(a, b, 0.5)
    # nearly orthogonal high-dimensional noise: slerp keeps the norm, a linear mix loses ~30% of it
    assert (mid.flatten(1).norm(dim=1) / a.flatten(1).norm(dim=1) - 1).abs().max() < 0.1
    assert ((a + b) / 2).flatten(1).norm(dim=1).mean() < 0.8 * a.flatten(1).norm(dim=1).mean()


def test_interpolation_end_points_are_the_two_seeds_samples(tmp_path):
    ds = load_digits(n=8)
    d = _denoiser(ds, class_cond=True)
    imgs = interpolate(d, shape=(1, 16, 16), seeds=(3, 7), points=4, sampler="euler", steps=3, label=2, cfg_scale=1.5)
    assert imgs.shape == (4, 1, 16, 16) and torch.isfinite(imgs).all()
    for k, seed in ((0, 3), (-1, 7)):
        ref = sample(d, shape=(1, 16, 16), n=1, seed=seed, sampler="euler", steps=3, cfg_scale=1.5,
                     cond={"label": torch.tensor([2])}).x
        assert torch.allclose(imgs[k], ref[0], atol=1e-5)
    with pytest.raises(ValueError, match="deterministic sampler"):
        interpolate(d, shape=(1, 16, 16), sampler="ddpm", steps=2)
    assert plot_interpolation(imgs, tmp_path / "i.png").read_bytes()[:8] == PNG


def test_super_resolution_conditions_on_the_low_resolution_image():
    ds = load_digits(n=8, lowres=2)
    d = _denoiser(ds, lowres_cond=True)
    lowres = ds.get_batch(torch.arange(2)).cond["lowres"]
    a = super_resolve(d, lowres, shape=(1, 16, 16), sampler="euler", steps=2)
    b = super_resolve(d, -lowres, shape=(1, 16, 16), sampler="euler", steps=2)
    assert a.shape == (2, 1, 16, 16) and (a - b).abs().max() > 1e-3
    hi = ds.get_batch(torch.arange(2)).x
    assert consistency(hi, lowres).max() < 1e-6 and torch.isinf(psnr(hi, hi)).logical_not().all()
    assert (psnr(hi, hi) > psnr(hi, a)).all()


def test_pictures_and_files(tmp_path):
    ds = load_digits(n=6)
    b = ds.get_batch(torch.arange(6))
    paths = save_samples(Batch(x=b.x, cond={"label": b.cond["label"]}), tmp_path / "png")
    assert len(paths) == 6 and paths[0].name.endswith("_label0.png") and paths[0].read_bytes()[:8] == PNG
    gif = save_trajectory_gif([Batch(x=b.x * s) for s in (4.0, 2.0, 1.0)], tmp_path / "t.gif")
    assert gif.read_bytes()[:6] == GIF
    mask = torch.ones_like(b.x)
    mask[..., 4:12, 4:12] = 0
    imp = Imputation(samples=b.x[:, None].repeat(1, 3, 1, 1, 1), truth=b.x, given=mask, target=1 - mask)
    plot_imputation(imp, tmp_path / "imp.png")
    assert (tmp_path / "imp.png").read_bytes()[:8] == PNG and (tmp_path / "imp.png").stat().st_size > 2000
