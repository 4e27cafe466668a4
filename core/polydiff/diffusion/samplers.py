"""Samplers: pure functions with ONE signature over a denoiser (k-diffusion's design).

Every sampler is ``fn(denoiser, x, sigmas, *, noise=None, callback=None, **options) -> x0``:

* ``denoiser(x, sigma[B]) -> x0_hat`` is the model contract (bind conditioning beforehand);
* ``x`` is the initial sample at ``sigmas[0]`` (noise already scaled by ``sigmas[0]``);
* ``sigmas`` is a decreasing grid ending in 0 (:func:`polydiff.diffusion.schedules.sigma_grid`);
* ``noise(like) -> eps`` draws fresh per-sample noise (a :class:`~polydiff.diffusion.noise.NoiseSource`),
  required by stochastic samplers;
* ``callback(dict(i, x, sigma, sigma_next, denoised))`` is called once per step with the sample
  ``x`` at ``sigma`` (before the step) and the denoiser's output there.

All maths is in the VE view x = x0 + sigma * eps, so the ODE is dx/dsigma = (x - D(x, sigma)) / sigma
(Karras et al. 2022, Eq. 4 with s = 1) and any schedule works through its sigma grid. Step sizes are
computed in float64 from the grid; x keeps its dtype, device and any shape ``[B, ...]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ._stepping import Callback, Noise, _denoise, _report, _require_noise, _scalars, _steps
from .contracts import SamplerSpec
from .multistep import deis, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m, dpmpp_3m_sde, unipc


def euler(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
          callback: Callback | None = None) -> Tensor:
    """Euler steps of the probability-flow ODE (Karras et al. 2022, Alg. 1 without the Heun correction)."""
    steps = _steps(sigmas)
    ratio = _scalars([s_next / s for _, s, s_next in steps], x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        # x + (s_next - s) d with d = (x - D) / s (Karras et al. 2022, Eq. 3 in the VE view)
        # = D + (s_next / s)(x - D): one kernel
        x = torch.lerp(denoised, x, ratio[i])
    return x


def ddim(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, eta: float = 0.0) -> Tensor:
    """DDIM (Song et al. 2021, Eq. 12) in the VE view; eta = 0: deterministic (= Euler), eta = 1: DDPM."""
    if eta < 0:
        raise ValueError(f"ddim: eta must be >= 0, got {eta}")
    steps = _steps(sigmas)
    # sigma_t(eta) of DDIM Eq. 16 in VE units: eta * std of q(x_s | x_t, x0)
    sigma_up = [min(eta * s_next * math.sqrt(s**2 - s_next**2) / s, s_next) for _, s, s_next in steps]
    ratio = _scalars([math.sqrt(s_next**2 - up**2) / s for (_, s, s_next), up in zip(steps, sigma_up, strict=True)], x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        x = torch.lerp(denoised, x, ratio[i])  # x + (sigma_down - s) eps_hat, eps_hat = (x - D) / s
        if sigma_up[i] > 0:
            x.add_(_require_noise(noise, "ddim")(x), alpha=sigma_up[i])
    return x


def ddpm(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None) -> Tensor:
    """Ancestral sampling from the exact Gaussian posterior q(x_s | x_t, x0 = D) (Ho et al. 2020, Eq. 7).

    In the VE view x_t = x_s + sqrt(t^2 - s^2) z, so the posterior has mean
    D + (s^2 / t^2)(x_t - D) and variance s^2 (t^2 - s^2) / t^2.
    """
    draw = _require_noise(noise, "ddpm")
    steps = _steps(sigmas)
    weight = _scalars([s**2 / t**2 for _, t, s in steps], x)
    for i, t, s in steps:
        denoised = _denoise(denoiser, x, t)
        _report(callback, i, x, t, s, denoised)
        if s == 0:
            x = denoised
            continue
        # the mean D + (s^2 / t^2)(x - D) in one kernel, then the noise in place
        x = torch.lerp(denoised, x, weight[i]).add_(draw(x), alpha=s * math.sqrt(t**2 - s**2) / t)
    return x


def heun(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
         s_tmax: float = float("inf"), s_noise: float = 1.0, euler_ratio: float = 0.0) -> Tensor:
    """Heun's 2nd-order method with optional churn (Karras et al. 2022, Alg. 2).

    Few steps diverge (both k-diffusion and diffusers share it): the grid's step into sigma_min is a
    huge contraction (0.17 -> 0.002 at 5 Karras steps), and the correction's slope
    (x_next - D(x_next)) / sigma_min divides the Euler predictor's error by sigma_min, so the averaged
    slope overshoots far past the modes. ``euler_ratio``: steps with sigma_next / sigma below it keep
    the Euler step (one evaluation instead of two, spent on more steps). 0.2 measured best on the
    exact-denoiser mixtures (docs/concepts.md); it changes nothing from 18 Karras steps up (35 NFE),
    whose smallest ratio is 0.27. Default 0: Alg. 2 as written.
    """
    if s_churn < 0 or s_noise < 0 or euler_ratio < 0:
        raise ValueError(f"heun needs s_churn, s_noise, euler_ratio >= 0, got s_churn={s_churn}, "
                         f"s_noise={s_noise}, euler_ratio={euler_ratio}")
    steps = _steps(sigmas)
    for i, t, t_next in steps:
        # Alg. 2 line 4: gamma_i = min(S_churn / N, sqrt(2) - 1) inside [S_tmin, S_tmax]
        gamma = min(s_churn / len(steps), math.sqrt(2) - 1) if s_tmin <= t <= s_tmax else 0.0
        t_hat = t * (1 + gamma)
        if gamma > 0:  # lines 5-6: raise the noise level to t_hat
            x = x + _require_noise(noise, "heun with s_churn > 0")(x) * (s_noise * math.sqrt(t_hat**2 - t**2))
        denoised = _denoise(denoiser, x, t_hat)
        _report(callback, i, x, t_hat, t_next, denoised)
        # lines 7-8: Euler step x + (t_next - t_hat) d, d = (x - D) / t_hat, = D + (t_next / t_hat)(x - D)
        x_next = torch.lerp(denoised, x, t_next / t_hat)
        if t_next != 0 and t_next >= euler_ratio * t_hat:  # lines 9-11: correction (not on the step to 0)
            # x + (t_next - t_hat)(d + d') / 2 with d' = (x_next - D(x_next)) / t_next; x + a (x - D) is
            # lerp(D, x, 1 + a): three kernels, one new tensor
            half = 0.5 * (t_next - t_hat)
            denoised_next = _denoise(denoiser, x_next, t_next)
            x_next = torch.lerp(denoised, x, 1 + half / t_hat).add_(x_next, alpha=half / t_next).add_(
                denoised_next, alpha=-half / t_next)
        x = x_next
    return x


def euler_maruyama(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
                   callback: Callback | None = None) -> Tensor:
    """Euler-Maruyama on the reverse VE SDE dx = -d[sigma^2] score + sqrt(d[sigma^2]) dw (Song et al.
    2021, Eq. 6 with f = 0, g^2 = d sigma^2/dt); the last step returns the denoised value."""
    draw = _require_noise(noise, "euler_maruyama")
    steps = _steps(sigmas)
    weight = _scalars([(s**2 - s_next**2) / s**2 for _, s, s_next in steps], x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:
            x = denoised
            continue
        dvar = s**2 - s_next**2  # g^2 dt over the step
        # x + dvar * score with the score (D - x) / s^2 (Tweedie) = lerp(x, D, dvar / s^2); then the noise
        x = torch.lerp(x, denoised, weight[i]).add_(draw(x), alpha=math.sqrt(dvar))
    return x


def restart(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
            callback: Callback | None = None, solver: str = "heun", sigma_restart: float = 0.5,
            restarts: int = 1) -> Tensor:
    """Restart sampling (Xu et al. 2023, Alg. 1 with t_min = the grid's end): solve the grid with
    ``solver``, then ``restarts`` times add fresh noise back up to ``sigma_restart`` (the forward
    process) and solve the grid's steps below it again.

    The re-noising contracts the errors made at higher noise levels, as a stochastic sampler does,
    while the steps stay those of ``solver``. ``sigma_restart`` is in data units: put it where the
    fine structure is decided (molecules: ~0.2 Å; measured in docs/plugins/molecule.md). NFE: the
    grid's, plus ``restarts`` times that of its steps below ``sigma_restart``; the callback's ``i``
    counts on through the restarts (a trajectory gets one frame per step of every pass).
    """
    fn = _RESTART_SOLVERS.get(solver)
    if fn is None:
        raise ValueError(f"restart: solver must be one of {', '.join(_RESTART_SOLVERS)}, got {solver!r}")
    s = sigmas.detach().to("cpu", torch.float64)
    if restarts < 0 or not float(s[-1]) < sigma_restart < float(s[0]):
        raise ValueError(f"restart needs restarts >= 0 and sigma_restart strictly inside the grid "
                         f"({float(s[-1]):g}, {float(s[0]):g}), got restarts={restarts}, sigma_restart={sigma_restart}")
    draw = _require_noise(noise, "restart")
    done = [0]  # steps reported so far: the callback's i runs on through the restarts

    def report(info: dict[str, Any]) -> None:
        if callback is not None:
            callback({**info, "i": done[0]})
        done[0] += 1

    x = fn(denoiser, x, sigmas, noise=noise, callback=report)
    sub = torch.cat([s.new_tensor([sigma_restart]), s[s < sigma_restart]]).to(sigmas)
    for _ in range(restarts):
        x = x + draw(x) * math.sqrt(sigma_restart**2 - float(s[-1]) ** 2)  # forward process up to sigma_restart
        x = fn(denoiser, x, sub, noise=noise, callback=report)
    return x


_RESTART_SOLVERS: dict[str, Callable[..., Tensor]] = {"euler": euler, "heun": heun, "ddpm": ddpm,
                                                      "dpmpp_2m": dpmpp_2m, "euler_maruyama": euler_maruyama}


BUILTIN_SAMPLERS: list[SamplerSpec] = [
    SamplerSpec(name="euler", fn=euler, description="Euler on the probability-flow ODE (deterministic)"),
    SamplerSpec(name="heun", fn=heun, evals_per_step=2,
                description="EDM Heun 2nd order (Karras et al. 2022, Alg. 2); s_churn > 0 adds noise",
                options={"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0, "euler_ratio": 0.0}),
    SamplerSpec(name="ddim", fn=ddim, options={"eta": 0.0},
                description="DDIM (Song et al. 2021); eta=0 deterministic, eta=1 DDPM (needs noise)"),
    SamplerSpec(name="ddpm", fn=ddpm, stochastic=True,
                description="ancestral sampling from the exact posterior q(x_s | x_t, x0=D) (Ho et al. 2020)"),
    SamplerSpec(name="dpmpp_2m", fn=dpmpp_2m,
                description="DPM-Solver++(2M), 2nd-order multistep in log sigma (Lu et al. 2022)"),
    SamplerSpec(name="deis", fn=deis, options={"order": 3},
                description="rhoAB-DEIS, Adams-Bashforth in sigma, order 1-3 (Zhang & Chen 2023)"),
    SamplerSpec(name="unipc", fn=unipc, options={"order": 3, "corrector": True},
                description="UniPC-bh2 predictor-corrector, order 1-3, no extra evaluations (Zhao et al. 2023)"),
    SamplerSpec(name="dpmpp_3m", fn=dpmpp_3m,
                description="DPM-Solver++(3M), 3rd-order multistep in log sigma (Lu et al. 2022)"),
    SamplerSpec(name="dpmpp_2m_sde", fn=dpmpp_2m_sde, stochastic=True, options={"eta": 1.0, "s_noise": 1.0},
                description="DPM-Solver++(2M) SDE (Lu et al. 2022; k-diffusion's midpoint form); eta=0 is 2M"),
    SamplerSpec(name="dpmpp_3m_sde", fn=dpmpp_3m_sde, stochastic=True, options={"eta": 1.0, "s_noise": 1.0},
                description="DPM-Solver++(3M) SDE (Lu et al. 2022; as k-diffusion); eta=0 is 3M"),
    SamplerSpec(name="euler_maruyama", fn=euler_maruyama, stochastic=True,
                description="Euler-Maruyama on the reverse VE SDE (Song et al. 2021)"),
    SamplerSpec(name="restart", fn=restart, stochastic=True,
                options={"solver": "heun", "sigma_restart": 0.5, "restarts": 1},
                description="Restart (Xu et al. 2023): solve, re-noise to sigma_restart, solve the rest again"),
]

__all__ = ["BUILTIN_SAMPLERS", "Callback", "Noise", "ddim", "ddpm", "deis", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m",
           "dpmpp_3m_sde", "euler", "euler_maruyama", "heun", "restart", "unipc"]
