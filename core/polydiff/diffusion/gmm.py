"""Gaussian mixtures with diagonal covariances: data whose exact denoiser and density are known.

For x = x0 + sigma eps with x0 ~ sum_k w_k N(mu_k, diag(v_k)), the noisy marginal is
sum_k w_k N(mu_k, diag(v_k + sigma^2)) and the optimal denoiser is the posterior mean
E[x0 | x] = sum_k r_k(x) (mu_k + v_k / (v_k + sigma^2) (x - mu_k)). Tests and the sampler benchmark
drive samplers with it, so their errors are the samplers' own, not a network's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from polydiff._utils import append_dims


@dataclass(frozen=True)
class GaussianMixture:
    """Weights ``[K]``, means ``[K, D]``, per-dimension variances ``[K, D]`` (float64)."""

    weights: Tensor
    means: Tensor
    variances: Tensor

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def _components(self, x: Tensor, sigma: Tensor) -> tuple[Tensor, Tensor]:
        """log w_k N(x; mu_k, v_k + sigma^2) ``[B, K]`` and the total variances ``[B, K, D]``."""
        var = self.variances[None] + append_dims(sigma.to(torch.float64), 3) ** 2
        diff = x.to(torch.float64)[:, None, :] - self.means[None]
        logp = -0.5 * ((diff**2 / var) + torch.log(2 * math.pi * var)).sum(-1)
        return logp + torch.log(self.weights)[None], var

    def log_prob(self, x: Tensor, sigma: Tensor | float = 0.0) -> Tensor:
        """log density ``[B]`` of the noisy marginal at level ``sigma`` (0: the data itself)."""
        s = torch.as_tensor(sigma, dtype=torch.float64).expand(x.shape[0])
        logp, _ = self._components(x, s)
        return torch.logsumexp(logp, dim=1)

    def denoise(self, x: Tensor, sigma: Tensor, **_: Tensor) -> Tensor:
        """Exact E[x0 | x0 + sigma eps = x]; matches the ``D(x, sigma, **cond)`` contract."""
        s = torch.as_tensor(sigma, dtype=torch.float64, device=x.device).expand(x.shape[0])
        logp, var = self._components(x, s)
        resp = torch.softmax(logp, dim=1)[..., None]
        x64 = x.to(torch.float64)[:, None, :]
        post = self.means[None] + self.variances[None] / var * (x64 - self.means[None])
        return (resp * post).sum(1).to(x.dtype)

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """``n`` samples ``[n, D]`` (float32) and their component labels ``[n]``."""
        k = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return (self.means[k] + z * self.variances[k].sqrt()).float(), k


def ring(n_modes: int = 8, radius: float = 1.5, std: float = 0.1) -> GaussianMixture:
    """Equal-weight modes on a circle in 2D (the classic toy of Grathwohl et al. 2019)."""
    angle = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)
    return GaussianMixture(torch.full((n_modes,), 1 / n_modes, dtype=torch.float64), means,
                           torch.full_like(means, std**2))


def random_mixture(dim: int = 16, n_modes: int = 6, *, seed: int = 0, spread: float = 1.0,
                   std_range: tuple[float, float] = (0.1, 0.4)) -> GaussianMixture:
    """A reproducible mixture in ``dim`` dimensions with unequal weights and anisotropic components."""
    g = torch.Generator().manual_seed(seed)
    means = spread * torch.randn(n_modes, dim, generator=g, dtype=torch.float64)
    lo, hi = std_range
    stds = lo + (hi - lo) * torch.rand(n_modes, dim, generator=g, dtype=torch.float64)
    weights = torch.rand(n_modes, generator=g, dtype=torch.float64) + 0.5
    return GaussianMixture(weights / weights.sum(), means, stds**2)


def gaussian(mean: Tensor, std: Tensor) -> GaussianMixture:
    """A single diagonal Gaussian as a one-component mixture."""
    mean = mean.to(torch.float64)
    return GaussianMixture(torch.ones(1, dtype=torch.float64), mean[None], std.to(torch.float64)[None] ** 2)


def sliced_wasserstein(a: Tensor, b: Tensor, *, projections: int = 256, seed: int = 0) -> float:
    """Sliced 2-Wasserstein distance between two equal-size point sets ``[N, D]`` (Rabin et al. 2011)."""
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equal shapes, got {list(a.shape)} and {list(b.shape)}")
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(a.shape[1], projections, generator=g, dtype=torch.float64)
    dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(a.device)  # drawn on the CPU: the same on every device
    pa = torch.sort(a.to(torch.float64) @ dirs, dim=0).values
    pb = torch.sort(b.to(torch.float64) @ dirs, dim=0).values
    return float(((pa - pb) ** 2).mean().sqrt())
