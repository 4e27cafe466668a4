"""Multistep samplers: DPM-Solver++(2M) and its SDE, DPM-Solver++(3M) (SDE), rhoAB-DEIS, UniPC.

Same signature and VE view as :mod:`polydiff.diffusion.samplers` (x = x0 + sigma eps, data prediction
D = denoised, lambda = -log sigma). Every coefficient depends on the grid only, so it is computed
on the host in float64 before the loop (DEIS's and UniPC's tables once per grid: cached), and the
coefficient of x as a 0-d tensor; a step is then one kernel per term.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence

from torch import Tensor

from ._stepping import Callback, Noise, _combine, _denoise, _report, _require_noise, _scalars, _steps


def dpmpp_2m(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
             callback: Callback | None = None) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) with t = lambda = -log sigma in the VE view."""
    old_denoised: Tensor | None = None
    h_last = 0.0
    steps = _steps(sigmas)
    ratio = _scalars([s_next / s for _, s, s_next in steps], x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:  # the data-prediction solver's last step lands on D exactly
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)  # lambda_next - lambda
        e = -math.expm1(-h)
        if old_denoised is None:  # Alg. 2 line 7 with alpha = 1: x (s_next / s) + (1 - e^{-h}) D
            x = _combine([s_next / s, e], [x, denoised], ratio[i])
        else:  # line 6: D_i = (1 + 1/(2r)) x0_i - 1/(2r) x0_{i-1}, r = h_{i-1} / h_i
            k = e * h / (2 * h_last)
            x = _combine([s_next / s, e + k, -k], [x, denoised, old_denoised], ratio[i])
        old_denoised, h_last = denoised, h
    return x


def _check_eta(name: str, eta: float, s_noise: float) -> None:
    if eta < 0 or s_noise < 0:
        raise ValueError(f"{name} needs eta >= 0 and s_noise >= 0, got eta={eta}, s_noise={s_noise}")


def _sde_decay(steps: list[tuple[int, float, float]], eta: float) -> list[float]:
    """The coefficient of x in each SDE step: (sigma_next / sigma) e^{-eta h} (0 on the step to 0)."""
    return [s_next / s * math.exp(-eta * (math.log(s) - math.log(s_next))) if s_next > 0 else 0.0
            for _, s, s_next in steps]


def dpmpp_2m_sde(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
                 callback: Callback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(2M) SDE (Lu et al. 2022, Sec. 5 / App. B; k-diffusion's midpoint form).

    The first-order part solves the linear part exactly with ``eta * h`` extra decay, and fresh noise
    of variance ``sigma_next^2 (1 - e^{-2 eta h})`` replaces what the decay removed; the second-order
    term is DPM-Solver++(2M)'s. ``eta = 0`` is DPM-Solver++(2M)."""
    _check_eta("dpmpp_2m_sde", eta, s_noise)
    old_denoised: Tensor | None = None
    h_last = 0.0
    steps = _steps(sigmas)
    decay = _scalars(_sde_decay(steps, eta), x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)
        c = -math.expm1(-h - eta * h)  # 1 - e^{-(1 + eta) h}
        coeffs, terms = [s_next / s * math.exp(-eta * h), c], [x, denoised]
        if old_denoised is not None:  # + c / (2 r) (D_i - D_{i-1}), r = h_{i-1} / h_i
            k = 0.5 * c * h / h_last
            coeffs, terms = [coeffs[0], c + k, -k], [x, denoised, old_denoised]
        x = _combine(coeffs, terms, decay[i])
        if eta > 0:
            x.add_(_require_noise(noise, "dpmpp_2m_sde with eta > 0")(x),
                   alpha=s_next * math.sqrt(-math.expm1(-2 * eta * h)) * s_noise)
        old_denoised, h_last = denoised, h
    return x


def dpmpp_3m_sde(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
                 callback: Callback | None = None, eta: float = 1.0, s_noise: float = 1.0) -> Tensor:
    """DPM-Solver++(3M) SDE (Lu et al. 2022, third-order multistep; k-diffusion's ``dpmpp_3m_sde``).

    With ``phi_2 = (e^{-h_eta} - 1) / h_eta + 1`` and ``phi_3 = phi_2 / h_eta - 1/2`` (h_eta = (1 + eta) h),
    the first and second divided differences of the last three D's add ``phi_2 d1 - phi_3 d2`` to the
    first-order SDE step. ``eta = 0`` is the deterministic DPM-Solver++(3M)."""
    _check_eta("dpmpp_3m_sde", eta, s_noise)
    d_1: Tensor | None = None
    d_2: Tensor | None = None
    h_1 = h_2 = 0.0
    steps = _steps(sigmas)
    decay = _scalars(_sde_decay(steps, eta), x)
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        if s_next == 0:
            x = denoised
            continue
        h = math.log(s) - math.log(s_next)
        h_eta = h * (eta + 1)
        phi_2 = math.expm1(-h_eta) / h_eta + 1
        coeffs, terms = [s_next / s * math.exp(-eta * h), -math.expm1(-h_eta)], [x, denoised]
        if d_2 is not None and d_1 is not None:
            r0, r1 = h_1 / h, h_2 / h
            phi_3 = phi_2 / h_eta - 0.5
            # d1_0 = (D - D1) / r0, d1_1 = (D1 - D2) / r1, d1 = d1_0 + (d1_0 - d1_1) r0 / (r0 + r1),
            # d2 = (d1_0 - d1_1) / (r0 + r1); the step adds phi_2 d1 - phi_3 d2, expanded in D, D1, D2
            a = (phi_2 * (1 + r0 / (r0 + r1)) - phi_3 / (r0 + r1)) / r0  # weight of d1_0
            b = -(phi_2 * r0 / (r0 + r1) - phi_3 / (r0 + r1)) / r1  # weight of d1_1, with sign
            coeffs = [coeffs[0], coeffs[1] + a, -a + b, -b]
            terms = [x, denoised, d_1, d_2]
        elif d_1 is not None:
            k = phi_2 * h / h_1  # phi_2 (D - D1) / r
            coeffs, terms = [coeffs[0], coeffs[1] + k, -k], [x, denoised, d_1]
        x = _combine(coeffs, terms, decay[i])
        if eta > 0:
            x.add_(_require_noise(noise, "dpmpp_3m_sde with eta > 0")(x),
                   alpha=s_next * math.sqrt(-math.expm1(-2 * eta * h)) * s_noise)
        d_1, d_2, h_1, h_2 = denoised, d_1, h, h_1
    return x


def dpmpp_3m(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
             callback: Callback | None = None) -> Tensor:
    """DPM-Solver++(3M): :func:`dpmpp_3m_sde` with ``eta = 0`` (deterministic)."""
    return dpmpp_3m_sde(denoiser, x, sigmas, noise=noise, callback=callback, eta=0.0)


def _lagrange_integral(nodes: Sequence[float], j: int, a: float, b: float) -> float:
    """integral_a^b of the Lagrange basis polynomial L_j over ``nodes`` (1-3 nodes), in closed form
    with u = t - a so that nothing cancels (Zhang & Chen 2023, rhoAB-DEIS)."""
    h = b - a
    others = [t - a for k, t in enumerate(nodes) if k != j]
    den = math.prod(nodes[j] - t for k, t in enumerate(nodes) if k != j)
    if not others:
        return h
    if len(others) == 1:
        (p,) = others
        return (h * h / 2 - p * h) / den
    p, q = others
    return (h**3 / 3 - (p + q) * h * h / 2 + p * q * h) / den


def deis(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
         callback: Callback | None = None, order: int = 3) -> Tensor:
    """rhoAB-DEIS (Zhang & Chen 2023, Sec. 4): Adams-Bashforth in rho = sigma on dx/dsigma = eps_hat.

    In the VE view the exponential integrator's transition factor is 1, so the step is
    x_{i+1} = x_i + sum_j C_ij eps_{i-j} with C_ij the integral over [sigma_i, sigma_{i+1}] of the
    Lagrange basis over the last ``order`` noise levels; early steps use lower orders (warm start).
    """
    if order not in (1, 2, 3):
        raise ValueError(f"deis: order must be 1, 2 or 3, got {order}")
    steps = _steps(sigmas)
    coeffs = _deis_table(_grid(steps), order)
    diff_hist: list[Tensor] = []  # x_j - D_j = sigma_j eps_j, newest first
    for i, s, s_next in steps:
        denoised = _denoise(denoiser, x, s)
        _report(callback, i, x, s, s_next, denoised)
        diff_hist = [x - denoised, *diff_hist][:order]
        x = _combine([1.0, *coeffs[i]], [x, *diff_hist])
    return x


def _grid(steps: list[tuple[int, float, float]]) -> tuple[float, ...]:
    return (*(s for _, s, _ in steps), steps[-1][2])


@functools.lru_cache(maxsize=32)
def _deis_table(grid: tuple[float, ...], order: int) -> tuple[tuple[float, ...], ...]:
    """All C_ij / sigma_{i-j} of a grid (the weights of x_j - D_j), once per grid."""
    table = []
    for i in range(len(grid) - 1):
        nodes = [grid[i - k] for k in range(min(order, i + 1))]
        table.append(tuple(_lagrange_integral(nodes, j, grid[i], grid[i + 1]) / nodes[j] for j in range(len(nodes))))
    return tuple(table)


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """Solve a small dense system (Gaussian elimination with partial pivoting, host floats)."""
    n = len(b)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        for r in range(c + 1, n):
            f = m[r][c] / m[c][c]
            m[r] = [u - f * v for u, v in zip(m[r], m[c], strict=True)]
    out = [0.0] * n
    for r in reversed(range(n)):
        out[r] = (m[r][n] - sum(m[r][k] * out[k] for k in range(r + 1, n))) / m[r][r]
    return out


def _unipc_coefficients(lam: list[float], i: int, p: int) -> tuple[list[float], list[float]]:
    """UniPC-bh2 weights for the step from grid point i to i + 1 with order ``p`` (Zhao et al. 2023,
    Alg. 2 / 3 in data prediction): the predictor's weights of ``[x_i, D_i, D_{i-1}, ..]`` and the
    corrector's of ``[x_i, D_i, D_{i-1}, .., D_{i+1}]``."""
    h = lam[i + 1] - lam[i]
    hh = -h  # data prediction integrates in -h
    h_phi_1 = math.expm1(hh)
    b_h = math.expm1(hh)  # B(h) of the bh2 variant
    rks = [(lam[i - k] - lam[i]) / h for k in range(1, p)] + [1.0]
    b, h_phi_k, fact = [], h_phi_1 / hh - 1, 1.0
    for k in range(1, p + 1):  # b_k = k! phi_{k+1}(h) / B(h)
        b.append(h_phi_k * fact / b_h)
        fact *= k + 1
        h_phi_k = h_phi_k / hh - 1 / fact
    big_r = [[r ** (k - 1) for r in rks] for k in range(1, p + 1)]
    rho_p = [] if p == 1 else [0.5] if p == 2 else _solve([row[:-1] for row in big_r[:-1]], b[:-1])
    rho_c = [0.5] if p == 1 else _solve(big_r, b)
    ratio = math.exp(hh)  # sigma_{i+1} / sigma_i
    # x_hat = ratio x - h_phi_1 D_i - B(h) sum_k rho_k (D_{i-k} - D_i) / r_k  (+ rho_c[-1] (D_{i+1} - D_i))
    pred = [ratio, -h_phi_1 + b_h * sum(r / rk for r, rk in zip(rho_p, rks, strict=False))]
    pred += [-b_h * r / rk for r, rk in zip(rho_p, rks, strict=False)]
    hist = rho_c[:-1]
    corr = [ratio, -h_phi_1 + b_h * (sum(r / rk for r, rk in zip(hist, rks, strict=False)) + rho_c[-1])]
    corr += [-b_h * r / rk for r, rk in zip(hist, rks, strict=False)] + [-b_h * rho_c[-1]]
    return pred, corr


def unipc(denoiser: Callable[..., Tensor], x: Tensor, sigmas: Tensor, *, noise: Noise | None = None,
          callback: Callback | None = None, order: int = 3, corrector: bool = True) -> Tensor:
    """UniPC (Zhao et al. 2023) with B(h) = e^h - 1 (bh2), data prediction, orders 1-3.

    Each step predicts x_{i+1} with UniP of order p (the last p D's; warm start from order 1), and,
    once D(x_{i+1}) is known, corrects x_{i+1} with UniC (order p + 1, no extra evaluation); the
    corrected point starts the next step, while D stays the one evaluated at the predicted point.
    The last step to sigma = 0 returns D. ``corrector=False`` is UniP alone."""
    if order not in (1, 2, 3):
        raise ValueError(f"unipc: order must be 1, 2 or 3, got {order}")
    steps = _steps(sigmas)
    table = _unipc_table(_grid(steps), order, corrector)
    ratio = _scalars([s_next / s for _, s, s_next in steps], x)
    hist: list[Tensor] = []  # D_i, D_{i-1}, ... newest first
    for i, s, s_next in steps:  # x: the predicted x_i, where D is evaluated
        denoised = _denoise(denoiser, x, s)
        hist = [denoised, *hist][:order + 1]
        fused, delta = table[i]
        if callback is not None:  # the corrected x_i is only needed to report it
            _report(callback, i, _combine([1.0, *delta], [x, *hist[:len(delta)]]) if delta else x, s, s_next,
                    denoised)
        if s_next == 0:
            x = denoised
            continue
        x = _combine(fused, [x, *hist[:len(fused) - 1]], ratio[i])
    return x


@functools.lru_cache(maxsize=32)
def _unipc_table(grid: tuple[float, ...], order: int,
                 corrector: bool) -> tuple[tuple[tuple[float, ...], tuple[float, ...]], ...]:
    """Per step i of a grid (once per grid): the weights of ``[x_i^pred, D_i, D_{i-1}, ..]`` giving
    x_{i+1}^pred, and those of ``[D_i, D_{i-1}, ..]`` giving the correction x_i^c - x_i^pred.

    UniC's x_i^c and UniP's x_i^pred (both from x_{i-1}^c) share the weight of x_{i-1}^c, so
    x_i^c = x_i^pred + (a sum of D's), and UniP's x_{i+1}^pred = ratio_i x_i^c + (D's) is one sum over
    x_i^pred and the D's: one kernel per term and step instead of two sums."""
    lam = [-math.log(s) if s > 0 else math.inf for s in grid]
    coef = [_unipc_coefficients(lam, i, min(order, i + 1)) if grid[i + 1] > 0 else ([], [])
            for i in range(len(grid) - 1)]
    table = []
    for i, (pred, _) in enumerate(coef):
        delta: list[float] = []
        if corrector and i > 0:  # x_i^c - x_i^pred over D_i, D_{i-1}, ..
            pred_prev, corr_prev = coef[i - 1]
            delta = [corr_prev[-1], *(c - p for c, p in zip(corr_prev[1:-1], pred_prev[1:], strict=True))]
        fused: list[float] = []
        if pred:  # ratio x_i^pred + ratio delta + UniP's weights of D_i, D_{i-1}, ..
            ratio, p = pred[0], pred[1:]
            fused = [ratio, *(ratio * d + w for d, w in itertools.zip_longest(delta, p, fillvalue=0.0))]
        table.append((tuple(fused), tuple(delta)))
    return tuple(table)


__all__ = ["deis", "dpmpp_2m", "dpmpp_2m_sde", "dpmpp_3m", "dpmpp_3m_sde", "unipc"]
