"""The high-level sampling entry point: noise -> samples, with masks, guidance and batching.

:func:`sample` composes the pieces: a sigma grid from the schedule, per-sample seeded noise (sample
i is identical whatever ``batch_size``), denoiser wrappers from :mod:`polydiff.diffusion.guidance`, the
projection into the state's noise space, and one sampler from the registry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import Tensor

from polydiff.options import check_options

from .contracts import SamplerSpec, registry_lookup
from .guidance import classifier_free_guidance, with_conditioning, with_observed, with_prior_fill
from .noise import NoiseSource, stream_seeds
from .parameterization import DenoiserLike
from .prior_fill import prior_fill_of
from .samplers import BUILTIN_SAMPLERS, Callback
from .schedules import EDM, GridKind, Schedule, sigma_grid
from .state import StateSpec, projector


@dataclass
class SampleResult:
    """Samples ``x`` ``[n, *shape]``; ``trajectory``: x at each sigma of the grid, noise to data
    (``steps + 1`` tensors ``[n, *shape]`` on the CPU) when asked for; ``nfe``: denoiser calls per
    sample (with classifier-free guidance each call runs the network on a doubled batch);
    ``seconds``: wall time."""

    x: Tensor
    trajectory: list[Tensor] | None
    nfe: int
    seconds: float


def _resolve_sampler(sampler: str | SamplerSpec,
                     registry: Mapping[str, SamplerSpec] | None = None) -> SamplerSpec:
    """A :class:`SamplerSpec` by name (from ``registry``, default the built-ins, then the plugin registry
    :mod:`polydiff.plugins` installed with :func:`~polydiff.diffusion.contracts.use_registry`) or as given."""
    if isinstance(sampler, SamplerSpec):
        return sampler
    table = registry if registry is not None else {s.name: s for s in BUILTIN_SAMPLERS}
    if sampler in table:
        return table[sampler]
    found = registry_lookup("sampler", sampler) if registry is None else None
    if found is None:
        raise ValueError(f"unknown sampler {sampler!r}; valid samplers: {', '.join(sorted(table))}")
    return cast(SamplerSpec, found)


def _options(spec: SamplerSpec, options: Mapping[str, Any] | None) -> dict[str, Any]:
    return check_options(options or {}, spec.options, "options", f"sampler {spec.name!r}")


def with_self_conditioning(denoiser: DenoiserLike,
                           project: Callable[[Tensor], Tensor] | None = None) -> DenoiserLike:
    """A self-conditioned denoiser as a plain one for a sampler: every call gets the previous call's
    estimate as ``x_self`` (none at the first; Chen et al. 2022, Alg. 2), projected by ``project``
    into the noise space as training projects it. Stateful: make one per trajectory."""
    previous: list[Tensor] = []

    def self_conditioned(x: Tensor, sigma: Tensor, **cond: Tensor) -> Tensor:
        out = denoiser(x, sigma, x_self=previous[-1] if previous else None, **cond)
        if project is not None:
            out = project(out)
        previous[:] = [out.detach()]
        return out

    return self_conditioned


def sample(denoiser: DenoiserLike, *, shape: tuple[int, ...] | list[int], n: int, seed: int,
           sampler: str | SamplerSpec = "heun", schedule: Schedule | None = None, steps: int = 32,
           grid: GridKind | str = "karras", spec: StateSpec | None = None, padding: Tensor | None = None,
           x_obs: Tensor | None = None, observed: Tensor | None = None, conditional_model: bool = False,
           cfg_scale: float | None = None, cond: Mapping[str, Tensor] | None = None,
           options: Mapping[str, Any] | None = None, callback: Callback | None = None, progress: bool = False,
           keep_trajectory: bool = False, batch_size: int | None = None,
           device: torch.device | str = "cpu",
           samplers: Mapping[str, SamplerSpec] | None = None, sigmas: Tensor | None = None) -> SampleResult:
    """Draw ``n`` samples of per-sample packed ``shape`` from ``denoiser``.

    Args:
        denoiser: ``D(x, sigma[B], **cond) -> x0_hat``. One with ``self_condition = True`` (a
            self-conditioned :class:`~polydiff.Denoiser`) gets the previous call's estimate as ``x_self``.
        shape: packed per-sample shape (``dataset.sample_shape``).
        n, seed: number of samples and base seed; sample i uses seed ``seeds_for(n, seed)[i]``.
        sampler: a name (looked up in ``samplers``, default the built-ins) or a :class:`SamplerSpec`.
        schedule, steps, grid: the sigma grid (:func:`~polydiff.diffusion.schedules.sigma_grid`); EDM by default.
        spec, padding: the state's fields and packed padding mask ``[n, *shape]`` (noise space:
            padded entries stay 0, centre-of-mass-free fields keep zero CoM).
        x_obs, observed: observed values and mask ``[n, *shape]``; observed entries end exactly at
            ``x_obs``. ``conditional_model``: the model was trained with ``x_cond`` / ``cond_mask``
            (:func:`~polydiff.diffusion.guidance.with_conditioning`); otherwise replacement conditioning.
            A conditional denoiser with a prior fill (``denoiser.prior_fill``, see
            :mod:`polydiff.diffusion.prior_fill`) gets it as in training.
        cfg_scale: classifier-free guidance scale on ``cond["label"]`` (``None``: off).
        cond: conditioning passed to the denoiser by keyword, rows ``[n, ...]``.
        options: sampler options (checked against the spec's; defaults filled in).
        callback: called once per step with the sampler's info dict (per batch, batch-local x).
        progress: tqdm progress bar over all steps of all batches.
        keep_trajectory: return x at every grid level (for pictures).
        batch_size: samples per denoiser batch (``None``: all at once).
        samplers: the registry to resolve names in (``None``: the plugin registry, built-ins included).
        sigmas: an explicit decreasing grid ``[steps + 1]`` ending in 0 (e.g. from
            :func:`polydiff.diffusion.grids.optimize_sigmas`), used instead of ``schedule`` / ``steps`` / ``grid``.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    sampler_spec = _resolve_sampler(sampler, samplers)
    opts = _options(sampler_spec, options)
    if (x_obs is None) != (observed is None):
        raise ValueError("pass x_obs and observed together (observed values and their mask)")
    if conditional_model and observed is None:
        raise ValueError("conditional_model=True needs x_obs and observed")
    device = torch.device(device)
    shape = tuple(shape)
    if sigmas is None:
        if grid == "optimized":
            raise ValueError("grid 'optimized' is computed for a model: pass sigmas=grids.optimize_sigmas(...) "
                             "(polydiff sample and sample_run compute and store it with the run)")
        sigmas = sigma_grid(schedule if schedule is not None else EDM(), steps, cast(GridKind, grid))
    else:
        sigmas = sigmas.detach().float().flatten()
        if len(sigmas) < 2 or float(sigmas[-1]) != 0:
            raise ValueError(f"sigmas must be a decreasing grid ending in 0, got {sigmas.tolist()}")
        steps = len(sigmas) - 1
    sigmas = sigmas.to(device)
    mv = lambda t: None if t is None else t.to(device)  # noqa: E731
    padding, x_obs, observed = mv(padding), mv(x_obs), mv(observed)
    cond = {k: v.to(device) for k, v in (cond or {}).items()}
    for name, t in (("padding", padding), ("x_obs", x_obs), ("observed", observed), *cond.items()):
        if t is not None and (t.shape[0] != n or (name in ("padding", "x_obs", "observed") and t.shape[1:] != shape)):
            raise ValueError(f"{name} must have {n} rows" + (f" of shape {list(shape)}" if name in
                             ("padding", "x_obs", "observed") else "") + f", got {list(t.shape)}")
    self_condition = bool(getattr(denoiser, "self_condition", False))
    prior_fill = prior_fill_of(denoiser)
    if prior_fill is not None and prior_fill.mode == "residual" and not conditional_model:
        raise ValueError("this model diffuses the residual from its prior fill (model.prior_fill = 'residual'): "
                         "it samples only given observed values (conditional_model=True, e.g. polydiff impute)")
    size = batch_size or n
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=math.ceil(n / size) * steps, desc=f"sampling ({sampler_spec.name})", unit="step")
    outs: list[Tensor] = []
    frames: list[list[Tensor]] = []
    calls = [0]
    start = time.perf_counter()
    for lo in range(0, n, size):
        sl = slice(lo, min(lo + size, n))
        pad_b = None if padding is None else padding[sl]
        obs_b = None if observed is None else observed[sl]
        x_obs_b = None if x_obs is None else x_obs[sl]
        cond_b = {k: v[sl] for k, v in cond.items()}
        if pad_b is not None:  # variable-length backbones need to know which entries are real
            cond_b.setdefault("padding", pad_b)
        project = projector(spec, pad_b)
        # seeds of this batch only: a huge n never holds n seeds (or n generators) at once
        batch_seeds = stream_seeds(seed, "sample", sl.start, sl.stop)  # == seeds_for(n, seed)[sl]
        noise = NoiseSource(batch_seeds, spec=spec, padding=pad_b, device=device)

        # wrappers, innermost first: guidance sees the raw model; masks see the guided output
        d = denoiser
        if cfg_scale is not None:
            d = classifier_free_guidance(d, cfg_scale)
        fill = None
        if conditional_model:
            assert x_obs_b is not None and obs_b is not None
            if prior_fill is not None:  # as training does (objective.diffusion_loss)
                fill = prior_fill.fill(x_obs_b, obs_b, pad_b)
                d = with_prior_fill(d, fill, prior_fill.mode)
            d = with_conditioning(d, x_obs_b, obs_b)

        if self_condition:  # outermost: guidance's two halves share the estimate
            d = with_self_conditioning(d, project)

        def projected(x: Tensor, sigma: Tensor, d: DenoiserLike = d, cond_b: dict[str, Tensor] = cond_b,
                      project: Callable[[Tensor], Tensor] = project, first: bool = lo == 0) -> Tensor:
            calls[0] += first
            return project(d(x, sigma, **cond_b))

        final = projected if obs_b is None else with_observed(projected, x_obs_b, obs_b)  # type: ignore[arg-type]
        batch_frames: list[Tensor] = []

        def on_step(info: dict[str, Any], batch_frames: list[Tensor] = batch_frames) -> None:
            if keep_trajectory:
                batch_frames.append(info["x"].detach().cpu().clone())
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(info)

        x = noise(torch.empty((sl.stop - sl.start, *shape), device=device)) * float(sigmas[0])
        if fill is not None and prior_fill is not None and prior_fill.mode == "residual":
            x = x + fill.to(x.dtype)  # the residual x - fill starts as pure noise
        x = sampler_spec.fn(final, x, sigmas, noise=noise, callback=on_step, **opts)
        x = project(x)  # remove round-off drift out of the noise space
        if obs_b is not None and x_obs_b is not None:
            x = torch.where(obs_b.bool(), x_obs_b.to(x.dtype), x)
        outs.append(x)
        if keep_trajectory:
            frames.append([*batch_frames, x.detach().cpu().clone()])
    if bar is not None:
        bar.close()
    trajectory = [torch.cat(parts) for parts in zip(*frames, strict=True)] if keep_trajectory else None
    return SampleResult(x=torch.cat(outs), trajectory=trajectory, nfe=calls[0],
                        seconds=time.perf_counter() - start)


__all__ = ["SampleResult", "sample", "with_self_conditioning"]
