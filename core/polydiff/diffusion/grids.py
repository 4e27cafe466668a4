"""Sigma grids optimised for a given model, sampler and NFE (any modality, any sampler).

The sampler's discretisation error is measured against a many-step reference solution of the
probability-flow ODE started from the SAME calibration noise, and the step positions are chosen to
minimise it, in two stages:

1. **GITS** (Chen et al. 2024, "A Geometric Perspective on Optimal Timesteps"): the reference
   trajectory is recorded on a fine log-sigma grid of candidate levels; the cost of one step of the
   sampler from candidate i (starting ON the reference trajectory) to candidate j is its local error
   there, and dynamic programming picks the ``steps`` steps from sigma_max to 0 with the least
   total local error. Cheap (one step per candidate pair) and robust.
2. **Direct refinement** of the global error: starting from the best of the DP grid and the
   hand-made grids (karras, logsnr, uniform_t), a pattern search in log sigma moves one level at a
   time while the error of the whole sampler run against the reference decreases. Multistep
   samplers (whose step depends on the previous ones) are thereby optimised as they run.

The objective for a deterministic sampler is the mean squared distance of its samples to the
reference samples from the same noise: its square root bounds the W2 distance between the two
sample laws (the shared noise is a coupling), the same role as Align Your Steps' KL upper bound
(Sabour et al. 2024). A sampler that draws noise cannot follow the ODE path, so its objective is the
sliced W2 distance between its samples and the reference samples (fixed projections and noise:
the search is deterministic given its inputs).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import Tensor

from .contracts import SamplerSpec
from .gmm import sliced_wasserstein
from .noise import NoiseSource, stream_seeds
from .parameterization import DenoiserLike
from .samplers import euler, heun
from .sampling import _options, _resolve_sampler, with_self_conditioning
from .schedules import EDM, GRIDS, GridKind, Schedule, sigma_grid
from .state import StateSpec, projector


@dataclass(frozen=True)
class OptimizedGrid:
    """The chosen grid ``sigmas`` ``[steps + 1]`` (float32, ending in 0), the objective it reaches
    (``error``: RMS distance to the reference samples per element, or sliced W2 when the sampler is
    stochastic: ``objective``), and the same objective on each starting grid (``baselines``)."""

    sigmas: Tensor
    error: float
    objective: str
    baselines: dict[str, float] = field(default_factory=dict)
    evaluations: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"sigmas": [float(s) for s in self.sigmas], "error": self.error, "objective": self.objective,
                "baselines": dict(self.baselines), "evaluations": self.evaluations}


def _calibration_noise(calibration: int | Tensor, shape: tuple[int, ...], seed: int, spec: StateSpec | None,
                       padding: Tensor | None, device: torch.device) -> tuple[Tensor, list[int]]:
    """Unit-variance x_T noise ``[n, *shape]`` in the state's noise space and the per-item seeds."""
    if isinstance(calibration, Tensor):
        if calibration.ndim != len(shape) + 1 or tuple(calibration.shape[1:]) != shape or len(calibration) < 1:
            raise ValueError(f"calibration noise must have shape [n, {', '.join(map(str, shape))}], "
                             f"got {list(calibration.shape)}")
        n = len(calibration)
        seeds = stream_seeds(seed, "grid-calibration", 0, n).tolist()
        return projector(spec, padding)(calibration.to(device, torch.float32)), seeds
    if isinstance(calibration, bool) or not isinstance(calibration, int) or calibration < 1:
        raise ValueError(f"calibration must be a number of noise draws >= 1 or a noise tensor, got {calibration!r}")
    seeds = stream_seeds(seed, "grid-calibration", 0, calibration).tolist()
    # the noise takes the device of the tensor it is shaped like (drawn on the CPU, so the same values)
    like = torch.empty((calibration, *shape), device=device)
    return NoiseSource(seeds, spec=spec, padding=padding, device=device)(like), seeds


class _Problem:
    """Runs the sampler on a grid from the calibration noise and scores it against the reference."""

    def __init__(self, denoiser: DenoiserLike, spec_: SamplerSpec, opts: dict[str, Any], eps: Tensor,
                 seeds: list[int], spec: StateSpec | None, padding: Tensor | None, cond: dict[str, Tensor]) -> None:
        self.sampler, self.opts, self.eps, self.seeds = spec_, opts, eps, seeds
        self.spec, self.padding, self.cond = spec, padding, dict(cond)
        if padding is not None:
            self.cond.setdefault("padding", padding)
        self.project = projector(spec, padding)
        self.raw = denoiser
        self.self_condition = bool(getattr(denoiser, "self_condition", False))
        self.reference: Tensor | None = None
        self.drew = False
        self.evaluations = 0

    def denoiser(self, items: int | None = None) -> Callable[..., Tensor]:
        """The denoiser of the first ``items`` calibration draws (all: ``None``), their conditioning rows
        and padding with them."""
        cond, project = self.cond, self.project
        if items is not None and items < len(self.eps):
            cond = {k: v[:items] for k, v in cond.items()}
            project = projector(self.spec, None if self.padding is None else self.padding[:items])
        d = with_self_conditioning(self.raw, project) if self.self_condition else self.raw  # fresh per run
        return lambda x, sigma: project(d(x, sigma, **cond))

    def noise(self) -> Callable[[Tensor], Tensor]:
        """The same fresh noise stream for every run (common random numbers), noting whether it was used."""
        source = NoiseSource(self.seeds, spec=self.spec, padding=self.padding, device=self.eps.device)
        source(self.eps)  # draw 0 is the initial noise, as in polydiff.sample

        def draw(like: Tensor) -> Tensor:
            self.drew = True
            return source(like)

        return draw

    def run(self, sigmas: Tensor) -> Tensor:
        self.evaluations += 1
        x = self.eps * float(sigmas[0])
        with torch.no_grad():  # the grid is searched on the CPU; the sampler runs where the noise is
            return self.project(self.sampler.fn(self.denoiser(), x, sigmas.to(x.device, torch.float32),
                                                noise=self.noise(), **self.opts))

    def score(self, x: Tensor, stochastic: bool) -> float:
        assert self.reference is not None
        if not bool(torch.isfinite(x).all()):
            return math.inf
        if stochastic:
            return sliced_wasserstein(x.flatten(1), self.reference.flatten(1))
        return float((x.double() - self.reference.double()).pow(2).mean().sqrt())


def _teacher(problem: _Problem, levels: Tensor, reference_steps: int) -> tuple[Tensor, Tensor]:
    """Heun (2nd order) on a log-sigma grid of at least ``reference_steps`` steps that passes through
    every candidate level; returns x at each level ``[M, n, ...]`` and the final samples."""
    per = max(1, math.ceil(reference_steps / max(len(levels) - 1, 1)))
    logs = levels.log()
    fine = torch.cat([torch.exp(logs[:-1, None] + (logs[1:] - logs[:-1])[:, None]
                                * torch.arange(per, dtype=torch.float64)[None] / per).flatten(), levels[-1:],
                      levels.new_zeros(1)])
    states: list[Tensor] = []

    def keep(info: dict[str, Any]) -> None:
        if info["i"] % per == 0:
            states.append(info["x"].clone())

    with torch.no_grad():
        final = problem.project(heun(problem.denoiser(), problem.eps * float(levels[0]),
                                     fine.to(problem.eps.device, torch.float32), callback=keep))
    return torch.stack(states[: len(levels)]), final


def _dp(problem: _Problem, levels: Tensor, states: Tensor, final: Tensor, steps: int, stochastic: bool,
        items: int) -> Tensor:
    """GITS: the ``steps``-step path sigma_max -> ... -> 0 through candidate levels with least summed
    local error of one sampler step (Euler for a stochastic sampler) from the reference trajectory."""
    m = len(levels)
    targets = torch.cat([states[:, :items], final[None, :items]])
    nodes = torch.cat([levels, levels.new_zeros(1)])
    step = euler if stochastic else partial(problem.sampler.fn, noise=None, **problem.opts)
    cost = torch.full((m + 1, m + 1), math.inf, dtype=torch.float64)
    denoiser = problem.denoiser(items)
    project = projector(problem.spec, None if problem.padding is None else problem.padding[:items])
    with torch.no_grad():
        for i in range(m):
            for j in range(i + 1, m + 1):
                x = step(denoiser, targets[i], nodes[[i, j]].to(targets.device, torch.float32))
                cost[i, j] = float((project(x).double() - targets[j].double()).pow(2).mean())
    best = torch.full((steps + 1, m + 1), math.inf, dtype=torch.float64)
    arg = torch.zeros((steps + 1, m + 1), dtype=torch.long)
    best[0, 0] = 0.0
    for k in range(1, steps + 1):
        totals = best[k - 1][:, None] + cost  # [from, to]
        best[k], arg[k] = totals.min(dim=0)
    path = [m]
    for k in range(steps, 0, -1):
        path.append(int(arg[k, path[-1]]))
    return nodes[path[::-1]]


def _refine(problem: _Problem, sigmas: Tensor, error: float, stochastic: bool, rounds: int,
            lo: float, hi: float) -> tuple[Tensor, float]:
    """Pattern search on the interior log sigmas (sigma_max and the final 0 stay): move one level, or
    one level and all below it (a block slides past a local minimum of single moves), by +-delta
    while the global error decreases; halve delta ``rounds`` times."""
    u = sigmas[:-1].log().clone()
    gap = 1e-3  # the smallest step in log sigma: keeps the grid strictly decreasing in float32
    delta = (math.log(hi) - math.log(lo)) / 8
    for _ in range(rounds):
        improved = True
        while improved:
            improved = False
            for k in range(1, len(u)):
                for move, block in ((delta, False), (-delta, False), (delta, True), (-delta, True)):
                    trial = u.clone()
                    trial[k:] += move if block else 0.0
                    trial[k] += 0.0 if block else move
                    steps = trial[:-1] - trial[1:]
                    if float(steps.min()) < gap or float(trial[-1]) < math.log(lo):
                        continue
                    e = problem.score(problem.run(torch.cat([trial.exp(), sigmas.new_zeros(1)])), stochastic)
                    if e < error - 1e-12 * max(error, 1.0):
                        u, error, improved = trial, e, True
                        break
        delta /= 2
    return torch.cat([u.exp(), sigmas.new_zeros(1)]), error


def optimize_grid(denoiser: DenoiserLike, *, shape: tuple[int, ...] | list[int], steps: int,
                  sampler: str | SamplerSpec = "heun", schedule: Schedule | None = None,
                  calibration: int | Tensor = 256, seed: int = 0, reference_steps: int = 256,
                  candidates: int = 48, dp_items: int = 128, rounds: int = 6,
                  options: Mapping[str, Any] | None = None, spec: StateSpec | None = None,
                  padding: Tensor | None = None, cond: Mapping[str, Tensor] | None = None,
                  sigma_min: float | None = None, sigma_max: float | None = None,
                  samplers: Mapping[str, SamplerSpec] | None = None,
                  device: torch.device | str = "cpu") -> OptimizedGrid:
    """Like :func:`optimize_sigmas`, with the objective reached and that of each starting grid."""
    if steps < 1 or reference_steps < 1 or candidates < 2 or dp_items < 1 or rounds < 0:
        raise ValueError(f"optimize_sigmas needs steps >= 1, reference_steps >= 1, candidates >= 2, dp_items >= 1 "
                         f"and rounds >= 0, got steps={steps}, reference_steps={reference_steps}, "
                         f"candidates={candidates}, dp_items={dp_items}, rounds={rounds}")
    shape = tuple(shape)
    schedule = schedule if schedule is not None else EDM()
    lo = schedule.sigma_min if sigma_min is None else sigma_min
    hi = schedule.sigma_max if sigma_max is None else sigma_max
    if not 0 < lo < hi:
        raise ValueError(f"optimize_sigmas needs 0 < sigma_min < sigma_max, got {lo} and {hi}")
    sampler_spec = _resolve_sampler(sampler, samplers)
    opts = _options(sampler_spec, options)
    eps, seeds = _calibration_noise(calibration, shape, seed, spec, padding, torch.device(device))
    if padding is not None and len(padding) != len(eps):
        raise ValueError(f"padding must have one row per calibration draw ({len(eps)}), got {len(padding)}")
    problem = _Problem(denoiser, sampler_spec, opts, eps, seeds, spec, padding, dict(cond or {}))
    levels = torch.exp(torch.linspace(math.log(hi), math.log(lo), candidates, dtype=torch.float64))
    states, problem.reference = _teacher(problem, levels, reference_steps)

    starts: dict[str, Tensor] = {}
    for kind in GRIDS:
        starts[kind] = sigma_grid(schedule, steps, kind_of(kind), sigma_min=lo, sigma_max=hi).double()
    outputs = {name: problem.run(grid) for name, grid in starts.items()}
    stochastic = problem.drew  # the sampler drew noise after the initial draw: no ODE path to follow
    problem.evaluations = 0
    baselines = {name: problem.score(x, stochastic) for name, x in outputs.items()}
    if steps > 1:
        starts["gits"] = _dp(problem, levels, states, problem.reference, steps, stochastic, min(dp_items, len(eps)))
        baselines["gits"] = problem.score(problem.run(starts["gits"]), stochastic)
    first = min(baselines, key=lambda name: (baselines[name], name))
    sigmas, error = _refine(problem, starts[first], baselines[first], stochastic, rounds if steps > 1 else 0, lo, hi)
    return OptimizedGrid(sigmas=sigmas.float(), error=error, objective="sliced_w2" if stochastic else "rms",
                         baselines=baselines, evaluations=problem.evaluations)


def kind_of(name: str) -> GridKind:
    if name not in GRIDS:
        raise ValueError(f"unknown sigma grid {name!r}; valid grids: {', '.join(GRIDS)}, optimized")
    return name  # type: ignore[return-value]


def optimize_sigmas(denoiser: DenoiserLike, *, shape: tuple[int, ...] | list[int], steps: int,
                    sampler: str | SamplerSpec = "heun", schedule: Schedule | None = None,
                    calibration: int | Tensor = 256, seed: int = 0, reference_steps: int = 256,
                    **kwargs: Any) -> Tensor:
    """A sigma grid ``[steps + 1]`` (sigma_max first, strictly decreasing, levels >= sigma_min, then 0)
    that minimises ``sampler``'s discretisation error for ``denoiser`` (GITS dynamic programming, then
    a direct search on the global error; see the module docstring). Deterministic given its inputs.

    Args:
        denoiser: ``D(x, sigma[B], **cond) -> x0_hat`` (the trained model; bind guidance beforehand).
        shape: packed per-sample shape; steps: the grid's steps (NFE = steps x evaluations per step).
        sampler, options: the sampler (name or spec) and its options, as for :func:`polydiff.sample`.
        schedule: gives sigma_max / sigma_min (default EDM); ``sigma_min`` / ``sigma_max`` override.
        calibration: number of seeded x_T noise draws, or the unit-variance noise ``[n, *shape]`` itself;
            ``seed`` seeds those draws and the noise of stochastic samplers.
        reference_steps: Heun steps of the reference ODE solution (log-sigma spaced).
        spec, padding, cond: the state's fields, packed padding mask and conditioning, one row per draw.
        device: where the calibration noise lives (the denoiser's device).
        candidates: candidate levels for the dynamic programme; ``dp_items``: calibration items it uses;
        rounds: halvings of the search's move (0: the best starting grid as it is).
    """
    return optimize_grid(denoiser, shape=shape, steps=steps, sampler=sampler, schedule=schedule,
                         calibration=calibration, seed=seed, reference_steps=reference_steps, **kwargs).sigmas


__all__ = ["OptimizedGrid", "optimize_grid", "optimize_sigmas"]
