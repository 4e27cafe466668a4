"""Imputation: S samples per item, observed entries exact, metrics that match closed forms on a Gaussian,
and `polydiff impute` -> `polydiff evaluate --imputations` end to end."""

import json
import math

import pytest
import torch

from polydiff import Batch, Imputation, MaskStrategySpec, impute
from polydiff.app.cli import main
from polydiff.diffusion.gmm import GaussianMixture
from polydiff.diffusion.imputation import coverage_90, crps, mae, quantile_crps, rmse

STD = torch.tensor([0.5, 1.0, 2.0, 0.25], dtype=torch.float64)
GAUSS = GaussianMixture(torch.ones(1, dtype=torch.float64), torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64),
                        (STD**2)[None])


class _NoUnits:  # a reference dataset without denormalize(): metrics stay in model units
    pass


def _gaussian_imputation(n=300, s=200):
    x, _ = GAUSS.sample(n, torch.Generator().manual_seed(0))
    target = torch.zeros(n, 4)
    target[:, 1:] = 1  # hide three of four independent coordinates
    batch = Batch(x=x.float())
    return impute(GAUSS.denoise, batch, target, n_samples=s, seed=1, sampler="heun", steps=24), x.float()


@pytest.fixture(scope="module")
def gaussian():
    return _gaussian_imputation()


def test_given_entries_are_exact_and_all_samples_are_kept(gaussian):
    imp, x = gaussian
    assert imp.samples.shape == (300, 200, 4) and imp.n_samples == 200 and len(imp) == 300
    assert torch.equal(imp.samples[:, :, 0], x[:, None, 0].expand(300, 200))
    assert torch.equal(imp.given + imp.target, torch.ones_like(x))
    # hidden coordinates are real draws, not copies of one value
    assert float(imp.samples[:, :, 1].std(dim=1).mean()) > 0.5


def test_metrics_match_the_gaussian_closed_forms(gaussian):
    imp, _ = gaussian
    ref = _NoUnits()
    # independent coordinates: the exact posterior is the prior, so the 90% interval covers 90%
    assert abs(coverage_90(imp, ref) - 0.9) < 0.03  # type: ignore[arg-type]
    # E|x - mu| = std * sqrt(2 / pi), averaged over the hidden coordinates
    want_mae = float(STD[1:].mean()) * math.sqrt(2 / math.pi)
    assert abs(mae(imp, ref) - want_mae) / want_mae < 0.08  # type: ignore[arg-type]
    want_rmse = float((STD[1:] ** 2).mean().sqrt())
    assert abs(rmse(imp, ref) - want_rmse) / want_rmse < 0.08  # type: ignore[arg-type]
    assert 0 < crps(imp, ref) < 1  # type: ignore[arg-type]


def test_quantile_crps_of_a_point_mass_is_the_normalised_abs_error():
    truth = torch.tensor([1.0, -3.0, 2.0])
    pred = torch.tensor([1.5, -1.0, 2.0])
    q = pred.expand(19, 3)  # every quantile at the prediction: CRPS reduces to |error|
    assert quantile_crps(q, truth) == pytest.approx(float((truth - pred).abs().sum() / truth.abs().sum()), rel=1e-6)


def test_data_units_come_from_the_datasets_denormalize(gaussian):
    imp, _ = gaussian

    class Scaled:
        def denormalize(self, x):
            return 10 * x + 3

    assert mae(imp, Scaled()) == pytest.approx(10 * mae(imp, _NoUnits()), rel=1e-5)  # type: ignore[arg-type]


def test_round_trip_through_tensors(gaussian):
    imp, _ = gaussian
    back = Imputation.from_tensors(imp.to_tensors(), nfe=imp.nfe)
    assert torch.equal(back.samples, imp.samples) and back.nfe == imp.nfe
    with pytest.raises(ValueError, match="not an imputation file"):
        Imputation.from_tensors({"x": imp.truth})


def test_bad_inputs_are_named():
    batch = Batch(x=torch.zeros(2, 3))
    with pytest.raises(ValueError, match="target mask has shape"):
        impute(GAUSS.denoise, batch, torch.zeros(2, 4), n_samples=2)
    with pytest.raises(ValueError, match="n_samples"):
        impute(GAUSS.denoise, batch, torch.zeros(2, 3), n_samples=0)


def test_mask_strategy_options_are_checked():
    spec = MaskStrategySpec(name="first", description="first k entries",
                            fn=lambda obs, gen, k=1: torch.cat([obs[:, :k], 0 * obs[:, k:]], 1), options={"k": 1})
    assert spec.bind({"k": 2})(torch.ones(1, 4), None).tolist() == [[1, 1, 0, 0]]
    with pytest.raises(ValueError, match="unknown key mask_options.kk"):
        spec.bind({"kk": 2})


def test_cli_impute_then_evaluate(tmp_path, capsys):
    out = tmp_path / "cond"
    tiny = ["train.steps=30", "train.batch_size=64", "train.checkpoint_every=30", "data.n=512", "data.dataset=mixture",
            "data.dim=4", "model.width=32", "model.depth=1", "model.conditional=true", "train.conditional=true",
            "sample.steps=4"]
    assert main(["train", "points", *tiny, "--out", str(out), "--quiet"]) == 0
    assert f"next: polydiff impute {out}" in capsys.readouterr().out  # not `sample`, which refuses it
    assert main(["sample", str(out), "--quiet"]) == 2
    assert "polydiff impute" in capsys.readouterr().err
    assert main(["impute", str(out), "--n", "16", "--n-samples", "5", "--quiet"]) == 0
    printed = capsys.readouterr().out
    path = next(line.split(": ", 1)[1] for line in printed.splitlines() if line.startswith("imputations:"))
    assert main(["evaluate", str(out), "--imputations", path, "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 16 and res["n_samples"] == 5 and res["targets"] > 0 and res["nfe"] == 7  # heun, 4 steps
    assert res["mae"] > 0 and res["rmse"] >= res["mae"] * 0.5
    assert res["coverage_90"] is None  # 5 samples hold no 90% interval (19 do); evaluate says so
    assert main(["impute", str(out), "--mask-option", "ratio=0.5", "--quiet"]) == 2
    assert "unknown key --mask-option.ratio" in capsys.readouterr().err


def _tiny_conditional_run(out, n, holdout):
    """A conditional 4-D mixture model trained for 30 steps, ``n`` points, ``holdout`` of them held out."""
    tiny = ["train.steps=30", "train.batch_size=64", "train.checkpoint_every=30", f"data.n={n}",
            "data.dataset=mixture", "data.dim=4", "model.width=32", "model.depth=1", "model.conditional=true",
            "train.conditional=true", "sample.steps=4", f"data.holdout={holdout}"]
    assert main(["train", "points", *tiny, "--out", str(out), "--quiet"]) == 0
    return out


def test_cli_impute_calibrate_widens_around_the_same_median(tmp_path, capsys):
    from polydiff.app.impute_workflow import read_imputation

    out = _tiny_conditional_run(tmp_path / "cal", n=512, holdout=0.1)
    capsys.readouterr()
    files = {}
    for extra in ([], ["--calibrate", "30"]):
        assert main(["impute", str(out), "--n", "16", "--n-samples", "9", "--quiet", *extra]) == 0
        captured = capsys.readouterr()
        files[bool(extra)] = next(line.split(": ", 1)[1] for line in captured.out.splitlines()
                                  if line.startswith("imputations:"))
    assert "90% intervals widened" in captured.err and "30 held-out item(s) not scored" in captured.err
    raw, _ = read_imputation(files[False])
    cal, meta = read_imputation(files[True])
    scale = float(meta["interval_scale"])
    assert meta["calibration_items"] == "30" and scale > 0 and files[True] != files[False]
    assert torch.allclose(cal.median(), raw.median(), atol=1e-5)  # same items, mask and noise: only wider
    assert torch.allclose(cal.samples - cal.median()[:, None], scale * (raw.samples - raw.median()[:, None]),
                          atol=1e-4)
    assert main(["evaluate", str(out), "--imputations", files[True], "--json", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out)
    assert scores["interval_scale"] == pytest.approx(scale) and scores["calibration_items"] == 30
    assert main(["impute", str(out), "--calibrate", "51", "--quiet"]) == 2
    assert "leaves none of the 51 held-out item(s)" in capsys.readouterr().err
    # no item held back: the 16 scored items' own given entries, hidden again, fit the factor
    assert main(["impute", str(out), "--n", "16", "--n-samples", "9", "--quiet", "--calibrate", "given"]) == 0
    captured = capsys.readouterr()
    own_file = next(line.split(": ", 1)[1] for line in captured.out.splitlines() if line.startswith("imputations:"))
    assert "given entries of the scored items" in captured.err and own_file.endswith("-calgiven.safetensors")
    own, meta = read_imputation(own_file)
    assert meta["calibration_items"] == "given" and float(meta["interval_scale"]) > 0
    assert torch.allclose(own.median(), raw.median(), atol=1e-5)  # the same 16 items, mask and noise
    assert main(["evaluate", str(out), "--imputations", own_file, "--json", "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["calibration_items"] == "given"
    assert main(["impute", str(out), "--calibrate", "some", "--quiet"]) == 2
    assert "--calibrate must be a number of held-out items >= 0 or 'given'" in capsys.readouterr().err


def test_cli_impute_sigma_max_gives_one_step_point_estimates(tmp_path, capsys):
    from polydiff.app.impute_workflow import read_imputation

    out = _tiny_conditional_run(tmp_path / "point", n=256, holdout=0.2)
    capsys.readouterr()
    one_step = ["--n", "16", "--n-samples", "5", "--quiet", "--sampler", "euler", "--steps", "1"]
    assert main(["impute", str(out), *one_step, "--sigma-max", "2"]) == 0
    captured = capsys.readouterr()
    path = next(line.split(": ", 1)[1] for line in captured.out.splitlines() if line.startswith("imputations:"))
    assert "sampling from sigma 2 (" in captured.err and "the model's sigma_data) instead of" in captured.err
    imp, meta = read_imputation(path)
    assert path.endswith("-smax2.safetensors") and meta["sigma_max"] == "2" and meta["sigma_max_given"] == "2"
    assert json.loads(meta["sigmas"]) == [2.0, 0.0] and imp.nfe == 1  # the grid starts at the level asked for
    assert main(["impute", str(out), *one_step]) == 0  # from the schedule's sigma_max (80): another estimate
    default = next(line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines()
                   if line.startswith("imputations:"))
    hidden = imp.target.bool()
    assert not torch.allclose(read_imputation(default)[0].median()[hidden], imp.median()[hidden])
    assert main(["impute", str(out), *one_step, "--sigma-max", "0.001"]) == 2
    assert "--sigma-max must be above the schedule's smallest level 0.002" in capsys.readouterr().err
    assert main(["impute", str(out), *one_step, "--sigma-max", "2", "--grid", "optimized"]) == 2
    assert "--sigma-max and --grid optimized" in capsys.readouterr().err
    assert main(["impute", str(out), *one_step, "--sigma-max", "3x"]) == 0  # 3 times the model's sigma_data
    captured = capsys.readouterr()
    assert "(3 x " in captured.err
    sigma_data = float(captured.err.split("(3 x ", 1)[1].split(",", 1)[0])
    path = next(line.split(": ", 1)[1] for line in captured.out.splitlines() if line.startswith("imputations:"))
    meta = read_imputation(path)[1]
    assert float(meta["sigma_max"]) == pytest.approx(3 * sigma_data, rel=0.01) and meta["sigma_max_given"] == "3x"
    assert json.loads(meta["sigmas"])[0] == pytest.approx(float(meta["sigma_max"]), rel=1e-5)
    assert main(["impute", str(out), *one_step, "--sigma-max", "lots"]) == 2
    assert "--sigma-max takes a noise level or a multiple" in capsys.readouterr().err


@pytest.mark.parametrize("s", [19, 32, 100])
def test_the_90_interval_holds_90_percent_of_new_draws_at_any_sample_count(s):
    """A perfectly calibrated model (truth drawn like the samples) scores about 0.90 at every S (exactly when
    (S + 1) / 20 is whole; interpolating between ranks gives 0.91 at S = 32); the plain 5%-95% sample
    quantiles hold 0.9 (S - 1) / (S + 1): 0.85 at S = 32."""
    g = torch.Generator().manual_seed(s)
    draws = torch.randn(20000, s + 1, 2, generator=g)
    ones = torch.ones(20000, 2)
    imp = Imputation(samples=draws[:, :s], truth=draws[:, s], given=0 * ones, target=ones)
    assert coverage_90(imp, _NoUnits()) == pytest.approx(0.9, abs=0.013)  # type: ignore[arg-type]
    lo, hi = imp.quantile(torch.tensor([0.05, 0.95]))
    plain = float(((imp.truth >= lo) & (imp.truth <= hi)).float().mean())
    assert plain == pytest.approx(0.9 * (s - 1) / (s + 1), abs=0.008)
