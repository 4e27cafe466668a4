"""Image-specific generation: super-resolution and interpolation through the initial noise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff import Batch, Schedule, sample, sigma_grid
from polydiff.diffusion import DenoiserLike, NoiseSource, classifier_free_guidance, seeds_for

from .data import lowres_of


def super_resolve(denoiser: DenoiserLike, lowres: Tensor, *, shape: tuple[int, ...], seed: int = 0,
                  sampler: str = "heun", schedule: Schedule | None = None, steps: int = 32,
                  label: Tensor | None = None, cfg_scale: float | None = None, **kw: Any) -> Tensor:
    """High-resolution images ``[B, *shape]`` for low-resolution inputs ``[B, C, h, w]`` from a model
    trained with ``model.lowres_cond = true`` on a dataset with ``data.lowres = factor``."""
    if lowres.ndim != 4:
        raise ValueError(f"lowres must be [B, C, h, w], got {list(lowres.shape)}")
    cond = {"lowres": lowres} | ({"label": label} if label is not None else {})
    return sample(denoiser, shape=shape, n=len(lowres), seed=seed, sampler=sampler, schedule=schedule,
                  steps=steps, cond=cond, cfg_scale=cfg_scale, **kw).x


def psnr(x: Tensor, y: Tensor) -> Tensor:
    """Peak signal-to-noise ratio per image (dB) for images in [-1, 1] (peak-to-peak 2)."""
    mse = (x - y).square().reshape(len(x), -1).mean(1).clamp_min(1e-12)
    return 10 * torch.log10(4.0 / mse)


def upsample_baseline(lowres: Tensor, size: tuple[int, int]) -> Tensor:
    """Bicubic upsampling: the baseline a super-resolution model must beat."""
    return torch.nn.functional.interpolate(lowres, size=size, mode="bicubic", align_corners=False).clamp(-1, 1)


def consistency(hi: Tensor, lowres: Tensor) -> Tensor:
    """Per-image RMS difference between ``lowres`` and the super-resolved image pooled down again."""
    factor = hi.shape[-1] // lowres.shape[-1]
    return (lowres_of(hi, factor) - lowres).square().reshape(len(hi), -1).mean(1).sqrt()


def slerp(a: Tensor, b: Tensor, t: float | Tensor) -> Tensor:
    """Spherical interpolation between noise tensors (Shoemake 1985), per sample over all non-batch
    dims: keeps the norm of Gaussian noise where linear interpolation would shrink it."""
    fa, fb = a.reshape(len(a), -1).double(), b.reshape(len(b), -1).double()
    cos = (fa * fb).sum(1) / (fa.norm(dim=1) * fb.norm(dim=1))
    omega = torch.arccos(cos.clamp(-1, 1))
    t = torch.as_tensor(t, dtype=torch.float64)
    so = torch.sin(omega)
    lin = so.abs() < 1e-6  # (anti-)parallel: fall back to linear interpolation
    wa = torch.where(lin, 1 - t, torch.sin((1 - t) * omega) / torch.where(lin, 1.0, so))
    wb = torch.where(lin, t, torch.sin(t * omega) / torch.where(lin, 1.0, so))
    out = wa[:, None] * fa + wb[:, None] * fb
    return out.reshape(a.shape).to(a.dtype)


def interpolate(denoiser: DenoiserLike, *, shape: tuple[int, ...], seeds: tuple[int, int] = (0, 1),
                points: int = 8, sampler: str = "heun", schedule: Schedule | None = None, steps: int = 32,
                grid: str = "karras", label: int | None = None, cfg_scale: float | None = None) -> Tensor:
    """Images ``[points, *shape]`` decoded with a deterministic sampler from ``slerp`` of two seeds'
    initial noise, t = 0..1. With ``label`` (class-conditional models) every point gets that class.
    The end points are exactly ``polydiff.sample(..., n=1, seed=seeds[k])`` with the same sampler."""
    from polydiff import with_self_conditioning
    from polydiff.diffusion import EDM
    from polydiff.plugins import get_sampler

    spec = get_sampler(sampler)
    if spec.stochastic:
        raise ValueError(f"interpolation needs a deterministic sampler (euler, heun, dpmpp_2m, ...), got {sampler!r}")
    sigmas = sigma_grid(schedule or EDM(), steps, grid)  # type: ignore[arg-type]
    z = NoiseSource([seeds_for(1, s)[0] for s in seeds])(torch.empty(2, *shape))
    t = torch.linspace(0, 1, points, dtype=torch.float64)
    x = slerp(z[:1].expand(points, *shape), z[1:].expand(points, *shape), t) * float(sigmas[0])
    cond = {} if label is None else {"label": torch.full((points,), label)}
    d = classifier_free_guidance(denoiser, cfg_scale) if cfg_scale is not None else denoiser
    if getattr(denoiser, "self_condition", False):
        d = with_self_conditioning(d)

    def bound(xx: Tensor, sigma: Tensor) -> Tensor:
        return d(xx, sigma, **cond)

    with torch.no_grad():
        return spec.fn(bound, x, sigmas, noise=None, callback=None, **dict(spec.options))


def plot_interpolation(images: Tensor, path: Path, *, points: int | None = None,
                       title: str = "slerp of the initial noise") -> Path:
    """Interpolated images, ``points`` per row (default: one row)."""
    from .plots import _figure, tile

    cols = points or len(images)
    _figure([(title, tile(images, cols=cols))], Path(path), scale=1.0 * cols)
    return Path(path)


def sample_batch(denoiser: DenoiserLike, **kw: Any) -> Batch:
    """:func:`polydiff.sample` returning a :class:`~polydiff.Batch` with the labels it used (metrics)."""
    cond = kw.get("cond") or {}
    return Batch(x=sample(denoiser, **kw).x, cond=dict(cond))


__all__ = ["consistency", "interpolate", "plot_interpolation", "psnr", "sample_batch", "slerp", "super_resolve",
           "upsample_baseline"]
