"""Target-mask strategies for series ``[B, K, L]`` (CSDI, Tashiro et al. 2021, Sec. 4.2 and App. B).

Each is ``fn(observed, generator, **options) -> target`` with ``target <= observed``; randomness comes
only from ``generator`` (on its device), so a training step or an evaluation mask is reproducible from
its seed. Training strategies: ``historical``, ``block``, ``gaps``, ``mix`` (the core has ``random_ratio``);
evaluation strategies: ``random_fixed`` (a fixed fraction of the observed values) and ``forecast``
(the last ``horizon`` steps).

``random_fixed``, ``block`` and ``forecast`` also say how ``polydiff impute --calibrate given`` draws them
again on the given entries, so that the calibration task is no harder than the real one (``*_calibration``).
The forecast's moves values, so it takes ``align``, the training data's ``alignment``.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from polydiff import MaskStrategySpec
from polydiff.diffusion import Batch, random_ratio


def _check(observed: Tensor) -> Tensor:
    if observed.ndim != 3:
        raise ValueError(f"time-series mask strategies need [B, K, L] masks, got shape {list(observed.shape)}")
    return observed.float()


def _uniform(shape: tuple[int, ...], generator: torch.Generator, like: Tensor) -> Tensor:
    return torch.rand(shape, generator=generator, device=generator.device).to(like.device)


def random_fixed(observed: Tensor, generator: torch.Generator, *, ratio: float = 0.1) -> Tensor:
    """Exactly ``round(ratio * n_observed)`` observed entries per series, chosen uniformly."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"random_fixed: ratio must be in [0, 1], got {ratio}")
    obs = _check(observed)
    b = obs.shape[0]
    flat = obs.reshape(b, -1)
    scores = torch.where(flat > 0, _uniform(tuple(flat.shape), generator, flat), torch.full_like(flat, -1.0))
    ranks = scores.argsort(dim=1, descending=True).argsort(dim=1)
    k = torch.round(ratio * flat.sum(dim=1, keepdim=True))
    return ((ranks < k).float() * flat).reshape(obs.shape)


CALIBRATION_FRACTION = 0.2  # random_fixed calibration: at most this share of the given entries is drawn


def random_calibration(own: Batch, target: Tensor, generator: torch.Generator, *,
                       ratio: float = 0.1) -> tuple[Batch, Tensor]:
    """``random_fixed`` drawn again on the given entries, sparsely: each given entry is drawn with
    probability ``min(ratio, CALIBRATION_FRACTION)``, and one whose previous given entry in its feature is
    drawn too is left given. A hidden entry then still has its own given neighbours, so the span between
    them is two real gaps: for random missing that is distributed as the span around a real hidden entry
    (the gap a random point falls in is size-biased), and the rest keeps most of its density. Drawn at
    the real ratio, 90% missing would calibrate on imputations from 1% of the entries, a far harder task."""
    if not 0 <= ratio <= 1:
        raise ValueError(f"random_fixed: ratio must be in [0, 1], got {ratio}")
    obs = _check(own.present()) > 0
    drawn = (_uniform(tuple(obs.shape), generator, obs.float()) < min(ratio, CALIBRATION_FRACTION)) & obs
    t = torch.arange(obs.shape[2], device=obs.device).expand_as(obs)
    at = torch.where(obs, t, torch.full_like(t, -1)).cummax(dim=2).values  # last given step at or before t
    prev = torch.cat([torch.full_like(at[..., :1], -1), at[..., :-1]], dim=2)  # ... strictly before t
    prev_drawn = drawn.gather(2, prev.clamp(min=0)) & (prev >= 0)
    return own, (drawn & ~prev_drawn).to(own.present().dtype)


def historical(observed: Tensor, generator: torch.Generator) -> Tensor:
    """CSDI's historical strategy: the missing pattern of another series of the batch (a random
    one) is laid over this one, so targets look like real gaps. A series whose borrowed pattern hides
    nothing falls back to the random strategy."""
    obs = _check(observed)
    b = obs.shape[0]
    shift = 1 + int(torch.randint(max(b - 1, 1), (1,), generator=generator, device=generator.device)) if b > 1 else 0
    other = obs.roll(shift, dims=0)
    target = obs * (1 - other)
    fallback = random_ratio(obs, generator)
    empty = target.reshape(b, -1).sum(dim=1) == 0
    return torch.where(empty[:, None, None], fallback, target)


def _check_block(max_fraction: float, feature_prob: float) -> None:
    if not 0 < max_fraction <= 1 or not 0 <= feature_prob <= 1:
        raise ValueError(f"block: need 0 < max_fraction <= 1 and 0 <= feature_prob <= 1, got {max_fraction}, "
                         f"{feature_prob}")


def _next_to(mask: Tensor) -> Tensor:
    """``mask`` (bool, time last) grown by one step either way."""
    near = mask.clone()
    near[..., 1:] |= mask[..., :-1]
    near[..., :-1] |= mask[..., 1:]
    return near


def _block_draws(obs: Tensor, generator: torch.Generator, max_fraction: float,
                 feature_prob: float) -> tuple[Tensor, Tensor, Tensor]:
    """``block``'s draws per series and feature, in its order: a gap length, a start, whether it has one."""
    b, k, length = obs.shape
    longest = max(1, round(max_fraction * length))
    size = 1 + (_uniform((b, k), generator, obs) * longest).long().clamp(max=longest - 1)
    start = (_uniform((b, k), generator, obs) * (length - size + 1).float()).long()
    chosen = _uniform((b, k), generator, obs) < feature_prob
    forced = (_uniform((b, k), generator, obs).argmax(dim=1, keepdim=True) == torch.arange(k, device=obs.device))
    return size, start, chosen | (forced & ~chosen.any(dim=1, keepdim=True))


def _inside(start: Tensor, size: Tensor, chosen: Tensor, length: int) -> Tensor:
    t = torch.arange(length, device=start.device)
    return ((t >= start[..., None]) & (t < (start + size)[..., None]) & chosen[..., None]).float()


def block(observed: Tensor, generator: torch.Generator, *, max_fraction: float = 0.5,
          feature_prob: float = 0.5) -> Tensor:
    """Sequence gaps: each feature of each series, with probability ``feature_prob``, loses one
    contiguous block of ``U[1, max_fraction * L]`` steps (at least one feature per series does)."""
    _check_block(max_fraction, feature_prob)
    obs = _check(observed)
    size, start, chosen = _block_draws(obs, generator, max_fraction, feature_prob)
    return _inside(start, size, chosen, obs.shape[2]) * obs


def block_calibration(own: Batch, target: Tensor, generator: torch.Generator, *, fill: Tensor | None = None,
                      max_fraction: float = 0.5, feature_prob: float = 0.5) -> tuple[Batch, Tensor]:
    """``block`` drawn again for calibration. With ``fill`` (one of the model's samples of the real targets):
    the real targets show that sample as given context, ``block`` is drawn on the whole series as for the
    real task, the sampled values inside a drawn gap are hidden unscored, and the given ones are the
    targets; so a calibration gap has as much context as a real one. Without it: drawn on the given
    entries, each gap placed where it neither overlaps nor touches a real gap of its feature, nor a run of
    missing values joined to one (uniformly among such starts; none when the drawn length fits nowhere).
    Drawn anywhere on the given entries, a calibration gap often extends a real one into a longer gap;
    placed away from them it still has a real gap or the window's edge close by on one side, a harder
    task than the real one (CO2 in benchmarks/README.md: 0.95 coverage where the sampled context gives 0.91)."""
    _check_block(max_fraction, feature_prob)
    if fill is not None:
        return _block_on_filled(own, target, generator, fill, max_fraction, feature_prob)
    obs = _check(own.present())
    b, k, length = obs.shape
    unknown, real = obs == 0, target.float() > 0
    for _ in range(length):  # a real gap with the missing values next to it is one longer gap
        grown = real | (unknown & _next_to(real))
        if torch.equal(grown, real):
            break
        real = grown
    touched = _next_to(real)
    size, _, chosen = _block_draws(obs, generator, max_fraction, feature_prob)  # block's start is redrawn below
    t = torch.arange(length, device=obs.device)
    hits = torch.nn.functional.pad(touched.float().cumsum(dim=-1), (1, 0))  # hits[..., s]: touched steps before s
    end = t + size[..., None]  # [b, k, L]: a gap starting at t ends before end
    fits = (end <= length) & (hits.gather(-1, end.clamp(max=length)) == hits[..., :length])
    scores = torch.where(fits, _uniform((b, k, length), generator, obs), torch.full_like(obs, -1.0))
    start = scores.argmax(dim=-1)
    return own, _inside(start, size, chosen & fits.any(dim=-1), length) * obs


def _block_on_filled(own: Batch, target: Tensor, generator: torch.Generator, fill: Tensor, max_fraction: float,
                     feature_prob: float) -> tuple[Batch, Tensor]:
    if fill.shape != own.x.shape:
        raise ValueError(f"block: fill has shape {list(fill.shape)}, the batch {list(own.x.shape)}")
    given = _check(own.present())
    real = target.to(given.dtype) * (1 - given)  # real targets: not given in ``own``
    present = given + real
    hide = block(present, generator, max_fraction=max_fraction, feature_prob=feature_prob)
    shown = present * (1 - hide * real)  # a sampled value inside a calibration gap: hidden, never scored
    x = torch.where(real > 0, fill.to(own.x.dtype), own.x) * shown.to(own.x.dtype)
    return dataclasses.replace(own, x=x, observed=shown.to(own.present().dtype)), hide * given


def _one_per_series(options: list[Tensor], generator: torch.Generator, obs: Tensor) -> Tensor:
    pick = (_uniform((obs.shape[0],), generator, obs) * len(options)).long().clamp(max=len(options) - 1)
    return torch.stack(options)[pick, torch.arange(obs.shape[0], device=obs.device)]


def gaps(observed: Tensor, generator: torch.Generator) -> Tensor:
    """Per series one of ``random_ratio``, ``historical`` and ``block``, chosen uniformly: values missing
    inside the series (CSDI mixes random and historical; blocks add sequence gaps)."""
    obs = _check(observed)
    return _one_per_series([random_ratio(obs, generator), historical(obs, generator), block(obs, generator)],
                           generator, obs)


def mix(observed: Tensor, generator: torch.Generator) -> Tensor:
    """Per series one of ``random_ratio``, ``historical``, ``block`` and ``forecast`` of the last quarter of
    its steps up to its last observed one, chosen uniformly (``gaps`` alone for one-step windows; random
    values instead of the forecast for a series with one real step). Without forecasts (``gaps``), a model of hourly
    weather on windows starting every hour forecast the evening like LOCF (docs/plugins/timeseries.md);
    with them it imputes random gaps a little worse at short budgets."""
    obs = _check(observed)
    if obs.shape[2] < 2:  # nothing to forecast from
        return gaps(obs, generator)
    real = _last_observed(obs) + 1  # a padded series forecasts the last quarter of its own steps
    ratio = random_ratio(obs, generator)
    ahead = _future(obs, (real // 4).clamp(min=1))
    ahead = torch.where((real >= 2)[:, None, None], ahead, ratio)  # one real step: no history to forecast from
    return _one_per_series([ratio, historical(obs, generator), block(obs, generator), ahead], generator, obs)


def forecast(observed: Tensor, generator: torch.Generator, *, horizon: int = 8) -> Tensor:
    """Forecasting as imputation: every observed value in the last ``horizon`` real steps of each
    series (its last step with any observed value ends the series; padding never counts)."""
    if horizon < 1:
        raise ValueError(f"forecast: horizon must be >= 1, got {horizon}")
    obs = _check(observed)
    length = obs.shape[2]
    if horizon >= length:
        raise ValueError(f"forecast: horizon {horizon} leaves no history in series of {length} steps")
    return _future(obs, torch.full((obs.shape[0],), horizon, device=obs.device))


def _last_observed(obs: Tensor) -> Tensor:
    """``[B]``: each series' last step with any observed value (-1: none)."""
    t = torch.arange(obs.shape[2], device=obs.device)
    return torch.where(obs.amax(dim=1) > 0, t, torch.full_like(t, -1)).amax(dim=1)


def _future(obs: Tensor, horizon: Tensor) -> Tensor:
    """The observed values in each series' last ``horizon[b]`` steps up to its last observed one."""
    t = torch.arange(obs.shape[2], device=obs.device)
    future = t[None, :] > (_last_observed(obs) - horizon)[:, None]
    return obs * future[:, None, :].float()


def forecast_calibration(own: Batch, target: Tensor, generator: torch.Generator, *, align: int = 1,
                         horizon: int = 8) -> tuple[Batch, Tensor]:
    """``forecast`` on the given entries without the real unknown end: each series is moved later by the
    steps between its last given step and its real end (the horizon, more where the series ends in
    missing steps), rounded up to a multiple of ``align``, its first steps left unobserved, and its last
    ``horizon`` steps are forecast; a series with no history left beyond them is left out. Drawn in
    place, the calibration forecast would predict the ``horizon`` steps in front of the real unknown ones,
    a task the model never does and a harder one. ``align``: the training data's ``alignment``, the
    stride of windows that tile the series (1 where they overlap): a model trained on days cut at midnight
    reads a step's position as its hour, and a move by other than a multiple of it asks for a forecast at
    the wrong hours (measured: a 7x too wide interval). Windows that tile their series (``align`` at
    least the length) cannot move and keep history: an error before anything is drawn."""
    if align < 1:
        raise ValueError(f"forecast: align must be >= 1, got {align}")
    if align >= own.x.shape[-1] and target.any():
        raise ValueError(f"forecast: the model was trained on windows cut every {align} steps, which tile the series "
                         f"and all start at one phase, so it may read a step's position as its phase (the hour of a "
                         "day); moved on by a multiple of that, no window keeps history to forecast from. Calibrate "
                         "on held-out windows (--calibrate K), or train on overlapping windows (data.stride < "
                         "data.length)")
    obs = _check(own.present())
    length = obs.shape[2]
    t = torch.arange(length, device=obs.device)
    ends = [torch.where(m.amax(dim=1) > 0, t, torch.full_like(t, -1)).amax(dim=1) for m in (obs, obs + target.float())]
    shift = torch.where(ends[0] >= 0, ends[1] - ends[0], torch.zeros_like(ends[0]))  # [B]
    shift = -(-shift // align) * align
    source = t[None, :] - shift[:, None]  # step t of the moved series is step t - shift of the given one
    keep = (source >= 0)[:, None, :].expand_as(obs)
    index = source.clamp(min=0)[:, None, :].expand_as(obs)
    x = torch.where(keep, own.x.gather(-1, index), torch.zeros_like(own.x))
    moved_obs = torch.where(keep, obs.gather(-1, index), torch.zeros_like(obs)).to(own.present().dtype)
    moved = dataclasses.replace(own, x=x * moved_obs, observed=moved_obs)
    cal = forecast(moved_obs, generator, horizon=horizon)
    no_history = (moved_obs - cal).flatten(1).amax(dim=1) <= 0  # nothing left to forecast from: left out
    cal = cal * ~no_history[:, None, None]
    if not cal.any() and target.any():
        raise ValueError(f"forecast: every series has no more than {horizon} given steps"
                         + (f" after a move by a multiple of {align}" if align > 1 else "")
                         + f", so a calibration forecast of {horizon} steps would start from nothing; calibrate on "
                         "held-out windows (--calibrate K) or forecast a shorter horizon")
    return moved, cal


MASK_STRATEGIES = [
    MaskStrategySpec(name="random_fixed", fn=random_fixed, options={"ratio": 0.1},
                     description="exactly `ratio` of each series' observed values, uniformly (evaluation)",
                     calibration_task=random_calibration),
    MaskStrategySpec(name="historical", fn=historical,
                     description="the missing pattern of another series in the batch (CSDI; series [B, K, L])"),
    MaskStrategySpec(name="block", fn=block, options={"max_fraction": 0.5, "feature_prob": 0.5},
                     description="contiguous gaps of up to max_fraction * L steps per feature (series)",
                     calibration_task=block_calibration),
    MaskStrategySpec(name="gaps", fn=gaps,
                     description="per series one of random_ratio, historical and block (training for imputation)"),
    MaskStrategySpec(name="mix", fn=mix,
                     description="per series one of random_ratio, historical, block and a forecast of the last "
                                 "quarter of its steps up to its last observed one (training, series)"),
    MaskStrategySpec(name="forecast", fn=forecast, options={"horizon": 8},
                     description="every observed value of the last `horizon` steps (forecasting, series)",
                     calibration_task=forecast_calibration),
]
