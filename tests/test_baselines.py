"""Every result beside its baselines: the same metrics, the same items, the same target mask."""

import dataclasses
import json

import pytest
import torch

from polydiff import plugins
from polydiff.app.cli import main
from polydiff.diffusion.data import ArrayDataset
from polydiff.diffusion.imputation import Imputation
from polydiff.diffusion.state import Batch, Field, StateSpec
from polydiff.evaluation.baselines import (
    BaselineContext,
    Scoreboard,
    baseline_imputation,
    gaussian_fit,
    score_imputation,
    score_samples,
)
from polydiff.evaluation.baselines import _board as board_of
from polydiff.modalities.points import load_ring
from polydiff.plugins.specs import BaselineSpec, ClassifierInfo, MetricSpec, NotApplicable

TINY = ["train.steps=30", "train.log_every=10", "train.batch_size=64", "train.checkpoint_every=30", "data.n=512",
        "model.width=32", "model.depth=1", "sample.n=200", "sample.steps=6"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert main(["train", "points", *TINY, "--out", str(out), "--quiet"]) == 0
    return out


def test_evaluate_prints_the_model_beside_its_baselines(tiny_run, capsys):
    assert main(["evaluate", str(tiny_run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("model", "exact_denoiser", "fresh_data", "gaussian_fit", "ceiling", "floor",
                  "sliced_w2 [lower]", "true_nll [lower]"):
        assert label in out, label
    saved = json.loads((tiny_run / "eval.json").read_text())
    board = Scoreboard.from_json(saved["table"])
    rows = {r.method: r.scores for r in board.rows}
    # the same numbers in the JSON; fresh data beats a 30-step model on the true NLL
    assert rows["model"]["sliced_w2"] == pytest.approx(saved["sliced_w2"])
    assert rows["fresh_data"]["true_nll"] < rows["model"]["true_nll"]
    assert rows["fresh_data"]["sliced_w2"] < rows["gaussian_fit"]["sliced_w2"]


def test_impute_prints_its_baselines(tiny_run, capsys):
    assert main(["impute", str(tiny_run), "--n", "16", "--n-samples", "2", "--steps", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mean_fill" in out and "mae [lower]" in out and "crps [lower]" in out
    saved = json.loads((tiny_run / "eval-imputation.json").read_text())
    assert [r["method"] for r in saved["table"]["rows"]] == ["model", "mean_fill"]


def _imputation(n=6, dim=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(n, dim, generator=g)
    target = (torch.rand(n, dim, generator=g) < 0.5).float()
    target[:, 0] = 1
    samples = truth[:, None].repeat(1, 3, 1) + 0.1 * torch.randn(n, 3, dim, generator=g)
    return Imputation(samples=samples, truth=truth, given=1 - target, target=target)


def test_a_baseline_is_scored_on_the_models_target_mask_and_never_sees_it():
    imp = _imputation()
    seen = {}

    def spy(observed, ctx):
        seen["truth"] = observed.truth.clone()
        return torch.full_like(observed.truth, 7.0)

    spec = BaselineSpec(name="spy", description="", fn=spy, task="impute")
    ctx = BaselineContext(train=ArrayDataset(StateSpec((Field("x", (5,)),)), torch.zeros(4, 5)),
                          held_out=ArrayDataset(StateSpec((Field("x", (5,)),)), imp.truth), n=len(imp))
    out = baseline_imputation(spec, imp, ctx)
    assert out.target is imp.target and out.truth is imp.truth  # the SAME mask and truth tensors
    assert torch.all(seen["truth"][imp.target.bool()] == 0)  # hidden values were zeroed
    assert torch.equal(seen["truth"][~imp.target.bool()], imp.truth[~imp.target.bool()])
    pred = out.samples[:, 0]
    assert torch.all(pred[imp.target.bool()] == 7.0) and torch.equal(pred[~imp.target.bool()],
                                                                       imp.truth[~imp.target.bool()])


def test_points_imputation_board_scores_the_mean_fill_on_the_same_targets():
    ring = load_ring(n=256, seed=0)
    imp = _imputation(n=8, dim=2)
    board = score_imputation(imp, BaselineContext(train=ring, held_out=ring, n=8), **plugins.scoring("points"))
    rows = {r.method: r for r in board.rows}
    model_mae, mean_mae = rows["model"].scores["mae"], rows["mean_fill"].scores["mae"]
    # the near-perfect 'model' (truth + small noise) beats filling with the mean
    assert model_mae is not None and mean_mae is not None and model_mae < 0.2 < mean_mae


def test_metrics_and_baselines_that_do_not_apply_are_skipped_with_a_note():
    data = ArrayDataset(StateSpec((Field("x", (2,)),)), torch.randn(64, 2))  # points without a known mixture
    board = score_samples(Batch(x=torch.randn(32, 2)), BaselineContext(train=data, held_out=data, n=32),
                          **plugins.scoring("points"))
    rows = {r.method: r for r in board.rows}
    assert rows["model"].scores["true_nll"] is None and "known mixture" in board.notes["true_nll"]
    assert rows["exact_denoiser"].note.startswith("skipped") and rows["fresh_data"].note.startswith("skipped")
    assert rows["gaussian_fit"].scores["sliced_w2"] is not None
    assert "skipped" in board.format()


@pytest.mark.parametrize(("accuracy", "n_train", "unreliable"), [(0.95, 1000, False), (0.5, 1000, True),
                                                                 (0.99, 20, True)])
def test_classifier_metrics_print_the_classifiers_accuracy(accuracy, n_train, unreliable):
    spec = MetricSpec(name="fd", modality=None, description="", fn=lambda s, r: 1.0,
                      classifier=lambda r: ClassifierInfo(name="ref cnn", accuracy=accuracy, n_train=n_train))
    board = board_of("generate", [spec], Batch(x=torch.zeros(2, 2)), None, [])  # type: ignore[arg-type]
    assert f"accuracy {accuracy:.3f}" in board.notes["fd"]
    assert board.notes["fd"].startswith("UNRELIABLE") == unreliable


def test_rows_that_share_a_reason_are_named_together_in_one_note():
    def spread(obj, ref):  # applies to the model's two values, not to a one-value baseline
        if obj.shape[0] < 2:
            raise NotApplicable("needs 2 samples" if obj.shape[0] == 1 else "needs values")
        return float(obj.std())

    spec = MetricSpec(name="spread", modality=None, description="", fn=spread)
    fixed = {"one_a": torch.zeros(1), "one_b": torch.ones(1), "empty": torch.zeros(0)}
    baselines = [(BaselineSpec(name=k, description="", fn=lambda: None), lambda v=v: v) for k, v in fixed.items()]
    board = board_of("generate", [spec], torch.tensor([0.0, 1.0]), None, baselines)  # type: ignore[arg-type]
    assert board.notes["spread"] == "one_a, one_b skipped: needs 2 samples; empty skipped: needs values"


def test_gaussian_fit_matches_the_training_moments_and_refuses_variable_length():
    x = torch.randn(4000, 3) @ torch.tensor([[2.0, 0, 0], [0.5, 1, 0], [0, 0, 0.1]]) + 3
    data = ArrayDataset(StateSpec((Field("x", (3,)),)), x)
    s = gaussian_fit(BaselineContext(train=data, held_out=data, n=4000, seed=1)).x
    assert torch.allclose(s.mean(0), x.mean(0), atol=0.1)
    assert torch.allclose(torch.cov(s.T), torch.cov(x.T), atol=0.15)

    class Padded:
        def __len__(self):
            return 3

        def get_batch(self, idx):
            return Batch(x=torch.zeros(len(idx), 2), padding=torch.ones(len(idx), 2))

    with pytest.raises(NotApplicable, match="variable-length"):
        gaussian_fit(BaselineContext(train=Padded(), held_out=Padded(), n=2))  # type: ignore[arg-type]


def test_interval_metrics_need_19_samples():
    import torch

    from polydiff.diffusion.imputation import Imputation, coverage_90, coverage_error_90
    from polydiff.plugins.specs import NotApplicable

    x = torch.randn(3, 4)
    ones = torch.ones_like(x)
    point = Imputation(samples=x[:, None], truth=x, given=0 * ones, target=ones)
    few = Imputation(samples=torch.stack([x - 1, x + 1], 1), truth=x, given=0 * ones, target=ones)
    for metric in (coverage_90, coverage_error_90):
        with pytest.raises(NotApplicable, match="a point forecast has 1"):  # no --n-samples advice for a baseline
            metric(point, None)
        with pytest.raises(NotApplicable, match="needs at least 19 samples.*--n-samples 19"):
            metric(few, None)
    # 19 samples: the 90% interval is their range (a new draw falls beyond it with probability 2 / 20)
    spread = torch.linspace(-1, 1, 19)[None, :, None]
    nineteen = Imputation(samples=x[:, None] + spread, truth=x + 0.99, given=0 * ones, target=ones)
    assert coverage_90(nineteen, None) == 1.0
    assert coverage_90(dataclasses.replace(nineteen, truth=x + 1.01), None) == 0.0
