"""Probability-flow likelihood against analytic densities (exact GMM denoisers)."""

from __future__ import annotations

import math

import pytest
import torch

from polydiff.diffusion.gmm import random_mixture, ring
from polydiff.diffusion.likelihood import log_likelihood
from polydiff.diffusion.state import Field, StateSpec

# RK4 with 32 steps in log sigma has a measured error below 0.002 nats/dim on average (0.06 at
# worst, for points between the ring's narrow modes) on these mixtures; 8 steps are ~20x worse.
# 0.01 mean / 0.1 worst leaves room for platform round-off while still catching a wrong prior,
# a missing divergence term or a sign error (each worth >= 0.5 nats/dim).
MIXTURES = {"ring": ring(), "mixture4": random_mixture(dim=4, seed=1)}


@pytest.mark.parametrize("name", list(MIXTURES))
def test_exact_divergence_matches_analytic_log_prob(name: str) -> None:
    mix = MIXTURES[name]
    x0 = mix.sample(64, torch.Generator().manual_seed(0))[0].double()
    truth = mix.log_prob(x0)
    res = log_likelihood(mix.denoise, x0, steps=32)
    err = (res.logp - truth) / mix.dim
    assert float(err.abs().mean()) < 0.01 and float(err.abs().max()) < 0.1, err
    coarse = log_likelihood(mix.denoise, x0, steps=8)
    assert float(((coarse.logp - truth) / mix.dim).abs().mean()) > float(err.abs().mean())  # converges with steps
    torch.testing.assert_close(res.nats_per_dim, res.logp / mix.dim)
    torch.testing.assert_close(res.bits_per_dim, -res.logp / mix.dim / math.log(2))


def test_hutchinson_is_unbiased_and_seeded() -> None:
    mix = MIXTURES["mixture4"]
    x0 = mix.sample(128, torch.Generator().manual_seed(0))[0].double()
    exact = log_likelihood(mix.denoise, x0, steps=16)
    one = log_likelihood(mix.denoise, x0, steps=16, method="hutchinson", seed=1)
    # per-sample estimates are noisy, their mean is not (unbiased estimator of the same integral)
    assert float((one.logp - exact.logp).abs().mean()) > 0.01
    assert abs(float((one.nats_per_dim - exact.nats_per_dim).mean())) < 0.05
    assert torch.equal(one.logp, log_likelihood(mix.denoise, x0, steps=16, method="hutchinson", seed=1).logp)
    assert not torch.equal(one.logp, log_likelihood(mix.denoise, x0, steps=16, method="hutchinson", seed=2).logp)
    many = log_likelihood(mix.denoise, x0, steps=16, method="hutchinson", seed=1, probes=16)
    assert (many.logp - exact.logp).std() < 0.5 * (one.logp - exact.logp).std()
    # sample i's probe depends on its own seed only: a sub-batch gives the same estimates
    head = log_likelihood(mix.denoise, x0[:5], steps=16, method="hutchinson", seed=1)
    torch.testing.assert_close(head.logp, one.logp[:5])


def test_com_free_and_padded_state_counts_real_degrees_of_freedom() -> None:
    # positions [N, 2] of iid N(0, s^2), projected to zero CoM, are an isotropic Gaussian of
    # variance s^2 on the (n_atoms - 1) * 2 real degrees of freedom; the exact denoiser shrinks.
    spec = StateSpec((Field("pos", (None, 2), noise="com_free"),))
    var = 0.5**2
    lengths = torch.tensor([4, 3, 2])
    padding = spec.padding_mask(lengths, 4).double()
    x0 = spec.project(0.5 * torch.randn(3, 4, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64),
                      padding)

    def denoiser(x: torch.Tensor, sigma: torch.Tensor, **cond: torch.Tensor) -> torch.Tensor:
        return x * (var / (var + sigma**2))[:, None, None] + 0.7  # off-subspace constant must not count

    res = log_likelihood(denoiser, x0, steps=32, spec=spec, padding=padding)
    dims = (lengths - 1) * 2.0
    truth = -0.5 * x0.pow(2).sum((1, 2)) / var - 0.5 * dims * math.log(2 * math.pi * var)
    torch.testing.assert_close(res.dims, dims.double())
    assert float((res.logp - truth).abs().max() / dims.min()) < 0.01, (res.logp, truth)


def test_float32_and_errors() -> None:
    mix = MIXTURES["ring"]
    x0 = mix.sample(8, torch.Generator().manual_seed(0))[0]
    res = log_likelihood(mix.denoise, x0, steps=16, sigma_min=0.002, sigma_max=80.0)
    assert res.logp.dtype == torch.float32 and bool(torch.isfinite(res.logp).all())
    assert float(((res.logp.double() - mix.log_prob(x0)) / 2).abs().mean()) < 0.05
    with pytest.raises(ValueError, match="valid: exact, hutchinson"):
        log_likelihood(mix.denoise, x0, method="skilling")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="sigma_min < sigma_max"):
        log_likelihood(mix.denoise, x0, sigma_min=1.0, sigma_max=0.5)
