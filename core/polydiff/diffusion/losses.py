"""Denoising losses: a per-element weighted MSE (or L1) on x0, reduced per sample with masks.

Every weighting is written as the weight lambda(sigma) on ||D(x, sigma) - x0||^2 (Kingma & Gao 2023
write them on the eps-error; the two differ by the factor SNR = 1/sigma^2). With ``uniform`` the
loss is plain MSE on the parameterization's own target (eps-MSE for eps, v-MSE for v, ...), which is
what "the simple loss" means for each of them. ``norm = "l1"`` puts sqrt(lambda) on |D - x0| instead, so
``uniform`` is then the L1 error of the parameterization's own target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from polydiff._utils import append_dims, masked_mean

from .parameterization import Parameterization

WeightingKind = Literal["uniform", "snr", "min_snr", "edm", "sigmoid"]
WEIGHTINGS: tuple[str, ...] = ("uniform", "snr", "min_snr", "edm", "sigmoid")
NORMS: tuple[str, ...] = ("l2", "l1")


@dataclass(frozen=True, kw_only=True)
class Weighting:
    """lambda(sigma) on the x0-error.

    * ``uniform``: 1 / c_out^2, plain MSE on the parameterization's target;
    * ``snr``: SNR = 1/sigma^2, i.e. eps-MSE (Ho et al. 2020's L_simple);
    * ``min_snr``: min(SNR, gamma) (Hang et al. 2023, Min-SNR-gamma, gamma = 5);
    * ``edm``: (sigma^2 + sd^2) / (sigma sd)^2 (Karras et al. 2022, Eq. 8 with the lambda of Table 1);
    * ``sigmoid``: SNR * sigmoid(b - logSNR) (Kingma & Gao 2023, Sec. 4), bias b an option. Their
      objective also weights by -dlambda/dt / p(t); here the weight multiplies whatever noise-level
      distribution training draws from, so it equals theirs with ``noise_levels.kind = uniform_logsnr``.

    ``norm``: ``l2`` (D learns the posterior mean of x0 at each level, which the samplers and the likelihood
    assume: they turn D into a score) or ``l1`` (D learns the per-entry posterior median; Palette, Saharia
    et al. 2022, found it gives less diverse samples; where the model is well trained, a one-step estimate
    from a high level is then the MAE-optimal point prediction). An ``l1`` model's likelihood is not a
    likelihood.
    """

    kind: WeightingKind = "uniform"
    gamma: float = 5.0
    bias: float = 0.0
    norm: Literal["l2", "l1"] = "l2"

    def __post_init__(self) -> None:
        if self.kind not in WEIGHTINGS:
            raise ValueError(f"unknown loss weighting {self.kind!r}; valid: {', '.join(WEIGHTINGS)}")
        if not (self.gamma >= 0 and math.isfinite(self.gamma)):
            raise ValueError(f"weighting.gamma must be a finite number >= 0, got {self.gamma}")
        if not math.isfinite(self.bias):
            raise ValueError(f"weighting.bias must be a finite number, got {self.bias}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown weighting.norm {self.norm!r}; valid: {', '.join(NORMS)}")

    def __call__(self, sigma: Tensor, parameterization: Parameterization, x: Tensor | None = None) -> Tensor:
        """``[B]`` weights; ``[B, ...]`` like ``x`` for ``uniform`` and ``edm`` with a per-field sigma_data."""
        snr = sigma.pow(-2)
        if self.kind == "uniform":
            return parameterization.target_weight(sigma, x)
        if self.kind == "snr":
            return snr
        if self.kind == "min_snr":
            return snr.clamp(max=self.gamma)
        if self.kind == "edm":
            sigma, sd = parameterization.broadcast(sigma, x)
            return (sigma**2 + sd**2) / (sigma * sd) ** 2
        return snr * torch.sigmoid(self.bias - torch.log(snr))


def denoising_loss(denoised: Tensor, x0: Tensor, sigma: Tensor, weight: Tensor, *,
                   padding: Tensor | None = None, target: Tensor | None = None, norm: str = "l2") -> Tensor:
    """Per-sample loss ``[B]``: weight(sigma) * mean over the counted entries of (D - x0)^2, or with
    ``norm = "l1"`` sqrt(weight) * |D - x0| (the same weight on the parameterization's target's scale).

    Args:
        denoised: D(x, sigma) ``[B, ...]``.
        x0: clean data, same shape.
        sigma: ``[B]``.
        weight: ``[B]``, or ``[B, ...]`` per entry (a per-field sigma_data).
        padding: 1 = real entry; padded entries never count.
        target: 1 = entry the model must predict. For a conditional model (imputation, inpainting)
            pass the held-out entries only, as CSDI does (Tashiro et al. 2021, Eq. 6).
    """
    mask = padding
    if target is not None:
        mask = target if mask is None else mask * target
    if norm not in NORMS:
        raise ValueError(f"unknown norm {norm!r}; valid: {', '.join(NORMS)}")
    err = (denoised - x0).float()
    err, weight = (err.pow(2), weight) if norm == "l2" else (err.abs(), weight.sqrt())
    if weight.ndim > 1:
        return masked_mean(weight.float() * err, mask)
    return weight.float() * masked_mean(err, mask)



def noisy(x0: Tensor, sigma: Tensor, eps: Tensor) -> Tensor:
    """x = x0 + sigma * eps (VE view of every forward process)."""
    return x0 + append_dims(sigma, x0.ndim) * eps
