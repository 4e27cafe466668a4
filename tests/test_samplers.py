"""Samplers driven by exact GMM denoisers: convergence, order, identities, masks, batching, errors."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable

import pytest
import torch

from polydiff.diffusion.gmm import random_mixture, ring, sliced_wasserstein
from polydiff.diffusion.multistep import _unipc_coefficients, dpmpp_2m, dpmpp_2m_sde, dpmpp_3m_sde, unipc
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.samplers import BUILTIN_SAMPLERS, ddim, ddpm, euler, euler_maruyama, heun
from polydiff.diffusion.sampling import sample
from polydiff.diffusion.schedules import EDM, VPCosine, sigma_grid
from polydiff.diffusion.state import Field, StateSpec
from polydiff.plugins.specs import SamplerSpec
from polydiff.testing._sampler import check_sampler

SPECS = {s.name: s for s in BUILTIN_SAMPLERS}
MIXTURES = {"ring": ring(), "mixture16": random_mixture()}


def _noise(n: int, seed: int = 0) -> NoiseSource:
    return NoiseSource(seeds_for(n, seed))


@pytest.mark.parametrize("name", list(SPECS))
def test_conformance_kit_passes_builtin(name: str) -> None:
    check_sampler(SPECS[name], n=1000)


def test_conformance_kit_catches_broken_samplers() -> None:
    shrunk = lambda d, x, s, **kw: euler(d, x, s, **kw) * 0.9  # noqa: E731
    with pytest.raises(AssertionError, match="does not reproduce the Gaussian"):
        check_sampler(shrunk, n=1000)
    global_rng = lambda d, x, s, **kw: euler(d, x, s) + 0.01 * torch.randn_like(x)  # noqa: E731
    with pytest.raises(AssertionError, match="not reproducible"):
        check_sampler(global_rng, n=200)
    with pytest.raises(AssertionError, match="does not reproduce"):  # 3 Euler steps are far too few
        check_sampler(SPECS["euler"], steps=3, n=1000)


@pytest.mark.parametrize("mix_name", list(MIXTURES))
@pytest.mark.parametrize("name", list(SPECS))
def test_converges_to_true_distribution(name: str, mix_name: str) -> None:
    mix, n = MIXTURES[mix_name], 1000
    spec = SPECS[name]
    data = mix.sample(n, torch.Generator().manual_seed(1))[0]
    floor_sw = sliced_wasserstein(data, mix.sample(n, torch.Generator().manual_seed(2))[0])
    # expected NLL per dim of true samples (negative entropy), from many samples
    data_nll = float(-mix.log_prob(mix.sample(20000, torch.Generator().manual_seed(3))[0]).mean()) / mix.dim
    sw, nll = [], []
    for nfe in (5, 100):
        x = sample(mix.denoise, shape=(mix.dim,), n=n, seed=0, sampler=spec, steps=spec.steps_for_nfe(nfe)).x
        sw.append(sliced_wasserstein(x, data))
        nll.append(float(-mix.log_prob(x).mean()) / mix.dim)
    assert sw[1] < sw[0]
    assert abs(nll[1] - data_nll) < abs(nll[0] - data_nll)
    # one 1000-sample sliced W2 spreads widely: over seeds 0-5, Euler at 100 NFE scores 0.55-1.5x the
    # floor and ddpm / the SDE solvers 0.8-1.8x (the same draws move them alike; measured)
    assert sw[1] < 2.0 * floor_sw, (sw, floor_sw)
    # Euler-Maruyama's own bias at 100 NFE on the ring is 0.081 nats/dim (measured on 20k samples), and
    # one 1000-sample estimate spreads by about +-0.02 around it (0.05-0.10 over seeds 0-5)
    assert abs(nll[1] - data_nll) < (0.13 if name == "euler_maruyama" else 0.1), (nll, data_nll)


def _unipc_two_sums(den: Callable[..., torch.Tensor], x: torch.Tensor, sigmas: torch.Tensor, order: int,
                    record: list[torch.Tensor]) -> torch.Tensor:
    """UniPC as Zhao et al. write it: UniC's sum for x_i^c, then UniP's sum from it (the sampler fuses them)."""
    steps = [float(s) for s in sigmas]
    lam = [-math.log(s) if s > 0 else math.inf for s in steps]
    hist: list[torch.Tensor] = []
    x_prev = x
    prev: tuple[list[float], list[float]] = ([], [])
    for i in range(len(steps) - 1):
        d = den(x, x.new_full((x.shape[0],), steps[i]))
        if i > 0:
            terms = [x_prev, *hist[:len(prev[1]) - 2], d]
            x = sum((c * t for c, t in zip(prev[1], terms, strict=True)), torch.zeros_like(x))
        record.append(x)
        hist = [d, *hist]
        if steps[i + 1] == 0:
            return d
        prev = _unipc_coefficients(lam, i, min(order, i + 1))
        x_prev = x
        x = sum((c * t for c, t in zip(prev[0], [x, *hist], strict=False)), torch.zeros_like(x))
    return x


def _append_x(acc: list[torch.Tensor], info: dict[str, object]) -> None:
    assert isinstance(info["x"], torch.Tensor)
    acc.append(info["x"])


def test_unipc_fused_sum_matches_predictor_then_corrector() -> None:
    mix = MIXTURES["mixture16"]
    x = 80 * torch.randn(300, mix.dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for steps, order in ((6, 3), (10, 2), (12, 3)):
        sig = sigma_grid(EDM(), steps).double()
        want: list[torch.Tensor] = []
        got: list[torch.Tensor] = []
        ref = _unipc_two_sums(mix.denoise, x, sig, order, want)
        out = unipc(mix.denoise, x, sig, order=order, callback=functools.partial(_append_x, got))
        torch.testing.assert_close(out, ref, rtol=1e-9, atol=1e-9)
        for a, b in zip(got, want, strict=True):  # the corrected x_i it reports
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)


def _ode_error(name: str, nfe: int, mix_name: str = "mixture16") -> float:
    """Mean distance to the converged ODE solution from the same starting noise (discretisation error)."""
    mix = MIXTURES[mix_name]
    x = 80 * torch.randn(500, mix.dim, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = heun(mix.denoise, x, sigma_grid(EDM(), 400).double())
    out = SPECS[name].fn(mix.denoise, x, sigma_grid(EDM(), SPECS[name].steps_for_nfe(nfe)).double())
    return float((out - ref).norm(dim=1).mean())


@pytest.mark.parametrize("mix_name", list(MIXTURES))
def test_higher_order_solvers_beat_euler_at_equal_nfe(mix_name: str) -> None:
    for nfe in (20, 35):
        euler_err = _ode_error("euler", nfe, mix_name)
        assert _ode_error("dpmpp_2m", nfe, mix_name) < 0.6 * euler_err
        assert _ode_error("deis", nfe, mix_name) < 0.6 * euler_err
        # third-order multistep pays for its big early steps on the sharp ring at 20 NFE (measured 0.66x
        # and 0.50x Euler there, 0.21x / 0.23x on the 16-D mixture); at 35 NFE they are the best here
        third = 0.7 if nfe == 20 else 0.25
        assert _ode_error("dpmpp_3m", nfe, mix_name) < third * euler_err
        assert _ode_error("unipc", nfe, mix_name) < third * euler_err
    # Heun wastes its last evaluation and overshoots on big steps into sharp modes: it needs
    # EDM's ~18 steps (35 NFE) to win on these narrow mixtures.
    assert _ode_error("heun", 35, mix_name) < 0.8 * _ode_error("euler", 35, mix_name)
    # ... and the distribution is closer too (16-D mixture, sliced W2 at 20 NFE, averaged over 3 seeds
    # because one 2000-sample estimate has a noise floor near 0.08)
    if mix_name == "mixture16":
        mix = MIXTURES[mix_name]
        sw = {k: 0.0 for k in ("euler", "dpmpp_2m")}
        for seed in range(3):
            data = mix.sample(2000, torch.Generator().manual_seed(1 + seed))[0]
            for k in sw:
                x = sample(mix.denoise, shape=(16,), n=2000, seed=seed, sampler=k, steps=20).x
                sw[k] += sliced_wasserstein(x, data) / 3
        assert sw["dpmpp_2m"] < 0.85 * sw["euler"], sw


def test_ddim_eta_identities() -> None:
    mix = MIXTURES["ring"]
    sig = sigma_grid(EDM(), 12)
    x = 80 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(ddim(mix.denoise, x, sig, eta=0.0), euler(mix.denoise, x, sig))
    a = ddim(mix.denoise, x, sig, eta=1.0, noise=_noise(64))
    b = ddpm(mix.denoise, x, sig, noise=_noise(64))
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(a, ddim(mix.denoise, x, sig, eta=0.5, noise=_noise(64)), atol=1e-3)


def test_multistep_identities() -> None:
    """UniP of order 1 is DDIM (Euler), UniP of order 2 is DPM-Solver++(2M) (Zhao et al. 2023, Sec. 3.3),
    and the SDE solvers with eta = 0 are their ODE solvers; with eta > 0 they draw noise."""
    mix = MIXTURES["mixture16"]
    sig = sigma_grid(EDM(), 12).double()
    x = 80 * torch.randn(64, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)  # noqa: E731
    close(unipc(mix.denoise, x, sig, order=1, corrector=False), euler(mix.denoise, x, sig))
    close(unipc(mix.denoise, x, sig, order=2, corrector=False), dpmpp_2m(mix.denoise, x, sig))
    close(dpmpp_2m_sde(mix.denoise, x, sig, eta=0.0), dpmpp_2m(mix.denoise, x, sig))
    close(dpmpp_3m_sde(mix.denoise, x, sig, eta=0.0), SPECS["dpmpp_3m"].fn(mix.denoise, x, sig))
    for fn in (dpmpp_2m_sde, dpmpp_3m_sde):
        a, b = fn(mix.denoise, x, sig, noise=_noise(64)), fn(mix.denoise, x, sig, noise=_noise(64, seed=1))
        assert torch.equal(a, fn(mix.denoise, x, sig, noise=_noise(64))) and not torch.allclose(a, b)
    # the corrector helps: UniPC(3) beats its predictor alone at 20 and 35 NFE (not at 10: both overshoot)
    ref = heun(mix.denoise, x, sigma_grid(EDM(), 400).double())
    for nfe in (20, 35):
        g = sigma_grid(EDM(), nfe).double()
        err = [float((unipc(mix.denoise, x, g, corrector=c) - ref).norm(dim=1).mean()) for c in (True, False)]
        assert err[0] < err[1], (nfe, err)


def test_nfe_callback_and_trajectory() -> None:
    mix = MIXTURES["ring"]
    for spec in BUILTIN_SAMPLERS:
        if spec.name == "restart":  # more steps than the grid's: tests/test_restart.py
            continue
        calls: list[dict[str, object]] = []
        r = sample(mix.denoise, shape=(2,), n=8, seed=0, sampler=spec, steps=6, callback=calls.append,
                   keep_trajectory=True)
        assert r.nfe == spec.nfe(6), spec.name
        assert [c["i"] for c in calls] == list(range(6))
        assert calls[-1]["sigma_next"] == 0 and calls[0]["sigma"] == pytest.approx(80.0)
        assert r.trajectory is not None and len(r.trajectory) == 7
        assert torch.equal(r.trajectory[-1], r.x) and r.trajectory[0].std() > 20


@pytest.mark.parametrize("name", list(SPECS))
def test_any_shape_and_dtype(name: str) -> None:
    shrink = lambda x, s, **_: x * (0.25 / (0.25 + s.double() ** 2)).to(x.dtype).reshape(-1, 1, 1, 1)  # noqa: E731
    sig = sigma_grid(VPCosine(), 40)
    x = float(sig[0]) * torch.randn(16, 2, 4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = SPECS[name].fn(shrink, x, sig, noise=_noise(16))  # 640 values: std error 0.016
    assert out.shape == x.shape and out.dtype == torch.float64
    # 40 steps on this coarse grid leave each sampler's own bias in the std (measured over 8000 items);
    # the bound is that bias plus 0.06 (3.75 standard errors)
    bias = {"euler_maruyama": 0.086, "ddpm": 0.075, "euler": 0.04, "ddim": 0.04}.get(name, 0.02)
    assert abs(float(out.std()) - 0.5) < bias + 0.06


def test_batch_size_independence() -> None:
    mix = MIXTURES["mixture16"]
    for name, opts in (("ddpm", {}), ("heun", {"s_churn": 5.0}), ("dpmpp_2m", {}), ("dpmpp_3m_sde", {})):
        full = sample(mix.denoise, shape=(16,), n=10, seed=3, sampler=name, steps=8, options=opts).x
        parts = sample(mix.denoise, shape=(16,), n=10, seed=3, sampler=name, steps=8, options=opts, batch_size=3,
                       progress=True).x
        assert torch.equal(full, parts), name
        other = sample(mix.denoise, shape=(16,), n=10, seed=4, sampler=name, steps=8, options=opts).x
        assert not torch.allclose(full, other)


def test_padding_and_com_free_noise_space() -> None:
    spec = StateSpec((Field("pos", (None, 3), noise="com_free"), Field("h", (None, 2))))
    lengths = torch.tensor([5, 3, 4, 2])
    padding = spec.padding_mask(lengths, 5)

    def careless(x: torch.Tensor, sigma: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        # shrinks toward a point that is neither CoM-free nor zero on padding: sample() must project
        return x / (1 + sigma[:, None] ** 2) + 0.3

    for name in ("heun", "ddpm", "euler_maruyama"):
        x = sample(careless, shape=tuple(padding.shape[1:]), n=4, seed=0, sampler=name, steps=10, spec=spec,
                   padding=padding).x
        assert torch.equal(x[padding == 0], torch.zeros_like(x[padding == 0]))
        pos = spec.unpack(x)["pos"]
        mask = spec.unpack(padding)["pos"]
        com = (pos * mask).sum(1) / mask.sum(1)
        assert com.abs().max() < 1e-5, name
        assert x.abs().max() > 0.01  # not trivially zero


def test_clear_errors() -> None:
    mix = MIXTURES["ring"]
    x, sig = torch.zeros(4, 2), sigma_grid(EDM(), 4)
    stochastic: list[tuple[Callable[..., torch.Tensor], dict[str, float]]] = [
        (ddpm, {}), (euler_maruyama, {}), (ddim, {"eta": 1.0}), (heun, {"s_churn": 10.0})]
    for fn, kw in stochastic:
        with pytest.raises(ValueError, match="noise=NoiseSource"):
            fn(mix.denoise, x, sig, **kw)
    with pytest.raises(ValueError, match="unknown sampler .*ddim.*dpmpp_2m.*heun"):
        sample(mix.denoise, shape=(2,), n=4, seed=0, sampler="dpm_solver_9000", steps=4)
    with pytest.raises(ValueError, match=r"unknown key options.etaa \(did you mean 'eta'\?\): sampler 'ddim' accepts"):
        sample(mix.denoise, shape=(2,), n=4, seed=0, sampler="ddim", steps=4, options={"etaa": 1.0})
    with pytest.raises(ValueError, match="strictly decreasing"):
        euler(mix.denoise, x, torch.tensor([1.0, 2.0, 0.0]))
    for name in ("deis", "unipc"):
        with pytest.raises(ValueError, match=f"{name}: order must be 1, 2 or 3"):
            sample(mix.denoise, shape=(2,), n=4, seed=0, sampler=name, steps=4, options={"order": 5})
    for name in ("dpmpp_2m_sde", "dpmpp_3m_sde"):
        with pytest.raises(ValueError, match="eta >= 0 and s_noise >= 0"):
            sample(mix.denoise, shape=(2,), n=4, seed=0, sampler=name, steps=4, options={"eta": -1.0})
    with pytest.raises(ValueError, match="noise=NoiseSource"):
        dpmpp_3m_sde(mix.denoise, x, sig)


def test_sampler_spec_metadata() -> None:
    assert {s.name for s in BUILTIN_SAMPLERS} == {"euler", "heun", "ddim", "ddpm", "dpmpp_2m", "deis", "unipc",
                                                  "dpmpp_3m", "dpmpp_2m_sde", "dpmpp_3m_sde", "euler_maruyama",
                                                  "restart"}
    assert {s.name for s in BUILTIN_SAMPLERS if s.stochastic} == {"ddpm", "euler_maruyama", "restart", "dpmpp_2m_sde",
                                                                 "dpmpp_3m_sde"}
    assert SPECS["heun"].nfe(18) == 35 and SPECS["euler"].nfe(18) == 18
    # a custom spec is accepted as is, and its options are validated the same way
    custom = SamplerSpec(name="half_euler", fn=lambda d, x, s, **kw: euler(d, x, s[::2].contiguous(), **kw),
                         description="Euler on every other level")
    r = sample(MIXTURES["ring"].denoise, shape=(2,), n=4, seed=0, sampler=custom, steps=8)
    assert r.nfe == 4 and math.isfinite(float(r.x.sum()))


def test_empirical_order_of_convergence() -> None:
    """Halving the log-sigma step shrinks the ODE error by 2^order: Euler 1, Heun and DPM-Solver++(2M) 2,
    DEIS(3) about 3. Data N(0, 0.5^2), whose probability-flow ODE has the closed form
    x(sigma) = x(sigma_max) * sqrt(0.25 + sigma^2) / sqrt(0.25 + sigma_max^2)."""
    var = 0.25

    def denoiser(x: torch.Tensor, sigma: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        return x * (var / (var + sigma**2)).to(x.dtype)[:, None]

    x0 = torch.randn(64, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def error(name: str, steps: int) -> float:
        grid = sigma_grid(EDM(), steps, "logsnr").double()[:-1]  # stop at sigma_min: the ODE's own end point
        x_start = x0 * math.sqrt(var + float(grid[0]) ** 2)
        exact = x_start * math.sqrt(var + float(grid[-1]) ** 2) / math.sqrt(var + float(grid[0]) ** 2)
        return float((SPECS[name].fn(denoiser, x_start, grid) - exact).abs().max())

    names = ("euler", "heun", "dpmpp_2m", "deis", "dpmpp_3m", "unipc")
    ratio = {name: error(name, 32) / error(name, 64) for name in names}
    assert 1.7 < ratio["euler"] < 2.3, ratio
    assert ratio["heun"] > 3.5 and ratio["dpmpp_2m"] > 3.5, ratio
    assert ratio["deis"] > 5.5 and ratio["unipc"] > 5.5, ratio  # UniPC(3): UniP-3 + UniC, measured 5.7
    assert ratio["dpmpp_3m"] > 4.5, ratio  # measured 4.95 here, 3rd order asymptotically


def test_heun_euler_ratio_repairs_few_steps_and_leaves_many_alone() -> None:
    """Heun diverges at 5 Karras steps (its correction into sigma_min = 0.002 overshoots); keeping the
    Euler step where sigma_next / sigma < 0.2 fixes it, and from 18 steps on nothing changes."""
    mix = MIXTURES["mixture16"]
    x = 80 * torch.randn(500, 16, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = heun(mix.denoise, x, sigma_grid(EDM(), 400).double())
    err = lambda out: float((out - ref).norm(dim=1).mean())  # noqa: E731
    plain = err(heun(mix.denoise, x, sigma_grid(EDM(), 5).double()))  # 9 evaluations
    fixed = err(heun(mix.denoise, x, sigma_grid(EDM(), 6).double(), euler_ratio=0.2))  # 8 evaluations
    assert plain > 2.0 and fixed < 0.3 * plain, (plain, fixed)  # measured 3.41 -> 0.93
    many = sigma_grid(EDM(), 18).double()
    assert torch.equal(heun(mix.denoise, x, many, euler_ratio=0.2), heun(mix.denoise, x, many))
    g = sigma_grid(EDM(), 6).tolist()  # one evaluation a step, plus a correction where the ratio allows
    expected = 6 + sum(1 for a, b in itertools.pairwise(g[:-1]) if b >= 0.2 * a)
    r = sample(mix.denoise, shape=(16,), n=4, seed=0, sampler="heun", steps=6, options={"euler_ratio": 0.2})
    assert r.nfe == expected == 8
    with pytest.raises(ValueError, match="euler_ratio >= 0"):
        heun(mix.denoise, x, many, euler_ratio=-1.0)
