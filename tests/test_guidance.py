"""Conditioning and guidance wrappers: exact observed entries, conditional models, CFG, RePaint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from polydiff.diffusion.gmm import GaussianMixture, gaussian, ring
from polydiff.diffusion.guidance import classifier_free_guidance, repaint, with_conditioning, with_observed
from polydiff.diffusion.noise import NoiseSource, seeds_for
from polydiff.diffusion.samplers import BUILTIN_SAMPLERS, euler
from polydiff.diffusion.sampling import sample
from polydiff.diffusion.schedules import EDM, sigma_grid
from polydiff.plugins.specs import SamplerSpec

SPECS = {s.name: s for s in BUILTIN_SAMPLERS}
# two modes on the diagonal: observing x1 = 0.8 puts x2 in the (+1, +1) mode
TWO_MODES = GaussianMixture(torch.tensor([0.5, 0.5], dtype=torch.float64),
                            torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=torch.float64),
                            torch.full((2, 2), 0.3**2, dtype=torch.float64))


def _first_coordinate_observed(n: int, value: float = 0.8) -> tuple[torch.Tensor, torch.Tensor]:
    x_obs, mask = torch.zeros(n, 2), torch.zeros(n, 2)
    x_obs[:, 0], mask[:, 0] = value, 1.0
    return x_obs, mask


@pytest.mark.parametrize("name", list(SPECS))
def test_observed_entries_end_exactly_at_x_obs(name: str) -> None:
    n = 200
    x_obs, mask = _first_coordinate_observed(n)
    x = sample(TWO_MODES.denoise, shape=(2,), n=n, seed=0, sampler=name, steps=16, x_obs=x_obs, observed=mask).x
    assert torch.equal(x[:, 0], x_obs[:, 0])
    assert (x[:, 1] > 0).float().mean() > 0.6  # unobserved entries follow the observation (mostly)


def test_with_observed_replaces_only_observed_entries() -> None:
    x = torch.randn(5, 2)
    x_obs, mask = _first_coordinate_observed(5, 2.5)
    sigma = torch.full((5,), 3.0)
    out = with_observed(TWO_MODES.denoise, x_obs, mask)(x, sigma)
    assert torch.equal(out[:, 0], x_obs[:, 0])
    assert torch.equal(out[:, 1], TWO_MODES.denoise(x, sigma)[:, 1])
    with pytest.raises(ValueError, match="same"):
        with_observed(TWO_MODES.denoise, x_obs, mask[:, :1])


def test_conditional_model_gets_x_cond_and_samples_the_true_conditional() -> None:
    # x = (x1, x2) jointly Gaussian, unit variances, correlation rho; a model "trained with masks"
    # is the exact denoiser of x2 | x1 = x_cond[:, 0], which is N(rho x1, 1 - rho^2).
    rho, n = 0.8, 2000
    seen: dict[str, torch.Tensor] = {}

    def conditional(x: torch.Tensor, sigma: torch.Tensor, *, x_cond: torch.Tensor,
                    cond_mask: torch.Tensor) -> torch.Tensor:
        seen.update(x_cond=x_cond, cond_mask=cond_mask)
        m, v = rho * x_cond[:, 0], 1 - rho**2
        d2 = m + v / (v + sigma**2) * (x[:, 1] - m)
        return torch.stack([x[:, 0] * 0 + 123.0, d2], dim=1)  # garbage on observed entries on purpose

    x_obs, mask = _first_coordinate_observed(n, 1.5)
    x_obs[:, 1] = 7.0  # must be hidden from the model by the mask
    r = sample(conditional, shape=(2,), n=n, seed=0, sampler="heun", steps=24, x_obs=x_obs, observed=mask,
               conditional_model=True)
    assert torch.equal(seen["cond_mask"], mask) and torch.equal(seen["x_cond"], x_obs * mask)
    assert torch.equal(r.x[:, 0], x_obs[:, 0])
    assert abs(float(r.x[:, 1].mean()) - rho * 1.5) < 0.05
    assert abs(float(r.x[:, 1].std()) - (1 - rho**2) ** 0.5) < 0.05
    direct = with_conditioning(conditional, x_obs[:3], mask[:3])(torch.zeros(3, 2), torch.ones(3))
    assert torch.equal(direct[:, 0], x_obs[:3, 0])


def _class_denoiser(mix: GaussianMixture, counter: list[int]) -> Callable[..., torch.Tensor]:
    """Exact class-conditional denoiser: label k -> component k, label -1 -> the whole mixture."""
    comps = [gaussian(mix.means[k], mix.variances[k].sqrt()) for k in range(len(mix.weights))]

    def d(x: torch.Tensor, sigma: torch.Tensor, *, label: torch.Tensor) -> torch.Tensor:
        counter.append(x.shape[0])
        out = mix.denoise(x, sigma)
        for k, comp in enumerate(comps):
            out = torch.where((label == k)[:, None], comp.denoise(x, sigma), out)
        return out

    return d


def test_cfg_scale_one_is_conditional_and_zero_is_unconditional() -> None:
    mix, calls = ring(), list[int]()
    d = _class_denoiser(mix, calls)
    x, sigma = 2 * torch.randn(16, 2, dtype=torch.float64), torch.full((16,), 1.3, dtype=torch.float64)
    label = torch.arange(16) % 8
    cond_out = d(x, sigma, label=label)
    calls.clear()
    guided = classifier_free_guidance(d, 1.0)(x, sigma, label=label)
    assert calls == [32]  # one batched call with both halves
    torch.testing.assert_close(guided, cond_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(classifier_free_guidance(d, 0.0)(x, sigma, label=label),
                               mix.denoise(x, sigma), rtol=0, atol=1e-12)
    strong = classifier_free_guidance(d, 3.0)(x, sigma, label=label)
    assert not torch.allclose(strong, cond_out)
    with pytest.raises(ValueError, match="needs the conditioning 'label'"):
        classifier_free_guidance(d, 2.0)(x, sigma)


def test_cfg_in_sample_hits_the_requested_class() -> None:
    mix, calls = ring(), list[int]()
    n, label = 400, torch.full((400,), 3)
    x = sample(_class_denoiser(mix, calls), shape=(2,), n=n, seed=0, sampler="dpmpp_2m", steps=20,
               cfg_scale=2.0, cond={"label": label}).x
    nearest = ((x[:, None, :].double() - mix.means[None]) ** 2).sum(-1).argmin(1)
    assert (nearest == 3).float().mean() > 0.98
    assert set(calls) == {2 * n}


def test_repaint_harmonises_unobserved_entries() -> None:
    # replacement conditioning alone leaves many x2 in the wrong mode; RePaint's resampling fixes it
    n = 600
    x_obs, mask = _first_coordinate_observed(n)
    plain = sample(TWO_MODES.denoise, shape=(2,), n=n, seed=0, sampler="euler", steps=30, x_obs=x_obs,
                   observed=mask)
    resampled = SamplerSpec(name="repaint_euler", fn=repaint(euler, jump_length=5, jump_n_sample=5),
                            description="RePaint around Euler")
    rp = sample(TWO_MODES.denoise, shape=(2,), n=n, seed=0, sampler=resampled, steps=30, x_obs=x_obs, observed=mask)
    right_plain = float((plain.x[:, 1] > 0).float().mean())
    right_rp = float((rp.x[:, 1] > 0).float().mean())
    assert right_rp > 0.9 and right_rp > right_plain + 0.1, (right_plain, right_rp)
    assert torch.equal(rp.x[:, 0], x_obs[:, 0]) and rp.nfe == 5 * 30


def test_repaint_without_resampling_is_the_plain_sampler() -> None:
    x = 80 * torch.randn(32, 2, generator=torch.Generator().manual_seed(0))
    sig = sigma_grid(EDM(), 12)
    steps: list[int] = []
    once = repaint(euler, jump_length=5, jump_n_sample=1)
    out = once(TWO_MODES.denoise, x, sig, noise=NoiseSource(seeds_for(32, 0)), callback=lambda i: steps.append(i["i"]))
    assert torch.equal(out, euler(TWO_MODES.denoise, x, sig))
    assert steps == list(range(12))
    with pytest.raises(ValueError, match="noise"):
        once(TWO_MODES.denoise, x, sig)
    with pytest.raises(ValueError, match="jump_length"):
        repaint(euler, jump_length=0)
