import math

import numpy as np
import pytest
import torch

from polydiff.diffusion.schedules import (
    BUILTIN_SCHEDULES,
    EDM,
    VE,
    Discrete,
    NoiseLevels,
    RectifiedFlow,
    VPCosine,
    VPLinear,
    VPSigmoid,
    sigma_grid,
)

VP = [VPLinear(), VPCosine(), VPSigmoid(), Discrete()]


def _ts(s, n=101):
    return torch.linspace(s.t_min, s.t_max, n, dtype=torch.float64)


@pytest.mark.parametrize("s", VP, ids=lambda s: s.name)
def test_vp_schedules_preserve_variance(s):
    a, sig = s.alpha_sigma(_ts(s))
    torch.testing.assert_close(a**2 + sig**2, torch.ones_like(a), atol=1e-9, rtol=0)


def test_flow_is_the_linear_interpolant():
    s = RectifiedFlow()
    t = _ts(s)
    a, sig = s.alpha_sigma(t)
    torch.testing.assert_close(a + sig, torch.ones_like(t))
    torch.testing.assert_close(s.sigma_ve(t), t / (1 - t))


@pytest.mark.parametrize("cls", BUILTIN_SCHEDULES, ids=lambda c: c.name)
def test_logsnr_decreases_and_sigma_inverts(cls):
    s = cls()
    t = _ts(s)
    lam = s.logsnr(t)
    assert torch.all(lam[1:] < lam[:-1]), "logSNR must decrease strictly in t"
    torch.testing.assert_close(s.t_from_sigma(s.sigma_ve(t)), t, atol=1e-7, rtol=0)
    assert s.sigma_max > 50 and s.sigma_min < 0.02


def test_discrete_matches_ddpm_alphas_cumprod():
    s = Discrete()
    betas = np.linspace(1e-4, 0.02, 1000)
    abar = np.cumprod(1 - betas)
    t = torch.tensor([0, 10, 500, 999], dtype=torch.float64) / 999
    a, _ = s.alpha_sigma(t)
    np.testing.assert_allclose(a.numpy() ** 2, abar[[0, 10, 500, 999]], rtol=1e-10)


def test_continuous_vp_linear_approximates_ddpm_1000_steps():
    # beta(t) = N * beta_i in the continuous limit (Song et al. 2021, App. B)
    t = torch.linspace(0.05, 1, 20, dtype=torch.float64)
    a_c, _ = VPLinear().alpha_sigma(t)
    a_d, _ = Discrete().alpha_sigma(t)
    torch.testing.assert_close(a_c, a_d, atol=5e-3, rtol=0)


def test_edm_and_ve_endpoints():
    e, v = EDM(), VE()
    assert math.isclose(e.sigma_min, 0.002) and math.isclose(e.sigma_max, 80.0)
    assert math.isclose(v.sigma_min, 0.01) and math.isclose(v.sigma_max, 80.0)


@pytest.mark.parametrize("kind", ["uniform_t", "karras", "logsnr"])
@pytest.mark.parametrize("s", [EDM(), VPCosine(), RectifiedFlow(), Discrete()], ids=lambda s: s.name)
def test_sigma_grids(kind, s):
    g = sigma_grid(s, 10, kind)
    assert g.shape == (11,) and g[-1] == 0
    assert torch.all(g[1:] < g[:-1])
    assert math.isclose(float(g[0]), s.sigma_max, rel_tol=1e-5)
    assert math.isclose(float(g[-2]), s.sigma_min, rel_tol=1e-4)


def test_grid_shapes_follow_their_definitions():
    s = EDM()
    lg = torch.log(sigma_grid(s, 8, "logsnr")[:-1])
    torch.testing.assert_close(lg.diff(), torch.full((7,), float(lg.diff()[0])), atol=1e-5, rtol=0)
    k1 = sigma_grid(s, 8, "karras", rho=1.0)[:-1]
    torch.testing.assert_close(k1.diff(), torch.full((7,), float(k1.diff()[0])), atol=1e-4, rtol=0)
    # EDM's own time is the Karras ramp, so uniform_t == karras for it
    torch.testing.assert_close(sigma_grid(s, 8, "uniform_t"), sigma_grid(s, 8, "karras"), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="valid grids"):
        sigma_grid(s, 8, "cosine")  # type: ignore[arg-type]


def test_noise_level_distributions():
    u = torch.randn(200_000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ln = NoiseLevels(kind="lognormal").sample(EDM(), u)
    assert abs(float(torch.log(ln).median()) + 1.2) < 0.02
    s = VPCosine()
    t = s.t_from_sigma(NoiseLevels(kind="uniform_t").sample(s, u))
    assert abs(float(t.mean()) - (s.t_min + s.t_max) / 2) < 0.01
    assert abs(float(t.std()) - (s.t_max - s.t_min) / math.sqrt(12)) < 0.01
    lam = s.logsnr(s.t_from_sigma(NoiseLevels(kind="uniform_logsnr").sample(s, u)))
    lam_lo, lam_hi = -2 * math.log(s.sigma_max), -2 * math.log(s.sigma_min)
    assert abs(float(lam.min()) - lam_lo) < 0.01 and abs(float(lam.max()) - lam_hi) < 0.01
    assert abs(float(lam.mean()) - (lam_lo + lam_hi) / 2) < 0.05  # uniform in logSNR
    f = RectifiedFlow()
    t = f.t_from_sigma(NoiseLevels(kind="logit_normal").sample(f, u))
    assert abs(float(torch.logit(t).mean())) < 0.02
