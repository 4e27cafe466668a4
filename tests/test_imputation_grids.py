"""Optimised sigma grids for imputation (polydiff.diffusion.imputation.imputation_grid and
`polydiff impute --grid optimized`): fitted on calibration items with their given entries, as impute
conditions them, and better than Karras on held-out items, for replacement and for a residual model."""

import json
import math

import pytest
import torch
from safetensors import safe_open

from polydiff.app.cli import main
from polydiff.diffusion.gmm import GaussianMixture, random_mixture
from polydiff.diffusion.imputation import imputation_grid, impute
from polydiff.diffusion.masking import random_ratio
from polydiff.diffusion.prior_fill import PriorFill, attach_prior_fill, linear_fill
from polydiff.diffusion.schedules import EDM, sigma_grid
from polydiff.diffusion.state import Batch

MIX = random_mixture(dim=8, n_modes=4, seed=3)


def _items(n: int, seed: int) -> tuple[Batch, torch.Tensor]:
    x = MIX.sample(n, torch.Generator().manual_seed(seed))[0].float()
    observed = torch.ones_like(x)
    return Batch(x=x), random_ratio(observed, torch.Generator().manual_seed(seed + 1))


def _conditional_mean(mix: GaussianMixture, x: torch.Tensor, sigma: torch.Tensor, given: torch.Tensor,
                      x_given: torch.Tensor) -> torch.Tensor:
    """E[x0 | x_t on hidden entries, x0 on given entries] for a diagonal mixture: components reweighted by
    the given entries' likelihood and the noisy hidden entries' (noise sigma), then the usual shrinkage."""
    s2 = sigma.double().reshape(-1, 1, 1) ** 2
    mu, var = mix.means[None], mix.variances[None]  # [1, K, D]
    g, h = given.double()[:, None], 1 - given.double()[:, None]
    xg, xt = x_given.double()[:, None], x.double()[:, None]
    ll = -0.5 * (g * ((xg - mu) ** 2 / var + var.log()) + h * ((xt - mu) ** 2 / (var + s2) + (var + s2).log()))
    r = torch.softmax(mix.weights.log()[None] + ll.sum(-1), dim=1)[..., None]  # [B, K, 1]
    mean = (r * (mu + var / (var + s2) * (xt - mu))).sum(1)
    return torch.where(given.bool(), x_given.double(), mean).to(x.dtype)


class ResidualNet(torch.nn.Module):
    """A conditional 'network' that diffuses x - fill exactly (the mixture's conditional mean, shifted)."""

    def forward(self, y, sigma, *, x_cond, cond_mask, **_):
        return _conditional_mean(MIX, y + x_cond, sigma, cond_mask, x_cond) - x_cond


def _error(denoiser, sigmas, batch, target, reference, conditional):
    imp = impute(denoiser, batch, target, n_samples=1, seed=11, sampler="dpmpp_2m", sigmas=sigmas,
                 conditional_model=conditional)
    hidden = imp.target.bool()
    return float((imp.samples[:, 0] - reference)[hidden].pow(2).mean().sqrt())


@pytest.mark.parametrize("conditional", [False, True])
def test_imputation_grid_beats_karras_on_held_out_items(conditional: bool) -> None:
    if conditional:
        denoiser = attach_prior_fill(ResidualNet(), PriorFill(mode="residual", fn=linear_fill))
    else:
        denoiser = MIX.denoise  # an unconditional model: replacement conditioning
    calib, calib_target = _items(96, 1)
    found = imputation_grid(denoiser, calib, calib_target, steps=5, sampler="dpmpp_2m", conditional_model=conditional,
                            seed=3, dp_items=48, rounds=3, candidates=24, reference_steps=128)
    assert found.error <= found.baselines["karras"] and bool((found.sigmas[1:] < found.sigmas[:-1]).all())
    batch, target = _items(400, 7)  # held out: other items, masks and noise
    lo, hi = EDM().sigma_min, EDM().sigma_max
    fine = torch.cat([torch.exp(torch.linspace(math.log(hi), math.log(lo), 400)), torch.zeros(1)])
    reference = impute(denoiser, batch, target, n_samples=1, seed=11, sampler="heun", sigmas=fine,
                       conditional_model=conditional).samples[:, 0]
    karras = _error(denoiser, sigma_grid(EDM(), 5), batch, target, reference, conditional)
    optimized = _error(denoiser, found.sigmas, batch, target, reference, conditional)
    assert optimized < 0.8 * karras, (optimized, karras)


def test_conditioning_rows_follow_the_items_the_search_uses() -> None:
    seen: list[tuple[int, int]] = []

    def labelled(x, sigma, *, label, x_cond, cond_mask, **_):
        seen.append((len(x), len(label)))
        assert len(label) == len(x) == len(x_cond) == len(cond_mask)
        return x_cond * cond_mask + x / (1 + sigma.reshape(-1, 1) ** 2)

    batch, target = _items(16, 2)
    batch = Batch(x=batch.x, cond={"label": torch.arange(16)})
    imputation_grid(labelled, batch, target, steps=3, sampler="heun", conditional_model=True, dp_items=8,
                    rounds=1, candidates=8, reference_steps=16)
    assert {rows for rows, _ in seen} == {8, 16}  # the grid search's subset and all calibration items


def test_cli_impute_fits_saves_and_reuses_an_imputation_grid(tmp_path, capsys) -> None:
    run = tmp_path / "cond"
    tiny = ["train.steps=20", "train.batch_size=64", "train.checkpoint_every=20", "data.n=512", "data.dataset=mixture",
            "data.dim=4", "model.width=16", "model.depth=1", "model.conditional=true", "train.conditional=true"]
    assert main(["train", "points", *tiny, "--out", str(run), "--quiet"]) == 0
    args = ["impute", str(run), "--n", "16", "--n-samples", "2", "--sampler", "dpmpp_2m", "--steps", "4",
            "--grid", "optimized", "--quiet"]
    assert main(args) == 0
    saved = run / "grids" / "impute-random_ratio-dpmpp_2m-4.json"
    record = json.loads(saved.read_text())
    assert record["task"] == "impute" and record["calibration_items"] > 0 and record["checkpoint"]
    assert len(record["sigmas"]) == 5 and record["error"] <= record["baselines"]["karras"]
    record["sigmas"] = [80.0, 5.0, 1.0, 0.1, 0.0]  # reused, not refitted: the edited grid is what is drawn with
    saved.write_text(json.dumps(record))
    capsys.readouterr()
    assert main(args) == 0
    assert "mean_fill" in capsys.readouterr().out  # the baselines beside the model, as without the grid
    (imputation,) = (run / "imputations").glob("random_ratio-dpmpp_2m-optimized-4steps-*.safetensors")
    with safe_open(str(imputation), "pt") as f:
        meta = f.metadata()
    assert meta["grid"] == "optimized" and json.loads(meta["sigmas"]) == pytest.approx(record["sigmas"])
