"""What every sampler shares: the grid as host floats, one denoiser call, the callback, noise checks."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

Noise = Callable[[Tensor], Tensor]
Callback = Callable[[dict[str, Any]], Any]


def _denoise(denoiser: Callable[..., Tensor], x: Tensor, sigma: float) -> Tensor:
    return denoiser(x, x.new_full((x.shape[0],), sigma))


def _require_noise(noise: Noise | None, name: str) -> Noise:
    if noise is None:
        raise ValueError(f"sampler {name!r} is stochastic here: pass noise=NoiseSource(seeds, ...) "
                         "(polydiff.diffusion.noise) so its randomness is injected and reproducible")
    return noise


def _steps(sigmas: Tensor) -> list[tuple[int, float, float]]:
    """``(i, sigma_i, sigma_{i+1})`` as float64 host numbers: the grid is read once per call."""
    s = sigmas.detach().to("cpu", torch.float64).tolist()
    # a full grid ends in 0; a sub-grid (RePaint blocks) may stop at any lower level
    if len(s) < 2 or s[-1] < 0 or any(a <= b for a, b in itertools.pairwise(s)):
        raise ValueError("sigmas must be a strictly decreasing grid of >= 2 values >= 0, normally ending "
                         "in 0 (see polydiff.diffusion.schedules.sigma_grid)")
    return [(i, s[i], s[i + 1]) for i in range(len(s) - 1)]


def _report(callback: Callback | None, i: int, x: Tensor, sigma: float, sigma_next: float, denoised: Tensor) -> None:
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})


def _scalars(values: Sequence[float], like: Tensor) -> tuple[Tensor, ...]:
    """Host numbers as 0-d tensors of ``like``'s dtype (float32 for half types) and device, made in one
    call: an op with a Python number wraps it into a tensor first (2.6 us against 1.0 us a call on a
    small batch, measured in benchmarks/overhead.py's setting)."""
    dtype = like.dtype if like.dtype in (torch.float32, torch.float64) else torch.float32
    return torch.tensor(values, dtype=dtype, device=like.device).unbind()


def _combine(coeffs: Sequence[float], tensors: Sequence[Tensor], lead: Tensor | None = None) -> Tensor:
    """``sum_k coeffs[k] * tensors[k]`` with one kernel per term (zero coefficients after the first
    skipped). ``lead``: ``coeffs[0]`` as a 0-d tensor (:func:`_scalars`); a first coefficient of 1
    without it folds into the second term's kernel."""
    rest = [(c, t) for c, t in zip(coeffs[1:], tensors[1:], strict=True) if c != 0.0]
    if lead is None and coeffs[0] == 1.0 and rest:
        c, t = rest.pop(0)
        out = torch.add(tensors[0], t, alpha=c)
    else:
        out = tensors[0] * (coeffs[0] if lead is None else lead)
    for c, t in rest:
        out.add_(t, alpha=c)
    return out

