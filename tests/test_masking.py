"""Target masks for conditional training: subsets of the observed entries, CSDI's ratio law, seeded."""

import torch

from polydiff.diffusion.masking import BUILTIN_MASK_STRATEGIES, cond_mask_of, random_ratio


def _observed(b=2000, shape=(3, 8), p=0.7, seed=0):
    return (torch.rand(b, *shape, generator=torch.Generator().manual_seed(seed)) < p).float()


def test_target_is_a_binary_subset_of_observed():
    obs = _observed()
    obs[0] = 0  # a sample with nothing observed gets no target
    target = random_ratio(obs, torch.Generator().manual_seed(1))
    assert target.shape == obs.shape and target.dtype == torch.float32
    assert set(target.unique().tolist()) <= {0.0, 1.0}
    assert bool((target <= obs).all()) and target[0].sum() == 0
    given = cond_mask_of(obs, target)
    assert torch.equal(given + target, obs)


def test_ratio_is_uniform_and_count_is_exact_per_sample():
    obs = _observed()
    target = random_ratio(obs, torch.Generator().manual_seed(2))
    n_obs = obs.flatten(1).sum(1)
    frac = target.flatten(1).sum(1) / n_obs
    # r ~ U(0, 1): mean 1/2, std 1/sqrt(12) = 0.289 (rounding to whole entries adds a little spread)
    assert abs(float(frac.mean()) - 0.5) < 0.03
    assert abs(float(frac.std()) - 12**-0.5) < 0.03
    assert float(frac.min()) < 0.05 and float(frac.max()) > 0.95


def test_observed_entries_are_chosen_uniformly():
    obs = torch.ones(20000, 6)
    obs[:, 0] = 0
    target = random_ratio(obs, torch.Generator().manual_seed(3))
    rate = target.mean(0)
    assert rate[0] == 0
    assert torch.allclose(rate[1:], torch.full((5,), 0.5), atol=0.02)


def test_deterministic_given_the_generator():
    obs = _observed(b=64)
    a = random_ratio(obs, torch.Generator().manual_seed(5))
    b = random_ratio(obs, torch.Generator().manual_seed(5))
    c = random_ratio(obs, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_registered_as_a_builtin_strategy():
    spec = {s.name: s for s in BUILTIN_MASK_STRATEGIES}["random_ratio"]
    assert spec.fn is random_ratio and "CSDI" in spec.description
