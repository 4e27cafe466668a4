"""The CSDI backbone and mask strategies: conformance kit, NaN isolation, padding, masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("statsmodels")
from polydiff import (
    EDM,
    Batch,
    Denoiser,
    NoiseLevels,
    Parameterization,
    TrainConfig,
    Trainer,
    Weighting,
    plugins,
)
from polydiff.diffusion.imputation import impute
from polydiff.testing import check_backbone, check_modality
from polydiff_timeseries import CSDIBackbone, from_array, synthetic_sines
from polydiff_timeseries.masks import block, forecast, historical, mix, random_fixed

SMALL = {"channels": 16, "layers": 2, "heads": 2, "time_dim": 16, "feature_dim": 4, "emb_dim": 16}


def _randomised(net: CSDIBackbone, seed: int = 0) -> CSDIBackbone:
    """The output layer starts at zero (F = 0 is trivially independent of everything): give it weights."""
    g = torch.Generator().manual_seed(seed)
    last = net.head[-1]
    assert isinstance(last, torch.nn.Linear)
    with torch.no_grad():
        last.weight.copy_(torch.randn(last.weight.shape, generator=g) * 0.5)
    return net


def test_modality_conformance() -> None:
    report = check_modality("timeseries", dataset_options={"length": 26, "stride": 26})
    assert report["batch_shape"] == [4, 1, 26] and report["backbone"] == "csdi"
    names = {m.name for m in plugins.metrics("timeseries") if m.task == "impute"}
    assert {"mae", "crps", "coverage_90", "crps_sum", "crps_energy", "pit_error"} <= names
    assert {"random_fixed", "historical", "block", "mix", "forecast"} <= {m.name for m in plugins.mask_strategies()}


def test_backbone_conformance_conditional_and_padded() -> None:
    ds = synthetic_sines(n=6, features=3, length=12)
    net = _randomised(CSDIBackbone(3, **SMALL))
    batch = ds.get_batch(torch.arange(4))
    cond = {"x_cond": batch.x * batch.observed, "cond_mask": batch.observed}
    report = check_backbone(net, batch, cond=cond)
    assert report["independence"] < 1e-5
    rng = np.random.default_rng(0)  # series of different lengths: padded steps must not change real outputs
    ragged = from_array([rng.normal(size=(3, n)) for n in (12, 7, 9, 4)])
    report = check_backbone(net, ragged, cond={"x_cond": ragged.x, "cond_mask": ragged.observed_mask})
    assert report["padding"] is not None and report["padding"] < 1e-5


def test_missing_and_given_noise_never_reach_the_network() -> None:
    net = _randomised(CSDIBackbone(3, **SMALL)).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(2, 3, 10, generator=g, requires_grad=True)
    mask = (torch.rand(2, 3, 10, generator=g) < 0.5).float()
    x_cond = torch.where(mask > 0, torch.randn(2, 3, 10, generator=g), torch.full((2, 3, 10), float("nan")))
    x_cond.requires_grad_(True)
    out = net(x, torch.zeros(2), x_cond=x_cond, cond_mask=mask)
    assert torch.isfinite(out).all()  # NaN where nothing is given does not leak
    out.sum().backward()
    assert x_cond.grad is not None and x.grad is not None
    assert (x_cond.grad[mask == 0] == 0).all() and (x_cond.grad[mask > 0] != 0).any()
    assert (x.grad[mask > 0] == 0).all() and (x.grad[mask == 0] != 0).any()  # a given value's noise is ignored


def test_training_and_imputation_on_data_with_nans_stay_finite_and_keep_observed_values() -> None:
    ds = synthetic_sines(n=16, features=2, length=12, missing=0.3)
    net = CSDIBackbone(2, **SMALL)
    bad: list[str] = []

    def hook(module: torch.nn.Module, args: tuple, out: object) -> None:
        for t in [*args, out]:
            if isinstance(t, torch.Tensor) and t.is_floating_point() and not torch.isfinite(t).all():
                bad.append(type(module).__name__)

    handles = [m.register_forward_hook(hook) for m in net.modules()]
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=1.0))
    cfg = TrainConfig(steps=3, batch_size=8, conditional=True, mask_strategy="mix", device="cpu", warmup_steps=0,
                      log_every=1, checkpoint_every=100)
    out = Trainer(denoiser=denoiser, dataset=ds, schedule=EDM(), noise_levels=NoiseLevels(kind="lognormal"),
                  weighting=Weighting(kind="edm"), config=cfg).fit(progress=False)
    assert out["loss"] is not None and np.isfinite(out["loss"])
    assert all(torch.isfinite(p).all() for p in net.parameters())
    batch = ds.get_batch(torch.arange(4))
    target = random_fixed(batch.observed, torch.Generator().manual_seed(0), ratio=0.5)
    with torch.no_grad():
        imp = impute(denoiser.eval(), batch, target, n_samples=3, sampler="ddim", steps=4, conditional_model=True)
    for h in handles:
        h.remove()
    assert not bad, f"non-finite activations in {sorted(set(bad))}"
    given = imp.given.bool()[:, None].expand_as(imp.samples)
    assert torch.equal(imp.samples[given], imp.truth[:, None].expand_as(imp.samples)[given])  # exactly, not close
    assert (imp.samples[~given] != 0).all() and imp.samples.shape == (4, 3, 2, 12)


def _observed(seed: int = 0, shape: tuple[int, int, int] = (6, 4, 30)) -> torch.Tensor:
    return (torch.rand(shape, generator=torch.Generator().manual_seed(seed)) < 0.8).float()


@pytest.mark.parametrize("fn", [random_fixed, historical, block, mix, forecast])
def test_mask_strategies_are_subsets_of_observed_and_reproducible(fn) -> None:
    obs = _observed()
    a = fn(obs, torch.Generator().manual_seed(3))
    b = fn(obs, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == obs.shape
    assert (a <= obs).all() and a.sum() > 0
    assert not torch.equal(a, obs)  # something stays given


def test_mask_strategy_shapes_of_targets() -> None:
    obs = _observed()
    fixed = random_fixed(obs, torch.Generator().manual_seed(0), ratio=0.25)
    assert torch.equal(fixed.sum(dim=(1, 2)), torch.round(0.25 * obs.sum(dim=(1, 2))))
    fc = forecast(obs, torch.Generator(), horizon=5)
    assert torch.equal(fc[..., -5:], obs[..., -5:]) and fc[..., :-5].sum() == 0
    gaps = block(torch.ones(6, 4, 30), torch.Generator().manual_seed(0), max_fraction=0.3)
    for row in gaps.reshape(-1, 30):  # one contiguous run per feature, at most 30% long
        idx = row.nonzero().flatten()
        if len(idx):
            assert idx[-1] - idx[0] + 1 == len(idx) <= 9
    hist = historical(obs, torch.Generator().manual_seed(0))
    # the borrowed pattern is another series' missing entries: targets are never a whole series
    assert (hist.sum(dim=(1, 2)) < obs.sum(dim=(1, 2))).all()
    with pytest.raises(ValueError, match="horizon 30 leaves no history"):
        forecast(obs, torch.Generator(), horizon=30)
    with pytest.raises(ValueError, match=r"\[B, K, L\]"):
        random_fixed(torch.ones(4, 5), torch.Generator())
    spec = plugins.get_mask_strategy("random_fixed")
    with pytest.raises(ValueError, match="unknown key mask_options"):
        spec.bind({"horizon": 3})
    assert Batch(x=obs).x.shape == obs.shape
