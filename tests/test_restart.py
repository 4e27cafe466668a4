"""Restart sampling: what it adds to its solver, that it repairs errors made at high noise, errors."""

from __future__ import annotations

import pytest
import torch

from polydiff.diffusion.gmm import ring
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.samplers import ddpm, heun, restart
from polydiff.diffusion.sampling import sample
from polydiff.diffusion.schedules import EDM, sigma_grid

MIX = ring()


def _start(n: int) -> torch.Tensor:
    return 80 * torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


def _mode_weights(x: torch.Tensor) -> torch.Tensor:
    """Fraction of samples nearest to each of the ring's 8 modes."""
    nearest = torch.cdist(x, MIX.means).argmin(1)
    return torch.bincount(nearest, minlength=len(MIX.means)).double() / len(x)


def test_zero_restarts_is_the_solver_and_each_restart_adds_the_steps_below_sigma_restart() -> None:
    sigmas = sigma_grid(EDM(), 20).double()
    x = _start(64)
    noise = NoiseSource(seeds_for(64, 0))
    plain = heun(MIX.denoise, x, sigmas)
    assert torch.equal(restart(MIX.denoise, x, sigmas, noise=noise, restarts=0), plain)
    below = int((sigmas < 0.5).sum())  # the grid points under sigma_restart, 0 included
    for k in (1, 3):
        r = sample(MIX.denoise, shape=(2,), n=8, seed=0, sampler="restart", steps=20, options={"restarts": k})
        plain_nfe = sample(MIX.denoise, shape=(2,), n=8, seed=0, sampler="heun", steps=20).nfe
        assert r.nfe == plain_nfe + k * (2 * below - 1)  # Heun: 2 calls a step, one on the last
    calls: list[dict[str, object]] = []
    r = sample(MIX.denoise, shape=(2,), n=8, seed=0, sampler="restart", steps=20, options={"restarts": 2},
               callback=calls.append, keep_trajectory=True)
    total = 20 + 2 * below  # every pass reports its steps (sigma_restart, then the points below); i runs on
    assert [c["i"] for c in calls] == list(range(total))
    assert calls[20]["sigma"] == 0.5 and calls[19]["sigma_next"] == 0  # the first restart starts at sigma_restart
    assert r.trajectory is not None and len(r.trajectory) == total + 1 and torch.equal(r.trajectory[-1], r.x)


def test_restarts_repair_a_denoiser_that_is_wrong_at_high_noise() -> None:
    """Above sigma = 1 the denoiser pulls everything to one side of the ring, so a plain solve lands
    with the wrong mode weights; below it the denoiser is exact, so noising to sigma_restart and
    solving again leaves the data distribution unchanged and moves samples towards it."""
    def biased(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        d = MIX.denoise(x, sigma)
        return torch.where(sigma[:, None] > 1.0, d + torch.tensor([1.5, 0.0], dtype=d.dtype), d)

    n, sigmas = 2000, sigma_grid(EDM(), 32).double()
    x, noise = _start(n), NoiseSource(seeds_for(n, 0))
    true = torch.full((8,), 1 / 8, dtype=torch.float64)
    err = {k: float((_mode_weights(restart(biased, x, sigmas, noise=noise, solver="ddpm", sigma_restart=1.0,
                                           restarts=k)) - true).abs().sum()) for k in (0, 2, 8)}
    assert err[0] > 0.3  # the bias shows
    assert err[8] < err[2] < err[0] and err[8] < 0.2 * err[0], err  # measured 0.98, 0.37, 0.05
    exact = float((_mode_weights(ddpm(MIX.denoise, x, sigmas, noise=noise)) - true).abs().sum())
    assert exact < 0.1  # what an exact denoiser gets, for scale


def test_bad_options_name_the_problem() -> None:
    sigmas, x = sigma_grid(EDM(), 8).double(), _start(4)
    noise = NoiseSource(seeds_for(4, 0))
    with pytest.raises(ValueError, match="solver must be one of"):
        restart(MIX.denoise, x, sigmas, noise=noise, solver="nope")
    with pytest.raises(ValueError, match="strictly inside the grid"):
        restart(MIX.denoise, x, sigmas, noise=noise, sigma_restart=100.0)
    with pytest.raises(ValueError, match="restarts >= 0"):
        restart(MIX.denoise, x, sigmas, noise=noise, restarts=-1)
    with pytest.raises(ValueError, match="stochastic here"):
        restart(MIX.denoise, x, sigmas)
