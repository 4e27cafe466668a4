"""The hooks a polydiff plugin implements: the reference documentation of the plugin API.

Every hook returns a list of declarative objects from [`polydiff.plugins.specs`][polydiff.plugins.specs];
the core collects the lists of all plugins into registries it owns (duplicate names raise, results never depend on the
order plugins are called in). The core's own schedules, samplers and the ``points`` modality
register through these same hooks.

A plugin is any module or object with functions decorated by `hookimpl`, made known either
through the entry-point group ``polydiff`` (installed packages) or with `polydiff.register`
(a script or notebook). An implementation may accept fewer arguments than the spec (pluggy's rule),
so hooks can gain arguments without breaking plugins.

What each spec's callable is called (one rule: ``build`` makes an object, ``fn`` is a pure function)
and how the core calls it:

| spec | attribute | called as |
|---|---|---|
| `DatasetSpec` | `build` | `build(**options) -> DiffusionDataset` |
| `BackboneSpec` | `build` | `build(dataset, **options) -> nn.Module` (`F(x_in, c_noise, **cond)`) |
| `ScheduleSpec` | `build` | `build(**options) -> Schedule` (a frozen dataclass class) |
| `SamplerSpec` | `fn` | `fn(denoiser, x, sigmas, *, noise, callback, **options)` |
| `MetricSpec` | `fn` | `fn(samples: Batch, reference) -> float`; with `task="impute"`: `fn(imputation, reference)` |
| `MaskStrategySpec` | `fn` | `fn(observed, generator, **options) -> target` |
| `MaskStrategySpec` | `calibration_task` | `calibration_task(own, target, gen, *, align, fill, **o) -> (b, t)` |
| `ModalitySpec` | `plot_*` | `plot_samples(samples, ref, path)`, `plot_trajectory(frames, path)`, ... |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .specs import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec, SamplerSpec, ScheduleSpec

hookspec = pluggy.HookspecMarker("polydiff")
hookimpl = pluggy.HookimplMarker("polydiff")


@hookspec
def polydiff_register_modalities() -> list[ModalitySpec]:
    """Return the modalities (kinds of data) this plugin provides.

    Called once when the registry of modalities is first used. ``versionadded:: 0.1``

    :return: a list of [`ModalitySpec`][polydiff.plugins.specs.ModalitySpec]; names must be unique across plugins.
    """
    raise NotImplementedError


@hookspec
def polydiff_register_datasets() -> list[DatasetSpec]:
    """Return datasets, each tied to a modality by name (a plugin may add datasets to another
    plugin's modality).

    ``versionadded:: 0.1``

    :return: a list of [`DatasetSpec`][polydiff.plugins.specs.DatasetSpec]; names must be unique per modality.
    """
    raise NotImplementedError


@hookspec
def polydiff_register_backbones() -> list[BackboneSpec]:
    """Return denoiser backbones ``F(x_in, c_noise, **cond)``.

    ``versionadded:: 0.1``

    :return: a list of [`BackboneSpec`][polydiff.plugins.specs.BackboneSpec]; ``modality=None`` marks a backbone
        that works on any state (the core's ``mlp``).
    """
    raise NotImplementedError


@hookspec
def polydiff_register_schedules() -> list[ScheduleSpec]:
    """Return forward processes (noise schedules).

    ``versionadded:: 0.1``

    :return: a list of [`ScheduleSpec`][polydiff.plugins.specs.ScheduleSpec], each wrapping a
        [`Schedule`][polydiff.diffusion.schedules.Schedule] dataclass.
    """
    raise NotImplementedError


@hookspec
def polydiff_register_samplers() -> list[SamplerSpec]:
    """Return samplers, pure functions ``fn(denoiser, x, sigmas, *, noise, callback, **options)``.

    ``versionadded:: 0.1``

    :return: a list of [`SamplerSpec`][polydiff.plugins.specs.SamplerSpec].
    """
    raise NotImplementedError


@hookspec
def polydiff_register_metrics() -> list[MetricSpec]:
    """Return quality metrics with their direction: for generation, ``fn(samples, reference) -> float``;
    for imputation (``task="impute"``), ``fn(imputation, reference) -> float`` on the held-out entries.

    ``versionadded:: 0.1`` (``task`` in 0.2)

    :return: a list of [`MetricSpec`][polydiff.plugins.specs.MetricSpec]; ``modality=None`` for metrics that
        apply to any modality.
    """
    raise NotImplementedError


@hookspec
def polydiff_register_mask_strategies() -> list[MaskStrategySpec]:
    """Return strategies that choose target entries among the observed ones: in conditional training
    (values hidden from the model that it must predict: random ratio, blocks, ...) and in evaluation
    (``polydiff impute`` hides them, samples them and scores them: inpainting, forecasting...).

    ``versionadded:: 0.1`` (``options`` in 0.2)

    :return: a list of [`MaskStrategySpec`][polydiff.plugins.specs.MaskStrategySpec] (with their ``options``).
    """
    raise NotImplementedError
