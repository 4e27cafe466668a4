"""Denoiser wrappers for conditioning and guidance: pure functions of a denoiser, no hidden state.

Each returns a new ``D(x, sigma, **cond) -> x0_hat``, so every sampler gets conditioning for free.
:func:`repaint` is the one sampler wrapper here: it turns any sampler into a RePaint-style
resampling sampler with the same signature.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from .parameterization import DenoiserLike
from .samplers import Callback, Noise

SamplerFn = Callable[..., Tensor]


def _check_obs(x_obs: Tensor, observed_mask: Tensor) -> Tensor:
    if x_obs.shape != observed_mask.shape:
        raise ValueError(f"x_obs {list(x_obs.shape)} and observed_mask {list(observed_mask.shape)} must have "
                         "the same (packed) shape")
    return observed_mask.bool()


def with_observed(denoiser: DenoiserLike, x_obs: Tensor, observed_mask: Tensor) -> DenoiserLike:
    """Replacement conditioning for an unconditional model: observed entries of x0_hat become x_obs.

    The ODE then carries observed entries along x_obs + sigma * eps, so they end at x_obs (the
    "replacement" method of Song et al. 2021, App. I.2, applied to the denoiser output).
    """
    keep = _check_obs(x_obs, observed_mask)

    def observed_denoiser(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        out = denoiser(x, sigma, **cond)
        return torch.where(keep, x_obs.to(out.dtype), out)

    return observed_denoiser


def with_conditioning(denoiser: DenoiserLike, x_obs: Tensor, observed_mask: Tensor) -> DenoiserLike:
    """For models trained with masks (CSDI-style, Tashiro et al. 2021): pass ``x_cond = x_obs * mask``
    and ``cond_mask = mask`` as conditioning, and replace the observed entries of the output."""
    keep = _check_obs(x_obs, observed_mask)
    mask = observed_mask.to(x_obs.dtype)
    x_cond = x_obs * mask

    def conditioned_denoiser(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        out = denoiser(x, sigma, x_cond=x_cond, cond_mask=mask, **cond)
        return torch.where(keep, x_obs.to(out.dtype), out)

    return conditioned_denoiser


def with_prior_fill(denoiser: DenoiserLike, fill: Tensor, mode: str) -> DenoiserLike:
    """A conditional model's denoiser given a prior fill of its batch (:mod:`polydiff.diffusion.prior_fill`).

    ``fill``: ``[B, ...]``, the given values on given entries and the modality's fill elsewhere
    (:meth:`~polydiff.diffusion.prior_fill.PriorFill.fill`). ``mode="condition"``: the conditioning input
    ``x_cond`` becomes the fill (PriSTI, Liu et al. 2023). ``mode="residual"``: also
    D(x) = fill + D_r(x - fill), so the model diffuses the residual x - fill (a self-conditioning
    estimate is shifted the same way). Training and sampling both wrap with this function.
    """
    if mode not in ("condition", "residual"):
        raise ValueError(f"with_prior_fill: mode must be 'condition' or 'residual', got {mode!r}")

    def filled_denoiser(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        if "x_cond" not in cond or "cond_mask" not in cond:
            raise ValueError("a prior-filled denoiser needs x_cond and cond_mask (a conditional model); got "
                             f"{sorted(cond) or 'none'}")
        f = fill.to(x.dtype)
        cond = {**cond, "x_cond": f}
        if mode == "condition":
            return denoiser(x, sigma, **cond)
        if cond.get("x_self") is not None:
            cond["x_self"] = cond["x_self"] - f
        return f + denoiser(x - f, sigma, **cond)

    return filled_denoiser


def classifier_free_guidance(denoiser: DenoiserLike, scale: float, label_key: str = "label",
                             null_label: int = -1) -> DenoiserLike:
    """D = D_u + scale (D_c - D_u) (Ho & Salimans 2022, Eq. 6 on x0), in ONE batched call.

    The conditional and unconditional halves share x and sigma; every other conditioning entry is
    repeated, and the unconditional half's ``label_key`` is ``null_label``.
    """

    def guided_denoiser(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        if label_key not in cond:
            raise ValueError(f"classifier-free guidance needs the conditioning {label_key!r}; got "
                             f"{sorted(cond) or 'none'}")
        label = cond[label_key]
        both = {k: torch.cat([v, v]) for k, v in cond.items() if k != label_key}
        both[label_key] = torch.cat([label, torch.full_like(label, null_label)])
        sig = sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma
        d_c, d_u = denoiser(torch.cat([x, x]), torch.cat([sig, sig]), **both).chunk(2)
        return d_u + (d_c - d_u) * scale

    return guided_denoiser


def repaint(sampler: SamplerFn, *, jump_length: int = 10, jump_n_sample: int = 10) -> SamplerFn:
    """RePaint resampling around any sampler (Lugmayr et al. 2022, Alg. 1 with jumps, Sec. 4.2).

    The grid is cut into blocks of ``jump_length`` steps. Each block is sampled, then re-noised back
    to its start with the forward process x_a = x_b + sqrt(sigma_a^2 - sigma_b^2) z and redone,
    ``jump_n_sample`` times in all, so unobserved entries harmonise with observed ones. Use it with
    :func:`with_observed`; the result has the sampler signature (it needs ``noise``), and each
    block restarts a multistep sampler's history.
    """
    if jump_length < 1 or jump_n_sample < 1:
        raise ValueError(f"repaint: jump_length and jump_n_sample must be >= 1, got {jump_length}, {jump_n_sample}")

    def resampling_sampler(denoiser: DenoiserLike, x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
                           callback: Callback | None = None, **options: object) -> Tensor:
        if noise is None:
            raise ValueError("repaint re-noises between passes: pass noise=NoiseSource(seeds, ...)")
        last = len(sigmas) - 1
        for a in range(0, last, jump_length):
            b = min(a + jump_length, last)
            offset = a

            def shifted(info: dict[str, object], offset: int = offset) -> None:
                if callback is not None:
                    callback({**info, "i": int(info["i"]) + offset})  # type: ignore[call-overload]

            for rep in range(jump_n_sample):
                x_b = sampler(denoiser, x, sigmas[a:b + 1], noise=noise, callback=shifted, **options)
                if rep == jump_n_sample - 1:
                    x = x_b
                else:  # jump back: forward-noise from sigma_b to sigma_a
                    s_a, s_b = float(sigmas[a]), float(sigmas[b])
                    x = x_b + noise(x_b) * math.sqrt(s_a**2 - s_b**2)
        return x

    return resampling_sampler


__all__ = ["classifier_free_guidance", "repaint", "with_conditioning", "with_observed", "with_prior_fill"]
