"""Prior-fill conditioning (model.prior_fill = none | condition | residual): the fill never sees hidden
values, training and sampling condition identically, given entries stay exact, residual sampling adds
the fill back, bad setups fail clearly, and a tiny time-series run trains and imputes in every mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import Tensor

from polydiff import EDM, Batch, Denoiser, NoiseLevels, Parameterization, TrainConfig, Trainer, Weighting, plugins
from polydiff.app.config import ConfigError, ModelConfig, build_dataclass
from polydiff.diffusion.imputation import impute, mae
from polydiff.diffusion.prior_fill import (
    PriorFill,
    attach_prior_fill,
    harmonic_fill,
    linear_fill,
    locf_fill,
    mean_fill,
    prior_fill_of,
    resolve_prior_fill,
)
from polydiff.diffusion.sampling import sample
from polydiff.training.objective import diffusion_loss


def _batch(seed: int = 0, shape: tuple[int, ...] = (3, 2, 16)) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g)
    given = (torch.rand(shape, generator=g) < 0.5).float()
    given[..., 0] = 1  # at least one given step per line
    return x, given


class Recorder(torch.nn.Module):
    """A backbone that records the conditioning it gets and returns zeros (so D = c_skip x)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.seen: list[dict[str, Tensor]] = []

    def forward(self, x: Tensor, c_noise: Tensor, **cond: Tensor) -> Tensor:
        self.seen.append({"x_in": x.detach().clone(), **{k: v.detach().clone() for k, v in cond.items()}})
        return x * self.w


def _denoiser(mode: str | None) -> tuple[Denoiser, Recorder]:
    net = Recorder()
    d = Denoiser(net, Parameterization(kind="edm", sigma_data=1.0))
    attach_prior_fill(d, None if mode is None else PriorFill(mode=mode, fn=linear_fill))  # type: ignore[arg-type]
    return d, net


def test_the_fill_never_reads_hidden_values_and_keeps_given_ones_exactly() -> None:
    x, given = _batch()
    inputs: list[Tensor] = []

    def spy(x_given: Tensor, mask: Tensor) -> Tensor:
        inputs.append(x_given.clone())
        return linear_fill(x_given, mask)

    pf = PriorFill(mode="condition", fn=spy)
    fill = pf.fill(x, given)
    other = torch.where(given > 0, x, torch.randn(x.shape) * 100)  # another hidden truth
    assert torch.equal(pf.fill(other, given), fill)
    assert all((t[given == 0] == 0).all() for t in inputs)  # hidden entries arrive as zeros
    assert torch.equal(fill[given > 0], x[given > 0])
    assert not torch.equal(fill[given == 0], torch.zeros_like(fill[given == 0]))


@pytest.mark.parametrize("mode", ["condition", "residual"])
def test_training_and_sampling_condition_identically_and_never_on_hidden_truth(mode: str) -> None:
    x, given = _batch()
    target = 1 - given
    d, net = _denoiser(mode)
    sigma = torch.full((3,), 0.7)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    diffusion_loss(d, Batch(x=x), sigma=sigma, eps=eps, weighting=Weighting(kind="edm"), target=target)
    other = torch.where(given > 0, x, torch.randn(x.shape) * 100)
    diffusion_loss(d, Batch(x=other), sigma=sigma, eps=eps, weighting=Weighting(kind="edm"), target=target)
    train_a, train_b = net.seen[0], net.seen[1]
    assert torch.equal(train_a["x_cond"], train_b["x_cond"])  # the hidden truth does not reach the condition
    expected = torch.where(given > 0, x, linear_fill(x * given, given))
    assert torch.allclose(train_a["x_cond"], expected) and torch.equal(train_a["cond_mask"], given)
    net.seen.clear()
    sample(d, shape=x.shape[1:], n=3, seed=0, sampler="euler", steps=2, x_obs=x, observed=given,
           conditional_model=True)
    assert torch.equal(net.seen[0]["x_cond"], train_a["x_cond"])  # sampling conditions as training did


def test_none_mode_keeps_zeros_on_hidden_entries() -> None:
    x, given = _batch()
    d, net = _denoiser(None)
    diffusion_loss(d, Batch(x=x), sigma=torch.ones(3), eps=torch.zeros_like(x), weighting=Weighting(kind="edm"),
                   target=1 - given)
    assert torch.equal(net.seen[0]["x_cond"], x * given)


def test_residual_mode_diffuses_x_minus_fill() -> None:
    x, given = _batch()
    d, net = _denoiser("residual")
    sigma = torch.full((3,), 2.0)
    eps = torch.randn(x.shape, generator=torch.Generator().manual_seed(2))
    diffusion_loss(d, Batch(x=x), sigma=sigma, eps=eps, weighting=Weighting(kind="edm"), target=1 - given)
    fill = torch.where(given > 0, x, linear_fill(x * given, given))
    c_in = 1 / (2.0**2 + 1) ** 0.5  # EDM c_in at sigma 2, sigma_data 1
    assert torch.allclose(net.seen[0]["x_in"], c_in * (x - fill + 2.0 * eps), atol=1e-5)


def _zero_model(mode: str) -> object:
    """D_r = 0 for residual (the sampler then ends at the fill); D = x_cond for condition."""

    def model(x: Tensor, sigma: Tensor, *, x_cond: Tensor, cond_mask: Tensor) -> Tensor:
        return torch.zeros_like(x) if mode == "residual" else x_cond

    return attach_prior_fill(model, PriorFill(mode=mode, fn=linear_fill))  # type: ignore[arg-type]


@pytest.mark.parametrize("mode", ["condition", "residual"])
def test_imputation_of_a_fill_reproducing_model_is_the_fill_with_exact_given_entries(mode: str) -> None:
    x, given = _batch(3)
    target = 1 - given
    imp = impute(_zero_model(mode), Batch(x=x), target, n_samples=2, sampler="heun", steps=6,  # type: ignore[arg-type]
                 conditional_model=True)
    fill = linear_fill(x * given, given)
    for s in range(2):  # residual sampling starts at fill + noise and adds the fill back at every call
        assert torch.allclose(imp.samples[:, s], fill, atol=1e-5)
    keep = given.bool()
    assert torch.equal(imp.samples[:, 0][keep], x[keep])


def test_unconditional_use_and_bad_setups_fail_clearly() -> None:
    x, given = _batch()
    d, _ = _denoiser("condition")
    with pytest.raises(ValueError, match="conditional training"):
        diffusion_loss(d, Batch(x=x), sigma=torch.ones(3), eps=torch.zeros_like(x), weighting=Weighting(kind="edm"))
    with pytest.raises(ValueError, match="residual"):
        sample(_denoiser("residual")[0], shape=x.shape[1:], n=2, seed=0, steps=2)
    with pytest.raises(ValueError, match="packed batch shape"):
        PriorFill(mode="condition", fn=lambda a, m: a[..., :-1]).fill(x, given)
    with pytest.raises(ValueError, match="mode"):
        PriorFill(mode="both", fn=linear_fill)  # type: ignore[arg-type]
    ts = plugins.get_modality("timeseries")
    assert resolve_prior_fill("none", ts, conditional=False) is None
    assert resolve_prior_fill("residual", ts, conditional=True) == PriorFill(mode="residual", fn=ts.prior_fill)
    with pytest.raises(ConfigError, match=r"train\.conditional = true"):
        resolve_prior_fill("condition", ts, conditional=False)
    with pytest.raises(ConfigError, match="declares no prior fill"):
        resolve_prior_fill("condition", plugins.get_modality("points"), conditional=True)
    with pytest.raises(ConfigError, match="none, condition, residual"):
        build_dataclass(ModelConfig, {"prior_fill": "interp"}, "model", extra="options")
    assert build_dataclass(ModelConfig, {}, "model", extra="options").prior_fill == "none"  # old configs


def test_generic_fills_on_known_answers() -> None:
    x = torch.tensor([[0.0, 9.0, 4.0, 9.0, 0.0, 9.0]])
    g = torch.tensor([[0.0, 0.0, 1.0, 0.0, 1.0, 0.0]])
    xg = x * g
    assert torch.equal(linear_fill(xg, g), torch.tensor([[4.0, 4.0, 4.0, 2.0, 0.0, 0.0]]))
    assert torch.equal(locf_fill(xg, g), torch.tensor([[4.0, 4.0, 4.0, 4.0, 0.0, 0.0]]))
    assert torch.equal(mean_fill(xg, g), torch.tensor([[2.0, 2.0, 4.0, 2.0, 0.0, 2.0]]))
    assert torch.equal(linear_fill(xg.T, g.T, dim=0), linear_fill(xg, g).T)  # any axis
    plane = torch.arange(8.0).expand(8, 8).clone()[None]  # a linear ramp is harmonic: recovered inside
    mask = torch.ones_like(plane)
    mask[..., 2:6, 2:6] = 0
    assert torch.allclose(harmonic_fill(plane * mask, mask, iterations=500), plane, atol=1e-3)


def test_checkpoint_keys_do_not_change_with_a_prior_fill() -> None:
    plain, _ = _denoiser(None)
    filled, _ = _denoiser("residual")
    assert list(plain.state_dict()) == list(filled.state_dict())
    assert prior_fill_of(filled) is not None and prior_fill_of(torch.nn.Module()) is None


@pytest.mark.parametrize("mode", ["none", "condition", "residual"])
def test_tiny_timeseries_run_trains_and_imputes_in_every_mode(mode: str) -> None:
    pytest.importorskip("statsmodels")
    from polydiff_timeseries import CSDIBackbone, synthetic_sines
    from polydiff_timeseries.masks import random_fixed

    ds = synthetic_sines(n=16, features=2, length=12, missing=0.1)
    net = CSDIBackbone(2, channels=16, layers=1, heads=2, time_dim=16, feature_dim=4, emb_dim=16)
    d = Denoiser(net, Parameterization(kind="edm", sigma_data=1.0))
    attach_prior_fill(d, resolve_prior_fill(mode, plugins.get_modality("timeseries"), conditional=True))
    cfg = TrainConfig(steps=4, batch_size=8, conditional=True, mask_strategy="random_fixed", device="cpu",
                      warmup_steps=0, log_every=2, checkpoint_every=100)
    out = Trainer(denoiser=d, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                  weighting=Weighting(kind="edm"), config=cfg).fit(progress=False)
    assert np.isfinite(out["loss"])
    batch = ds.get_batch(torch.arange(4))
    target = random_fixed(batch.observed, torch.Generator().manual_seed(0), ratio=0.5)
    with torch.no_grad():
        imp = impute(d.eval(), batch, target, n_samples=2, sampler="euler", steps=4, conditional_model=True)
    keep = imp.given.bool()[:, None].expand_as(imp.samples)
    assert torch.equal(imp.samples[keep], imp.truth[:, None].expand_as(imp.samples)[keep])
    assert torch.isfinite(imp.samples).all() and np.isfinite(mae(imp, ds))
