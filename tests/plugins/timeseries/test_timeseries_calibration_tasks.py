"""How ``--calibrate given`` redraws the series strategies on the given entries: sparse random draws
that keep each hidden entry's given neighbours, block gaps that never extend a real gap, forecasts from
windows moved on by the horizon; none reads a hidden value."""

from __future__ import annotations

import pytest
import torch

from polydiff import Batch, plugins
from polydiff.diffusion.calibration import calibration_task, given_only
from polydiff_timeseries.masks import block, block_calibration, forecast, forecast_calibration, random_calibration


def _series(shape: tuple[int, int, int] = (64, 3, 40), seed: int = 0, missing: float = 0.0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    observed = (torch.rand(shape, generator=g) >= missing).float()
    return Batch(x=torch.randn(shape, generator=g) * observed, observed=observed)


def _next_to(mask: torch.Tensor) -> torch.Tensor:  # written out again: the test's own reading
    near = mask.bool().clone()
    near[..., 1:] |= mask.bool()[..., :-1]
    near[..., :-1] |= mask.bool()[..., 1:]
    return near


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_block_calibration_gaps_never_touch_a_real_gap_and_hide_only_given_entries(missing: float) -> None:
    batch = _series(missing=missing)
    target = block(batch.present(), torch.Generator().manual_seed(1))
    own = given_only(batch, target)
    redrawn = block(own.present(), torch.Generator().manual_seed(2)) * own.present()
    assert (redrawn.bool() & _next_to(target)).any()  # drawn anywhere, gaps do extend real ones
    cal_batch, cal = block_calibration(own, target, torch.Generator().manual_seed(2))
    assert cal_batch is own and cal.sum() > 0.3 * target.sum()
    assert not (cal.bool() & _next_to(target)).any()
    assert (cal <= own.present()).all()
    for row in cal.reshape(-1, cal.shape[-1]):  # one contiguous gap per feature at most
        idx = row.nonzero().flatten()
        if len(idx) and missing == 0:
            assert idx[-1] - idx[0] + 1 == len(idx) <= 20


def test_block_calibration_without_real_gaps_draws_blocks_of_the_same_lengths() -> None:
    batch = _series(shape=(2000, 2, 40))
    none = torch.zeros_like(batch.x)
    _, cal = block_calibration(batch, none, torch.Generator().manual_seed(0))
    plain = block(batch.present(), torch.Generator().manual_seed(0))
    assert torch.equal(cal.sum(dim=-1), plain.sum(dim=-1))  # the same features and lengths, other starts
    assert not torch.equal(cal, plain)


def test_forecast_calibration_forecasts_the_window_end_from_the_given_history_only() -> None:
    batch = _series(shape=(8, 2, 30))
    target = forecast(batch.present(), torch.Generator(), horizon=6)
    poisoned = Batch(x=torch.where(target > 0, torch.nan, batch.x), observed=batch.observed)
    moved, cal = forecast_calibration(given_only(poisoned, target), target, torch.Generator(), horizon=6)
    assert torch.isfinite(moved.x).all()
    assert torch.equal(moved.x[..., 6:], batch.x[..., :24]) and (moved.present()[..., :6] == 0).all()
    assert torch.equal(cal, target)  # the last 6 steps again, now of the moved history
    spec = plugins.get_mask_strategy("forecast")
    via_core, via_core_target = calibration_task(spec, poisoned, target, torch.Generator(), {"horizon": 6})
    assert torch.equal(via_core.x, moved.x) and torch.equal(via_core_target, cal)


def test_forecast_calibration_moves_by_multiples_of_the_training_stride() -> None:
    """Items aligned every 4 steps (a dataset may declare it; the built-in loaders do only for windows that
    tile): a horizon of 6 moves the history by 8, so every step keeps its phase (position mod 4) and the
    calibration forecast is the last 6 steps of a shorter history; windows cut every 30 steps (the window
    length) tile the series: no move leaves history, and the error says why and what to do."""
    batch = _series(shape=(8, 2, 30))
    target = forecast(batch.present(), torch.Generator(), horizon=6)
    moved, cal = forecast_calibration(given_only(batch, target), target, torch.Generator(), align=4, horizon=6)
    assert torch.equal(moved.x[..., 8:], batch.x[..., :22]) and (moved.present()[..., :8] == 0).all()
    assert torch.equal(cal, target)
    spec = plugins.get_mask_strategy("forecast")
    _, via_core = calibration_task(spec, batch, target, torch.Generator(), {"horizon": 6}, align=4)
    assert torch.equal(via_core, cal)
    with pytest.raises(ValueError, match=r"cut every 30 steps, which tile.*--calibrate K.*data.stride < data.length"):
        forecast_calibration(given_only(batch, target), target, torch.Generator(), align=30, horizon=6)


def test_forecast_calibration_moves_each_series_to_its_own_real_end() -> None:
    """Series 1's last 4 steps were never observed and series 2 misses the step before its horizon: each
    moves by its own distance (4, 4, 5), so its calibration forecast ends where its real one does and
    starts right after its last given step."""
    batch = _series(shape=(3, 2, 20))
    observed = batch.present().clone()
    observed[1, :, 16:] = 0  # series 1 ends at step 15
    observed[2, :, 15] = 0  # series 2: steps 16-19 are its horizon, step 15 is missing in every feature
    batch = Batch(x=batch.x * observed, observed=observed)
    target = forecast(observed, torch.Generator(), horizon=4)
    moved, cal = forecast_calibration(given_only(batch, target), target, torch.Generator(), horizon=4)
    assert torch.equal(moved.x[0, :, 4:], batch.x[0, :, :16])
    assert torch.equal(moved.x[1, :, 4:16], batch.x[1, :, :12]) and (moved.present()[1, :, 16:] == 0).all()
    assert torch.equal(moved.x[2, :, 5:], batch.x[2, :, :15]) and (moved.present()[2, :, :5] == 0).all()
    assert torch.equal(cal, target)


def test_forecast_calibration_leaves_out_series_without_history_and_errors_when_none_is_left() -> None:
    batch = _series(shape=(2, 1, 20))
    observed = batch.present().clone()
    observed[1, :, :12] = 0  # 4 given steps before a horizon of 4: nothing to forecast from
    batch = Batch(x=batch.x * observed, observed=observed)
    target = forecast(observed, torch.Generator(), horizon=4)
    moved, cal = forecast_calibration(given_only(batch, target), target, torch.Generator(), horizon=4)
    assert cal[1].sum() == 0 and torch.equal(cal[0], target[0])  # series 1 left out, series 0 calibrates
    observed[0, :, :12] = 0
    batch = Batch(x=batch.x * observed, observed=observed)
    target = forecast(observed, torch.Generator(), horizon=4)
    with pytest.raises(ValueError, match="every series has no more than 4 given steps"):
        forecast_calibration(given_only(batch, target), target, torch.Generator(), horizon=4)
    observed[:] = 0  # nothing at all: no target either, nothing to calibrate, no error here
    batch = Batch(x=batch.x * observed, observed=observed)
    _, cal = forecast_calibration(given_only(batch, observed), observed, torch.Generator(), horizon=4)
    assert not cal.any()


def test_block_calibration_keeps_clear_of_missing_values_joined_to_a_real_gap() -> None:
    """Feature 0 misses steps 10-11 naturally, next to a real gap at 12-15: no calibration gap may touch
    steps 9-16, though steps 9 and 16 are next to given values only."""
    b, length = 400, 40
    observed = torch.ones(b, 1, length)
    observed[..., 10:12] = 0
    target = torch.zeros(b, 1, length)
    target[..., 12:16] = 1
    batch = Batch(x=torch.randn(b, 1, length) * observed, observed=observed)
    _, cal = block_calibration(given_only(batch, target), target, torch.Generator().manual_seed(0))
    assert cal.sum() > 0 and cal[..., 9:17].sum() == 0
    with pytest.raises(ValueError, match="0 < max_fraction <= 1"):
        block_calibration(given_only(batch, target), target, torch.Generator(), max_fraction=0)


def test_strategies_without_a_calibration_task_are_drawn_again_on_the_given_entries() -> None:
    batch = _series()
    spec = plugins.get_mask_strategy("historical")
    target = spec.fn(batch.present(), torch.Generator().manual_seed(0))
    cal_batch, cal = calibration_task(spec, batch, target, torch.Generator().manual_seed(1))
    own = given_only(batch, target)
    assert torch.equal(cal_batch.x, own.x) and torch.equal(cal_batch.present(), own.present())
    assert torch.equal(cal, spec.fn(own.present(), torch.Generator().manual_seed(1)) * own.present())
    assert not (cal * target).any()
    with pytest.raises(ValueError, match="unknown key mask_options"):
        calibration_task(spec, batch, target, torch.Generator(), {"horizon": 3})


def _spans(hidden: torch.Tensor, given: torch.Tensor) -> torch.Tensor:
    """Per hidden entry: the steps between its nearest given entries before and after (same feature)."""
    out = []
    for h, g in zip(hidden.reshape(-1, hidden.shape[-1]), given.reshape(-1, given.shape[-1]), strict=True):
        steps = g.nonzero().flatten().tolist()
        for t in h.nonzero().flatten().tolist():
            before, after = [s for s in steps if s < t], [s for s in steps if s > t]
            if before and after:
                out.append(after[0] - before[-1])
    return torch.tensor(out, dtype=torch.float)


@pytest.mark.parametrize("ratio", [0.5, 0.9])
def test_random_calibration_keeps_the_real_gaps_around_each_hidden_entry(ratio: float) -> None:
    batch = _series(shape=(60, 2, 200))
    spec = plugins.get_mask_strategy("random_fixed")
    target = spec.bind({"ratio": ratio})(batch.present(), torch.Generator().manual_seed(0))
    cal_batch, cal = calibration_task(spec, batch, target, torch.Generator().manual_seed(1), {"ratio": ratio})
    own = given_only(batch, target)
    assert torch.equal(cal_batch.present(), own.present())
    assert (cal <= own.present()).all() and not (cal * target).any()
    left = own.present() - cal  # what the calibration imputation sees
    real, calibration = _spans(target, own.present()), _spans(cal, left)
    redrawn = spec.fn(own.present(), torch.Generator().manual_seed(1), ratio=ratio)
    naive = _spans(redrawn, own.present() - redrawn)
    assert abs(calibration.mean() / real.mean() - 1) < 0.1  # the size-biased gap: two real gaps
    assert naive.mean() > 1.5 * real.mean()  # the ratio drawn again: a far harder task
    assert 0.12 < cal.sum() / own.present().sum() < 0.2  # a sparse draw: 0.2 of them, less the neighbours


def test_random_calibration_never_hides_two_given_neighbours() -> None:
    batch = _series(shape=(20, 3, 50), missing=0.3)
    _, cal = random_calibration(batch, torch.zeros_like(batch.x), torch.Generator().manual_seed(3), ratio=0.9)
    for h, g in zip(cal.reshape(-1, 50), batch.present().reshape(-1, 50), strict=True):
        hidden_in_given_order = h[g.bool()]
        assert not (hidden_in_given_order[1:].bool() & hidden_in_given_order[:-1].bool()).any()
    assert cal.sum() > 0


def test_a_calibration_task_of_the_wrong_shape_is_a_clear_error() -> None:
    import dataclasses

    spec = dataclasses.replace(plugins.get_mask_strategy("block"),
                               calibration_task=lambda own, target, g, **_: (own, target[:, :1]))
    batch = _series(shape=(4, 3, 20))
    with pytest.raises(ValueError, match=r"calibration target has shape \[4, 1, 20\], its batch \[4, 3, 20\]"):
        calibration_task(spec, batch, block(batch.present(), torch.Generator()), torch.Generator())


def test_mix_trains_forecasts_and_gaps_is_the_same_without_them() -> None:
    """A quarter of ``mix``'s series hide exactly their last quarter (a forecast); ``gaps`` draws the same
    random, historical and block masks and picks among those three only."""
    from polydiff_timeseries.masks import gaps, mix

    observed = torch.ones(400, 2, 24)
    mixed = mix(observed, torch.Generator().manual_seed(0))
    ahead = forecast(observed, torch.Generator(), horizon=6)
    share = (mixed == ahead).flatten(1).all(dim=1).float().mean()
    assert 0.18 < float(share) < 0.32
    plain = gaps(observed, torch.Generator().manual_seed(0))
    assert float((plain == ahead).flatten(1).all(dim=1).float().mean()) < 0.05
    assert mix(torch.ones(3, 1, 1), torch.Generator()).shape == (3, 1, 1)  # one step: nothing to forecast


def test_mix_forecasts_the_last_quarter_of_each_padded_series_own_steps() -> None:
    """A series of 8 real steps padded to 24 forecasts its last 2 steps (not 6 of a padded length, which
    would hide most of it); a series of one real step is never "forecast" from nothing: that option draws
    random values instead (the step hidden half the time, not always)."""
    from polydiff_timeseries.masks import mix

    observed = torch.zeros(400, 1, 24)
    observed[:, :, :8] = 1.0
    drawn = mix(observed, torch.Generator().manual_seed(0))
    assert torch.all(drawn <= observed)
    tail = torch.zeros(24)
    tail[6:8] = 1.0
    assert 0.15 < float((drawn[:, 0] == tail).all(dim=1).float().mean()) < 0.35
    old = torch.zeros(24)
    old[2:8] = 1.0  # a horizon of 6 (a quarter of the padded length) hid most of the series
    assert float((drawn[:, 0] == old).all(dim=1).float().mean()) < 0.05
    one = torch.zeros(4000, 1, 24)
    one[:, :, 0] = 1.0
    hidden = float(mix(one, torch.Generator().manual_seed(1))[:, 0, 0].mean())
    # options hide it with probability ~0.5 (random), ~0.5 (historical), ~0.05 (block) and 1 (forecast) before
    # (mean ~0.51), 0.5 instead of 1 now (mean ~0.39); the standard deviation is ~0.008
    assert 0.33 < hidden < 0.45


@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_block_calibration_with_the_models_samples_draws_block_as_the_real_task(missing: float) -> None:
    """Given a sample of the real gaps, a calibration gap is ``block`` drawn on the whole series: the sample
    shows as given context outside it, is hidden unscored inside it, and only given entries are targets."""
    from polydiff.diffusion.calibration import calibration_task, given_calibration

    batch = _series(missing=missing)
    target = block(batch.present(), torch.Generator().manual_seed(1))
    sample = torch.full_like(batch.x, 7.0)  # the model's sample of the real targets
    poisoned = Batch(x=torch.where(target > 0, torch.nan, batch.x), observed=batch.observed)
    spec = plugins.get_mask_strategy("block")
    cal_batch, cal = calibration_task(spec, poisoned, target, torch.Generator().manual_seed(2), fill=sample)
    hide = block(batch.present(), torch.Generator().manual_seed(2))  # the same draw, as the real task draws it
    given = batch.present() * (1 - target)
    assert torch.equal(cal, hide * given)  # targets: given entries inside a calibration gap only
    shown = cal_batch.present().bool()
    assert torch.equal(shown, (given.bool() | target.bool()) & ~(hide.bool() & target.bool()))
    assert torch.isfinite(cal_batch.x).all()  # the real values are never read
    assert (cal_batch.x[shown & target.bool()] == 7).all()  # the sample is the real gaps' context
    assert torch.equal(cal_batch.x[given.bool()], batch.x[given.bool()])
    assert (hide.bool() & target.bool()).any() and (cal.sum(dim=(1, 2)) > 0).float().mean() > 0.8
    # draws: sample j of the imputation fills draw j's copy
    samples = torch.stack([torch.full_like(batch.x, float(j)) for j in range(3)], dim=1)
    cal_batch, cal, draws = given_calibration(spec, poisoned, target, torch.Generator().manual_seed(2),
                                              samples=samples)
    n = len(batch)
    assert draws >= 2 and len(cal_batch) == draws * n
    for j in range(draws):
        part = cal_batch.x[j * n:(j + 1) * n]
        filled = cal_batch.present()[j * n:(j + 1) * n].bool() & target.bool()
        assert (part[filled] == j % 3).all()
    with pytest.raises(ValueError, match=r"samples must be \[n, S, ...\]"):
        given_calibration(spec, poisoned, target, torch.Generator(), samples=samples[:, 0])
