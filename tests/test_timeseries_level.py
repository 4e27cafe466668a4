"""Level-invariant conditioning of the ``csdi`` backbone (``centre_condition``): with ``model.prior_fill =
"residual"`` a constant shift per feature of a whole window (given and hidden values) shifts every imputed
sample by exactly that constant; the centre is computed from given entries only; bad options raise."""

from __future__ import annotations

import pytest
import torch

from polydiff import EDM, Denoiser, Parameterization, plugins
from polydiff.diffusion.imputation import impute
from polydiff.diffusion.prior_fill import attach_prior_fill, resolve_prior_fill
from polydiff.diffusion.state import Batch
from polydiff.exceptions import ConfigError
from polydiff.options import check_options
from polydiff_timeseries import CSDIBackbone
from polydiff_timeseries.backbone import given_level

SIZE = {"channels": 8, "layers": 2, "heads": 2, "time_dim": 8, "feature_dim": 4, "emb_dim": 16}
K, L = 3, 12


def _denoiser(centre: bool, mode: str = "residual") -> Denoiser:
    torch.manual_seed(0)
    net = CSDIBackbone(K, **SIZE, centre_condition=centre)
    with torch.no_grad():  # the output layer starts at 0 (F = 0 is trivially invariant): make it non-zero
        for p in net.head.parameters():
            p.normal_(0.0, 0.5)
    denoiser = Denoiser(net, Parameterization(kind="edm", sigma_data=0.5))
    attach_prior_fill(denoiser, resolve_prior_fill(mode, plugins.get_modality("timeseries"), conditional=True))
    return denoiser.eval()


def _batch() -> tuple[Batch, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(4, K, L, generator=g).cumsum(-1)
    target = (torch.rand(4, K, L, generator=g) < 0.4).float()
    target[:, :, 0] = 0.0  # every feature of every window keeps a given value
    target[0, :, -4:] = 1.0  # one window is a forecast
    return Batch(x=x, observed=torch.ones_like(x)), target


def _samples(denoiser: Denoiser, batch: Batch, target: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        imp = impute(denoiser, batch, target, n_samples=3, seed=7, sampler="dpmpp_2m", schedule=EDM(), steps=6,
                     conditional_model=True)
    return imp.samples


def test_constant_shift_per_feature_shifts_every_sample_by_it() -> None:
    batch, target = _batch()
    shift = torch.tensor([3.0, -2.5, 40.0])[None, :, None] * torch.tensor(
        [1.0, -1.0, 0.5, 2.0])[:, None, None]  # per window and feature
    moved = Batch(x=batch.x + shift, observed=batch.observed)
    denoiser = _denoiser(centre=True)
    base, out = _samples(denoiser, batch, target), _samples(denoiser, moved, target)
    assert (out - base - shift[:, None]).abs().max() < 1e-4  # float32 rounding of values up to ~80
    # without the centring the network sees the level, and the same shift changes the samples' shape
    plain = _denoiser(centre=False)
    gap = (_samples(plain, moved, target) - _samples(plain, batch, target) - shift[:, None]).abs().max()
    assert gap > 1e-3


def test_hidden_values_never_reach_the_centre_or_the_samples() -> None:
    batch, target = _batch()
    given = 1.0 - target
    x_cond = batch.x * given
    scrambled = torch.where(target > 0, torch.full_like(batch.x, float("nan")), batch.x)
    assert torch.equal(given_level(batch.x, given), given_level(scrambled, given))
    expected = (x_cond.sum(-1) / given.sum(-1))[..., None]
    assert torch.allclose(given_level(x_cond, given), expected)
    # end to end: other hidden values give the same samples (training masks never reveal them either)
    other = Batch(x=torch.where(target > 0, batch.x + 1e3, batch.x), observed=batch.observed)
    denoiser = _denoiser(centre=True)
    assert torch.equal(_samples(denoiser, batch, target), _samples(denoiser, other, target))


def test_feature_with_nothing_given_has_level_zero() -> None:
    x = torch.arange(12.0).reshape(1, 2, 6)
    mask = torch.zeros_like(x)
    mask[0, 0, 2] = 1.0
    assert given_level(x, mask).flatten().tolist() == [2.0, 0.0]


@pytest.mark.parametrize("bad", ["yes", 1, None])
def test_centre_condition_must_be_a_bool(bad: object) -> None:
    with pytest.raises(ValueError, match="centre_condition must be true or false"):
        CSDIBackbone(2, **SIZE, centre_condition=bad)  # type: ignore[arg-type]


def test_backbone_spec_exposes_the_option() -> None:
    spec = plugins.get_backbone("csdi")
    assert spec.options["centre_condition"] is False
    ds_like = type("D", (), {"sample_shape": (K, L)})()
    options = {**SIZE, "centre_condition": True}
    assert spec.build(ds_like, **options).centre_condition is True


def test_config_option_is_checked_as_a_bool() -> None:
    spec = plugins.get_backbone("csdi")
    assert check_options({"centre_condition": "true"}, spec.options, "model", "csdi")["centre_condition"] is True
    with pytest.raises(ConfigError, match="centre_condition"):
        check_options({"centre_condition": "sometimes"}, spec.options, "model", "csdi")
    with pytest.raises(ConfigError, match="centre_condition"):
        check_options({"center_condition": True}, spec.options, "model", "csdi")  # did you mean
