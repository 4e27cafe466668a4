"""Samplers: pure functions with ONE signature over a denoiser (k-diffusion's design).

Every sampler is ``fn(denoiser, x, sigmas, *, noise=None, callback=None, **options) -> x0``:

* ``denoiser(x, sigma[B]) -> x0_hat`` is the model contract (bind conditioning beforehand);
* ``x`` is the initial sample at ``sigmas[0]`` (noise already scaled by ``sigmas[0]``);
* ``sigmas`` is a decreasing grid ending in 0 (:func:`polydiff.schedules.sigma_grid`);
* ``noise(like) -> eps`` draws fresh per-sample noise (a :class:`~polydiff.noise.NoiseSource`),
  required by stochastic samplers;
* ``callback(dict(i, x, sigma, sigma_next, denoised))`` is called once per step with the sample
  ``x`` at ``sigma`` (before the step) and the denoiser's output there.

All maths is in the VE view x = x0 + sigma * eps, so the ODE is dx/dsigma = (x - D(x, sigma)) / sigma
(Karras et al. 2022, Eq. 4 with s = 1) and any schedule works through its sigma grid. Step sizes are
computed in float64 from the grid; x keeps its dtype, device and any shape ``[B, ...]``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .specs import SamplerSpec

Noise = Callable[[Tensor], Tensor]
Callback = Callable[[dict[str, Any]], Any]


def _denoise(denoiser: Callable[..., Tensor], x: Tensor, sigma: float) -> Tensor:
    return denoiser(x, x.new_full((x.shape[0],), sigma))


def _require_noise(noise: Noise | None, name: str) -> Noise:
    if noise is None:
        raise ValueError(f"sampler {name!r} is stochastic here: pass noise=NoiseSource(seeds, ...) "
                         "(polydiff.noise) so its randomness is injected and reproducible")
    return noise


def _steps(sigmas: Tensor) -> list[tuple[int, float, float]]:
    s = sigmas.detach().to("cpu", torch.float64).tolist()
    # a full grid ends in 0; a sub-grid (RePaint blocks) may stop at any lower level
    if len(s) < 2 or s[-1] < 0 or any(a <= b for a, b in itertools.pairwise(s)):
        raise ValueError("sigmas must be a strictly decreasing grid of >= 2 values >= 0, normally ending "
                         "in 0 (see polydiff.schedules.sigma_grid)")
    return [(i, s[i], s[i + 1]) for i in range(len(s) - 1)]


def _report(callback: Callback | None, i: int, x: Tensor, sigma: float, sigma_next: float, denoised: Tensor) -> None:
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "sigma_next": sigma_next, "denoised": denoised})


def euler(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
          callback: Callback | None = None) -> Tensor:
    """Euler steps of the probability-flow ODE (Karras et al. 2022, Alg. 1 without the Heun correction)."""
    for i, s, s_next in _steps(sigmas):
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        d = (x - denoised) / s  # dx/dsigma, Karras et al. 2022, Eq. 3 in the VE view
        x = x + d * (s_next - s)
    return x


def ddim(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, eta: float = 0.0) -> Tensor:
    """DDIM (Song et al. 2021, Eq. 12) in the VE view; eta = 0: deterministic (= Euler), eta = 1: DDPM."""
    if eta < 0:
        raise ValueError(f"ddim: eta must be >= 0, got {eta}")
    for i, s, s_next in _steps(sigmas):
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        # sigma_t(eta) of DDIM Eq. 16 in VE units: eta * std of q(x_s | x_t, x0)
        sigma_up = min(eta * s_next * math.sqrt(s**2 - s_next**2) / s, s_next)
        sigma_down = math.sqrt(s_next**2 - sigma_up**2)
        d = (x - denoised) / s  # = eps_hat
        x = x + d * (sigma_down - s)
        if sigma_up > 0:
            x = x + _require_noise(noise, "ddim")(x) * sigma_up
    return x


def ddpm(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None) -> Tensor:
    """Ancestral sampling from the exact Gaussian posterior q(x_s | x_t, x0 = D) (Ho et al. 2020, Eq. 7).

    In the VE view x_t = x_s + sqrt(t^2 - s^2) z, so the posterior has mean
    D + (s^2 / t^2)(x_t - D) and variance s^2 (t^2 - s^2) / t^2.
    """
    draw = _require_noise(noise, "ddpm")
    for i, t, s in _steps(sigmas):
        denoised = _denoise(denoiser, x, t)
        _report(callback, i, x, t, s, denoised)
        if s == 0:
            x = denoised
            continue
        mean = denoised + (x - denoised) * (s**2 / t**2)
        x = mean + draw(x) * (s * math.sqrt(t**2 - s**2) / t)
    return x


def heun(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, s_churn: float = 0.0, s_tmin: float = 0.0,
         s_tmax: float = float("inf"), s_noise: float = 1.0) -> Tensor:
    """Heun's 2nd-order method with optional churn (Karras et al. 2022, Alg. 2)."""
    if s_churn < 0 or s_noise < 0:
        raise ValueError(f"heun needs s_churn >= 0 and s_noise >= 0, got s_churn={s_churn}, s_noise={s_noise}")
    steps = _steps(sigmas)
    for i, t, t_next in steps:
        # Alg. 2 line 4: gamma_i = min(S_churn / N, sqrt(2) - 1) inside [S_tmin, S_tmax]
        gamma = min(s_churn / len(steps), math.sqrt(2) - 1) if s_tmin <= t <= s_tmax else 0.0
        t_hat = t * (1 + gamma)
        if gamma > 0:  # lines 5-6: raise the noise level to t_hat
            x = x + _require_noise(noise, "heun with s_churn > 0")(x) * (s_noise * math.sqrt(t_hat**2 - t**2))
        denoised = _denoise(denoiser, x, t_hat)
        _report(callback, i, x, t_hat, t_next, denoised)
        d = (x - denoised) / t_hat  # line 7
        x_next = x + d * (t_next - t_hat)  # line 8: Euler step
        if t_next != 0:  # lines 9-11: second-order correction (skipped on the last step to 0)
            d_prime = (x_next - _denoise(denoiser, x_next, t_next)) / t_next
            x_next = x + (d + d_prime) * (0.5 * (t_next - t_hat))
        x = x_next
    return x


def dpmpp_2m(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
             callback: Callback | None = None) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) with t = lambda = -log sigma in the VE view."""
    old_denoised: Tensor | None = None
    h_last = 0.0
    for i, s, s_next in _steps(sigmas):
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:  # the data-prediction solver's last step lands on D exactly
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)  # lambda_next - lambda
        d = denoised
        if old_denoised is not None:  # Alg. 2 line 6: D_i = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}
            r = h_last / h
            d = denoised * (1 + 1 / (2 * r)) - old_denoised * (1 / (2 * r))
        x = x * (s_next / s) - d * math.expm1(-h)  # Alg. 2 line 7 with alpha = 1
        old_denoised, h_last = denoised, h
    return x


def _lagrange_integrals(nodes: list[float], a: float, b: float) -> list[float]:
    """integral_a^b of each Lagrange basis polynomial L_j over ``nodes`` (Zhang & Chen 2023, rhoAB-DEIS)."""
    if len(nodes) == 1:  # L_0 = 1: an Euler step
        return [b - a]
    out = []
    for j, tj in enumerate(nodes):
        others = [tk for k, tk in enumerate(nodes) if k != j]
        poly = np.polynomial.Polynomial.fromroots(others) / math.prod(tj - tk for tk in others)
        antider = poly.integ()
        out.append(float(antider(b) - antider(a)))
    return out


def deis(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, order: int = 3) -> Tensor:
    """rhoAB-DEIS (Zhang & Chen 2023, Sec. 4): Adams-Bashforth in rho = sigma on dx/dsigma = eps_hat.

    In the VE view the exponential integrator's transition factor is 1, so the step is
    x_{i+1} = x_i + sum_j C_ij eps_{i-j} with C_ij the integral over [sigma_i, sigma_{i+1}] of the
    Lagrange basis over the last ``order`` noise levels; early steps use lower orders (warm start).
    """
    if order not in (1, 2, 3):
        raise ValueError(f"deis: order must be 1, 2 or 3, got {order}")
    eps_hist: list[Tensor] = []
    sig_hist: list[float] = []
    for i, s, s_next in _steps(sigmas):
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        eps_hist = [(x - denoised) / s, *eps_hist][:order]
        sig_hist = [s, *sig_hist][:order]
        coeffs = _lagrange_integrals(sig_hist, s, s_next)
        for c, e in zip(coeffs, eps_hist, strict=True):
            x = x + e * c
    return x


def euler_maruyama(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
                   callback: Callback | None = None) -> Tensor:
    """Euler-Maruyama on the reverse VE SDE dx = -d[sigma^2] score + sqrt(d[sigma^2]) dw (Song et al.
    2021, Eq. 6 with f = 0, g^2 = d sigma^2/dt); the last step returns the denoised value."""
    draw = _require_noise(noise, "euler_maruyama")
    for i, s, s_next in _steps(sigmas):
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:
            x = denoised
            continue
        dvar = s**2 - s_next**2  # g^2 dt over the step
        score = (denoised - x) / s**2  # Tweedie: grad log p_sigma(x) = (D - x) / sigma^2
        x = x + score * dvar + draw(x) * math.sqrt(dvar)
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
                options={"s_churn": 0.0, "s_tmin": 0.0, "s_tmax": float("inf"), "s_noise": 1.0}),
    SamplerSpec(name="ddim", fn=ddim, options={"eta": 0.0},
                description="DDIM (Song et al. 2021); eta=0 deterministic, eta=1 DDPM (needs noise)"),
    SamplerSpec(name="ddpm", fn=ddpm, stochastic=True,
                description="ancestral sampling from the exact posterior q(x_s | x_t, x0=D) (Ho et al. 2020)"),
    SamplerSpec(name="dpmpp_2m", fn=dpmpp_2m,
                description="DPM-Solver++(2M), 2nd-order multistep in log sigma (Lu et al. 2022)"),
    SamplerSpec(name="deis", fn=deis, options={"order": 3},
                description="rhoAB-DEIS, Adams-Bashforth in sigma, order 1-3 (Zhang & Chen 2023)"),
    SamplerSpec(name="euler_maruyama", fn=euler_maruyama, stochastic=True,
                description="Euler-Maruyama on the reverse VE SDE (Song et al. 2021)"),
    SamplerSpec(name="restart", fn=restart, stochastic=True,
                options={"solver": "heun", "sigma_restart": 0.5, "restarts": 1},
                description="Restart (Xu et al. 2023): solve, re-noise to sigma_restart, solve the rest again"),
]

__all__ = ["BUILTIN_SAMPLERS", "ddim", "ddpm", "deis", "dpmpp_2m", "euler", "euler_maruyama", "heun",
           "restart"]
