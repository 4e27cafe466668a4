"""``model.scale_noise``: a run's EDM sigma range and lognormal training levels follow its sigma_data
(EDM tuned them for data of spread 0.5), in training and in every command that samples the run."""

import math

import pytest

from polydiff.app.cli import main
from polydiff.app.runs import Run, build_schedule, resolve_config, training_levels

TINY = ["data.dataset=sines", "data.n=32", "data.length=12", "model.channels=8", "model.layers=1", "model.heads=2",
        "model.time_dim=8", "model.feature_dim=4", "model.emb_dim=8", "train.steps=4", "train.batch_size=8",
        "train.conditional=true", "train.checkpoint_every=4", "train.warmup_steps=0", "noise_levels.kind=lognormal",
        "sample.steps=3"]


def test_a_residual_run_trains_and_samples_at_levels_scaled_to_its_sigma_data(tmp_path, capsys, monkeypatch):
    import polydiff.app.impute_workflow as impute_workflow
    import polydiff.app.workflows as workflows

    seen: dict[str, object] = {}
    trainer, impute = workflows.Trainer, impute_workflow.impute

    def spy_trainer(**kw):
        seen.update(train_schedule=kw["schedule"], levels=kw["noise_levels"])
        return trainer(**kw)

    def spy_impute(*a, **kw):
        seen["impute_schedule"] = kw["schedule"]
        return impute(*a, **kw)

    monkeypatch.setattr(workflows, "Trainer", spy_trainer)
    monkeypatch.setattr(impute_workflow, "impute", spy_impute)
    out = tmp_path / "scaled"
    assert main(["train", "timeseries", *TINY, "model.prior_fill=residual", "model.scale_noise=true",
                 "--out", str(out), "--quiet"]) == 0
    config = Run.open(out).config
    k = config.model.sigma_data / 0.5
    assert k > 0 and abs(k - 1) > 0.01  # sigma_data of x - fill, recorded in the run
    schedule = build_schedule(config)
    assert schedule.sigma_hi == pytest.approx(80.0 * k) and schedule.sigma_lo == pytest.approx(0.002 * k)
    assert training_levels(config).p_mean == pytest.approx(-1.2 + math.log(k))
    assert main(["impute", str(out), "--n", "4", "--n-samples", "2", "--quiet"]) == 0
    # what training and imputation were actually given, not only what the helpers return
    assert seen["train_schedule"] == schedule == seen["impute_schedule"]
    assert seen["levels"].p_mean == pytest.approx(-1.2 + math.log(k))  # type: ignore[attr-defined]
    plain = resolve_config({"modality": "timeseries"})
    assert build_schedule(plain).sigma_hi == 80.0 and training_levels(plain).p_mean == -1.2  # off by default


def test_scale_noise_needs_a_sigma_range_and_one_sigma_data(tmp_path, capsys):
    assert main(["train", "timeseries", *TINY, "model.scale_noise=true", "schedule.name=vp_cosine",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 2
    assert "schedule 'vp_cosine' has none" in capsys.readouterr().err
    assert main(["train", "timeseries", *TINY, "model.scale_noise=true", "model.sigma_data=per_field",
                 "--out", str(tmp_path / "b"), "--quiet"]) == 2
    assert "model.scale_noise needs one sigma_data" in capsys.readouterr().err


def test_scaled_to_data_is_the_one_rule_for_runs_benchmarks_and_the_imputer():
    from polydiff.diffusion import EDM, NoiseLevels, VPCosine, scaled_to_data

    schedule, levels = scaled_to_data(EDM(), NoiseLevels(kind="lognormal", p_mean=-2.6), 0.1)
    assert (schedule.sigma_lo, schedule.sigma_hi) == pytest.approx((0.0004, 16.0))
    assert levels.p_mean == pytest.approx(-2.6 + math.log(0.2))
    assert scaled_to_data(EDM(), NoiseLevels(kind="uniform_t"), 0.1)[1] == NoiseLevels(kind="uniform_t")
    with pytest.raises(ValueError, match="sigma_lo and sigma_hi"):
        scaled_to_data(VPCosine(), NoiseLevels(), 0.1)
