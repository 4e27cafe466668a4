"""Sampler conformance: drive a sampler with the exact denoiser of a known Gaussian."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion.gmm import gaussian
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.schedules import EDM, sigma_grid
from polydiff.plugins.specs import SamplerSpec

# A few dimensions with different means and scales, so a sampler that mixes up axes or shrinks
# variance fails; the largest scale sits well below sigma_max = 80.
_MEAN = (0.5, -1.0, 2.0)
_STD = (0.3, 1.2, 0.05)


def check_sampler(sampler: SamplerSpec | Callable[..., Tensor], *, steps: int = 128, n: int = 2000,
                  atol: float = 0.05, options: Mapping[str, Any] | None = None, seed: int = 0) -> None:
    """Assert that ``sampler`` turns noise into N(mean, diag(std^2)) given that Gaussian's exact denoiser.

    Checks, with readable messages: output shape and dtype, finiteness, that sample i depends only on
    its own seed (same seeds, smaller batch, same samples), and per-dimension mean and std within
    ``atol`` (relative to the true std) plus four standard errors of the estimate from ``n`` samples.
    First-order samplers need about 100 steps for ``atol = 0.05`` (their bias is ~4 / steps).

    Args:
        sampler: a :class:`~polydiff.plugins.specs.SamplerSpec` or a sampler function.
        steps: grid steps (EDM schedule, Karras grid).
        n: samples drawn.
        atol: tolerated error of mean and std, in units of the true std.
        options: sampler options (a spec's defaults are filled in).
    """
    fn = sampler.fn if isinstance(sampler, SamplerSpec) else sampler
    name = sampler.name if isinstance(sampler, SamplerSpec) else getattr(sampler, "__name__", repr(sampler))
    opts = {**(sampler.options if isinstance(sampler, SamplerSpec) else {}), **(options or {})}
    mean = torch.tensor(_MEAN, dtype=torch.float64)
    std = torch.tensor(_STD, dtype=torch.float64)
    truth = gaussian(mean, std)
    sigmas = sigma_grid(EDM(), steps, "karras")

    def run(n: int) -> Tensor:
        noise = NoiseSource(seeds_for(n, seed))
        x = noise(torch.empty(n, len(_MEAN))) * float(sigmas[0])
        x_in = x.clone()
        out = fn(truth.denoise, x, sigmas, noise=noise, callback=None, **opts)
        if not torch.equal(x, x_in):
            raise AssertionError(f"sampler {name!r} modified its input x in place")
        return out

    out = run(n)
    if not isinstance(out, Tensor) or out.shape != (n, len(_MEAN)) or out.dtype != torch.float32:
        got = f"{type(out).__name__} {list(out.shape)} {out.dtype}" if isinstance(out, Tensor) else type(out).__name__
        raise AssertionError(f"sampler {name!r} must return a float32 tensor of shape [{n}, {len(_MEAN)}] "
                             f"like its input, got {got}")
    if not torch.isfinite(out).all():
        raise AssertionError(f"sampler {name!r} returned {int((~torch.isfinite(out)).sum())} non-finite values")
    if not torch.equal(out[:16], run(16)):  # sample i depends on its own seed only
        raise AssertionError(f"sampler {name!r} is not reproducible: the first 16 samples changed when drawn "
                             "again in a batch of 16 with the same seeds "
                             "(draw randomness only through `noise`)")
    got_mean, got_std = out.double().mean(0), out.double().std(0)
    tol_mean = atol + 4 / math.sqrt(n)  # standard error of the mean, in units of std
    tol_std = atol + 4 / math.sqrt(2 * n)  # standard error of the std, relative
    err_mean = ((got_mean - mean) / std).abs()
    err_std = (got_std / std - 1).abs()
    problems = [f"  dim {d}: mean {got_mean[d]:.4f} (true {mean[d]:.4f}), std {got_std[d]:.4f} (true {std[d]:.4f})"
                for d in range(len(_MEAN)) if err_mean[d] > tol_mean or err_std[d] > tol_std]
    if problems:
        raise AssertionError(f"sampler {name!r} with {steps} steps does not reproduce the Gaussian "
                             f"(tolerance {tol_mean:.3f} std on means, {tol_std:.3f} relative on stds):\n"
                             + "\n".join(problems))


__all__ = ["check_sampler"]
