"""End to end through the CLI: train a conditional CSDI model on co2, forecast held-out windows, score them;
and the series metrics and baselines on cases with known answers."""

from __future__ import annotations

import json
import math
import re

import pytest
import torch

pytest.importorskip("statsmodels")
from polydiff.app.cli import main
from polydiff.app.impute_workflow import read_imputation
from polydiff.diffusion.imputation import Imputation
from polydiff_timeseries import load_co2
from polydiff_timeseries.baselines import RidgeImputer, linear_interpolation, locf, mean_fill
from polydiff_timeseries.metrics import crps_energy, crps_sum, energy_crps_values, pit_error
from polydiff_timeseries.plots import plot_imputation

TINY = ["data.dataset=co2", "data.length=26", "data.stride=26", "data.holdout=0.1", "model.channels=8",
        "model.layers=1", "model.heads=2", "model.time_dim=8", "model.feature_dim=4", "model.emb_dim=8",
        "train.steps=4", "train.batch_size=8", "train.conditional=true", "train.mask_strategy=mix",
        "train.device=cpu", "train.checkpoint_every=4", "train.warmup_steps=0"]


def test_cli_train_forecast_evaluate(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "timeseries", *TINY, "--out", str(run), "--quiet"]) == 0
    assert main(["impute", str(run), "--mask", "forecast", "--mask-option", "horizon=6", "--n-samples", "4",
                 "--n", "5", "--sampler", "ddim", "--steps", "3", "--quiet"]) == 0
    files = sorted((run / "imputations").glob("*.safetensors"))
    assert len(files) == 1 and files[0].with_suffix(".png").stat().st_size > 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--imputations", str(files[0]), "--json", "--quiet"]) == 0
    results = json.loads(capsys.readouterr().out)
    imp, _ = read_imputation(files[0])
    assert imp.samples.shape == (5, 4, 1, 26) and imp.target.sum() > 0
    known = (imp.given + imp.target)[:, 0] > 0  # [n, L]; a series ends at its last known step (co2 has gaps)
    for row_known, row_target in zip(known, imp.target[:, 0] > 0, strict=True):
        last = int(row_known.nonzero().max())
        assert torch.equal(row_target.nonzero().flatten(), row_known[last - 5:last + 1].nonzero().flatten() + last - 5)
    # scores are in ppm: the normalised median error times the training std of co2
    std = float(load_co2(length=26, stride=26).std[0])
    mae_model_units = float((imp.median() - imp.truth).abs()[imp.target.bool()].mean())
    assert math.isclose(results["mae"], mae_model_units * std, rel_tol=1e-4)
    for name in ("crps", "crps_sum", "crps_energy", "pit_error"):
        assert math.isfinite(results[name]), name
    assert results["coverage_90"] is None  # 4 samples hold no 90% interval
    # windows cut every 26 steps, the window length: a model may read a step's position as its phase, and
    # no move by a multiple of 26 keeps history, so the forecast cannot calibrate on its own windows
    forecast = ["--mask", "forecast", "--mask-option", "horizon=6", "--n-samples", "4", "--sampler", "ddim",
                "--steps", "3"]
    assert main(["impute", str(run), *forecast, "--n", "5", "--calibrate", "given"]) == 2
    assert re.search(r"windows cut every 26 steps.*--calibrate K", capsys.readouterr().err)
    # cut every 13 steps, overlapping: any step starts a window somewhere, and the windows move by the horizon
    strided = tmp_path / "strided"
    assert main(["train", "timeseries", *TINY, "data.stride=13", "--out", str(strided), "--quiet"]) == 0
    assert main(["impute", str(strided), *forecast, "--n", "5", "--calibrate", "given"]) == 0
    found = re.search(r"widened [\d.]+x around the median \(split conformal on (\d+) given entries of the scored "
                      r"items, hidden", capsys.readouterr().err)
    assert found, "no calibration line"
    assert 20 <= int(found[1]) <= 30  # 5 windows x 6 steps (co2 has gaps), drawn once: a forecast has no randomness
    # block gaps calibrate after the imputation, on copies whose real gaps show the model's own samples
    assert main(["impute", str(strided), "--mask", "block", "--n-samples", "4", "--sampler", "ddim", "--steps", "3",
                 "--n", "5", "--calibrate", "given"]) == 0
    found = re.search(r"split conformal on (\d+) given entries of the scored items, (\d+) draws, their real "
                      r"targets shown as the model's samples", capsys.readouterr().err)
    assert found and int(found[1]) > 20 and int(found[2]) > 1
    # one window: 6 targets, too few for a 90% interval, and said so
    assert main(["impute", str(strided), *forecast, "--n", "1", "--calibrate", "given"]) == 2
    assert re.search(r"--calibrate given: \d calibration targets are too few", capsys.readouterr().err)


def _imputation(samples: torch.Tensor, truth: torch.Tensor) -> Imputation:
    target = torch.ones_like(truth)
    return Imputation(samples=samples, truth=truth, given=torch.zeros_like(truth), target=target)


def test_energy_crps_matches_the_closed_form_for_a_gaussian() -> None:
    g = torch.Generator().manual_seed(0)
    truth = torch.tensor([0.0, 1.0, -2.0], dtype=torch.float64)
    samples = torch.randn(1, 4000, 3, generator=g, dtype=torch.float64)
    got = energy_crps_values(samples, truth[None])[0]
    # CRPS(N(0, 1), y) = y (2 Phi(y) - 1) + 2 phi(y) - 1 / sqrt(pi) (Gneiting & Raftery 2007)
    normal = torch.distributions.Normal(0.0, 1.0)
    exact = truth * (2 * normal.cdf(truth) - 1) + 2 * normal.log_prob(truth).exp() - 1 / math.sqrt(math.pi)
    assert torch.allclose(got, exact, atol=0.03)
    imp = _imputation(samples.reshape(1, 4000, 1, 3), truth.reshape(1, 1, 3))
    assert math.isclose(crps_energy(imp, None), float(exact.mean()), abs_tol=0.03)


def test_pit_error_separates_calibrated_from_overconfident_and_crps_sum_rewards_truth() -> None:
    g = torch.Generator().manual_seed(1)
    truth = torch.randn(40, 2, 25, generator=g, dtype=torch.float64)
    calibrated = torch.randn(40, 50, 2, 25, generator=g, dtype=torch.float64)
    narrow = 0.2 * calibrated
    assert pit_error(_imputation(calibrated, truth), None) < 0.06
    assert pit_error(_imputation(narrow, truth), None) > 0.3
    level = truth + 5  # away from 0: CRPS-sum divides by sum |y|
    near = level[:, None] + 0.05 * calibrated
    assert crps_sum(_imputation(near, level), None) < 0.2 * crps_sum(_imputation(5 + calibrated, level), None)


def test_baselines_on_known_series(tmp_path) -> None:
    x = torch.arange(10, dtype=torch.float64).reshape(1, 1, 10) * 2.0
    given = torch.tensor([[[0, 1, 0, 0, 1, 0, 0, 0, 1, 0]]], dtype=torch.float64)
    assert torch.allclose(linear_interpolation(x, given)[0, 0], torch.tensor([2., 2, 4, 6, 8, 10, 12, 14, 16, 16],
                                                                             dtype=torch.float64))
    assert torch.equal(locf(x, given)[0, 0], torch.tensor([2., 2, 2, 2, 8, 8, 8, 8, 16, 16], dtype=torch.float64))
    assert torch.allclose(mean_fill(x, given)[0, 0][given[0, 0] == 0], torch.tensor(26 / 3, dtype=torch.float64))
    samples = x[:, None] + torch.randn(1, 8, 1, 10, dtype=torch.float64)
    imp = Imputation(samples=samples, truth=x, given=given, target=1 - given)
    plot_imputation(imp, tmp_path / "imp.png")
    assert (tmp_path / "imp.png").read_bytes()[:4] == b"\x89PNG"


def test_ridge_baseline_learns_a_cross_feature_relation() -> None:
    g = torch.Generator().manual_seed(0)
    walk = torch.randn(64, 1, 30, generator=g, dtype=torch.float64).cumsum(-1)
    x = torch.cat([walk, 2 * walk + 1], dim=1)  # feature 1 is a linear function of feature 0
    ridge = RidgeImputer(l2=1e-6).fit(x[:48], torch.ones_like(x[:48]))
    given = torch.ones_like(x[48:])
    given[:, 1, 5:25] = 0  # a long gap in feature 1 only
    hidden = given == 0
    err_ridge = (ridge(x[48:], given) - x[48:]).abs()[hidden].mean()
    err_linear = (linear_interpolation(x[48:], given) - x[48:]).abs()[hidden].mean()
    assert err_ridge < 0.2 * err_linear  # training masks hide feature 0 too, so the fit is not exact
