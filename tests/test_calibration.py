"""Split-conformal widening of imputation intervals: on Gaussian data with a known spread error the
fitted factor is the ratio of spreads, widened intervals hold 90% of fresh targets, the median (MAE)
and the given entries do not move, and too little calibration data is a clear error."""

import dataclasses

import pytest
import torch

from polydiff import Batch, impute
from polydiff.diffusion.calibration import (
    calibration_draws,
    conformal_scale,
    given_calibration,
    given_only,
    widen,
)
from polydiff.diffusion.gmm import GaussianMixture
from polydiff.diffusion.imputation import Imputation, coverage_90, interval, mae


class _NoUnits:  # a reference dataset without denormalize(): metrics stay in model units
    pass


def _imputation(spread: float, *, n: int = 400, s: int = 64, seed: int = 0) -> Imputation:
    """n items of 3 entries; entry 0 given, entries 1-2 hidden. Truth ~ N(0, 1), samples ~ N(0, spread^2):
    the model's interval is ``spread`` times the right width."""
    g = torch.Generator().manual_seed(seed)
    truth = torch.randn(n, 3, generator=g)
    samples = spread * torch.randn(n, s, 3, generator=g)
    given = torch.zeros(n, 3)
    given[:, 0] = 1
    samples[:, :, 0] = truth[:, None, 0]
    return Imputation(samples=samples, truth=truth, given=given, target=1 - given)


@pytest.mark.parametrize("spread", [0.5, 2.0])
def test_factor_is_the_ratio_of_spreads_and_calibrates_fresh_items(spread):
    calibration, test = _imputation(spread, seed=0), _imputation(spread, seed=1)
    raw = coverage_90(test, _NoUnits())  # type: ignore[arg-type]
    assert abs(raw - 0.9) > 0.08  # far off: 0.58 when too narrow, 0.99 when too wide
    c = conformal_scale(calibration)
    assert c == pytest.approx(1 / spread, rel=0.12)
    assert abs(coverage_90(widen(test, c), _NoUnits()) - 0.9) < 0.03  # type: ignore[arg-type]


def test_conformal_guarantee_on_the_calibration_items_themselves():
    calibration = _imputation(0.3, n=50, s=16, seed=2)
    for level in (0.8, 0.9, 0.95):
        c = conformal_scale(calibration, level=level)
        widened = widen(calibration, c)
        lo, hi = interval(widened, level, clip=True)  # the interval the factor was fitted for
        inside = ((widened.truth >= lo - 1e-6) & (widened.truth <= hi + 1e-6))[calibration.target.bool()]
        assert inside.float().mean() >= level


def test_widening_keeps_the_median_and_the_given_entries():
    imp = _imputation(0.5, n=20, s=9, seed=3)
    wide = widen(imp, 3.0)
    assert torch.allclose(wide.median(), imp.median(), atol=1e-6)
    assert mae(wide, _NoUnits()) == pytest.approx(mae(imp, _NoUnits()), abs=1e-6)  # type: ignore[arg-type]
    assert torch.equal(wide.samples[:, :, 0], imp.samples[:, :, 0])
    assert torch.allclose(wide.samples - wide.median()[:, None], 3 * (imp.samples - imp.median()[:, None]), atol=1e-5)


def test_bad_calibration_data_is_a_clear_error():
    imp = _imputation(1.0, n=2, s=8, seed=4)  # 4 targets: too few for a 90% interval
    with pytest.raises(ValueError, match="too few for a 90% interval"):
        conformal_scale(imp)
    flat = _imputation(1.0, n=50, s=8, seed=5)
    flat.samples[:, :, 1:] = 0.0  # no spread while the truth differs
    with pytest.raises(ValueError, match="no spread"):
        conformal_scale(flat)
    with pytest.raises(ValueError, match="target mask is empty"):
        conformal_scale(Imputation(samples=flat.samples, truth=flat.truth, given=flat.given,
                                   target=torch.zeros_like(flat.target)))
    with pytest.raises(ValueError, match="level"):
        conformal_scale(flat, level=1.0)
    with pytest.raises(ValueError, match="scale"):
        widen(flat, -1.0)


def _hide(present: torch.Tensor, fraction: float, seed: int) -> torch.Tensor:
    return present * (torch.rand(present.shape, generator=torch.Generator().manual_seed(seed)) < fraction).float()


def test_calibrating_on_the_given_entries_fixes_a_too_narrow_model_without_held_out_items():
    """Truth N(0, 1) per entry, a model of N(0, 0.5^2): hiding 30% of each item's GIVEN entries again and
    imputing them fits the factor 2 that makes the real targets' 90% intervals hold 90%."""
    d, n = 8, 300
    model = GaussianMixture(torch.ones(1), torch.zeros(1, d), torch.full((1, d), 0.25))
    batch = Batch(x=torch.randn(n, d, generator=torch.Generator().manual_seed(0)))
    target = _hide(torch.ones(n, d), 0.3, seed=1)
    own = given_only(batch, target)
    cal_target = _hide(own.present(), 0.3, seed=2)
    assert not (cal_target * target).any() and cal_target.sum() > 400  # only given entries are hidden again
    run = dict(n_samples=32, sampler="heun", steps=16)
    cal = impute(model.denoise, own, cal_target, seed=3, **run)
    test = impute(model.denoise, batch, target, seed=4, **run)
    assert coverage_90(test, _NoUnits()) < 0.65  # type: ignore[arg-type]
    c = conformal_scale(cal)
    assert c == pytest.approx(2.0, rel=0.15)
    assert abs(coverage_90(widen(test, c), _NoUnits()) - 0.9) < 0.04  # type: ignore[arg-type]


def test_given_only_never_reads_the_targets():
    batch = Batch(x=torch.randn(4, 6, generator=torch.Generator().manual_seed(5)))
    target = _hide(torch.ones(4, 6), 0.5, seed=6)
    poisoned = Batch(x=torch.where(target > 0, torch.nan, batch.x))
    a, b = given_only(batch, target), given_only(poisoned, target)
    assert torch.equal(a.x, b.x) and torch.equal(a.observed, 1 - target) and torch.isfinite(b.x).all()
    with pytest.raises(ValueError, match="packed shape"):
        given_only(batch, target[:, :3])


def test_sparse_calibration_tasks_are_drawn_until_200_targets():
    assert [calibration_draws(m) for m in (0, 5, 13, 100, 199, 200, 5000)] == [16, 16, 16, 2, 2, 1, 1]
    assert calibration_draws(10, min_targets=50, max_draws=3) == 3
    with pytest.raises(ValueError, match="min_targets and max_draws must be >= 1"):
        calibration_draws(10, max_draws=0)
    from polydiff import plugins

    padding = torch.ones(6, 10)
    padding[:, -1] = 0  # the last entry of every item is padding
    batch = Batch(x=torch.randn(6, 10, generator=torch.Generator().manual_seed(0)) * padding, padding=padding,
                  cond={"label": torch.arange(6)})
    target = _hide(padding, 0.5, seed=1)
    spec = plugins.get_mask_strategy("random_ratio")
    cal_batch, cal_target, draws = given_calibration(spec, batch, target, torch.Generator().manual_seed(2))
    hidden = cal_target[:6].bool()  # the first draw counts the targets (a run of neighbours once), and is kept
    first = int(hidden[:, 0].sum() + (hidden[:, 1:] & ~hidden[:, :-1]).sum())
    assert draws == calibration_draws(first) > 1 and len(cal_batch) == 6 * draws
    assert cal_target.shape == (6 * draws, 10)
    assert torch.equal(cal_batch.cond["label"], torch.arange(6).repeat(draws))
    assert torch.equal(cal_batch.padding, padding.repeat(draws, 1))
    for d in range(draws):  # every draw is a copy of the items with only their given entries
        rows = slice(6 * d, 6 * (d + 1))
        assert torch.equal(cal_batch.present()[rows], padding - target)
        assert not (cal_target[rows] * target).any() and not (cal_target[rows] * (1 - padding)).any()
    assert cal_target.sum() > 100  # one draw hides about 12
    assert not torch.equal(cal_target[:6], cal_target[6:12])  # independent draws, not one repeated
    # a strategy without randomness poses the same task every time: drawn once, copies add no targets
    fixed = dataclasses.replace(spec, fn=lambda observed, generator: observed * (torch.arange(10) == 4))
    _, once, draws = given_calibration(fixed, batch, target, torch.Generator())
    assert draws == 1 and torch.equal(once, (padding - target) * (torch.arange(10) == 4))
    # a gap of 5 neighbours errs as one: 6 gaps a draw, not 30 targets, so drawn 16 times, not 7
    gaps = dataclasses.replace(spec, fn=lambda observed, generator: observed * (torch.arange(10) < 5))
    _, _, draws_gaps = given_calibration(gaps, Batch(x=batch.x, padding=padding), torch.zeros(6, 10),
                                         torch.Generator())
    assert draws_gaps == 1  # no randomness: the same gaps every draw
    shifting = dataclasses.replace(spec, fn=lambda observed, generator: observed * (
        (torch.arange(10) - torch.randint(0, 5, (len(observed), 1), generator=generator)).abs() < 3))
    _, gap_target, draws_gaps = given_calibration(shifting, Batch(x=batch.x, padding=padding), torch.zeros(6, 10),
                                                  torch.Generator().manual_seed(0))
    assert gap_target[:6].sum() >= 18 and draws_gaps == 16 > calibration_draws(int(gap_target[:6].sum()))
    # the benchmark's per-draw factors: 3 sets of 2 items, each needs its own 200 targets
    _, _, per_set = given_calibration(spec, batch, target, torch.Generator().manual_seed(2), groups=3)
    assert per_set == calibration_draws(round(first / 3)) > draws


def test_a_calibration_task_written_without_align_still_runs() -> None:
    """``align`` reaches only the calibration tasks that take it: a plugin's task written before it (explicit
    keywords, no ``**kwargs``) keeps working."""
    from polydiff.diffusion import MaskStrategySpec, calibration_task, random_ratio

    def mine(own, target, generator, *, tail=3):  # the older documented signature
        hide = torch.zeros_like(own.present())
        hide[:, -2 - tail:-2] = 1  # the given steps before the real targets
        return own, hide

    seen = {}

    def aligned(own, target, generator, *, align=1, tail=3):
        seen["align"] = align
        return mine(own, target, generator, tail=tail)

    batch = Batch(x=torch.randn(4, 10), observed=torch.ones(4, 10))
    target = torch.zeros(4, 10)
    target[:, -2:] = 1
    for fn in (mine, aligned):
        spec = MaskStrategySpec(name="mine", description="", fn=random_ratio, options={"tail": 3},
                                calibration_task=fn)
        _, cal = calibration_task(spec, batch, target, torch.Generator().manual_seed(0), {}, align=24)
        assert cal.sum() > 0 and not (cal * target).any()
    assert seen["align"] == 24


def test_fill_reaches_only_a_calibration_task_with_a_fill_parameter() -> None:
    """The model's samples of the real targets go to a task that names ``fill`` (only at the real targets);
    a ``**options`` catch-all or an older task never gets them, and the workflow need not wait for them."""
    from polydiff.diffusion import MaskStrategySpec, calibration_task, random_ratio
    from polydiff.diffusion.calibration import takes_fill

    seen: dict[str, torch.Tensor] = {}

    def filled(own, target, generator, *, fill=None):
        seen["fill"] = fill
        return own, own.present()

    def catch_all(own, target, generator, **options):
        assert "fill" not in options
        return own, own.present()

    batch = Batch(x=torch.randn(4, 10), observed=torch.ones(4, 10))
    target = torch.zeros(4, 10)
    target[:, 3:5] = 1
    sample = torch.full((4, 10), 5.0)
    for fn, takes in ((filled, True), (catch_all, False)):
        spec = MaskStrategySpec(name="m", description="", fn=random_ratio, options={}, calibration_task=fn)
        assert takes_fill(spec) is takes
        calibration_task(spec, batch, target, torch.Generator(), {}, fill=sample)
    assert torch.equal(seen["fill"], sample * target)  # the samples at the real targets, nothing else
    with pytest.raises(ValueError, match=r"fill has shape \[4, 9\], the batch \[4, 10\]"):
        calibration_task(MaskStrategySpec(name="m", description="", fn=random_ratio, options={},
                                          calibration_task=filled), batch, target, torch.Generator(), {},
                         fill=sample[:, :9])
