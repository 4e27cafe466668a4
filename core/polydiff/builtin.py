"""The core's own contributions, registered through the same hooks as any third-party plugin.

Each hook imports its source module only when called, so a module that fails to import shows up
as this plugin's ``unavailable`` status instead of breaking :mod:`polydiff.plugins`.
"""

from __future__ import annotations

from .hookspecs import hookimpl
from .specs import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec, SamplerSpec, ScheduleSpec


@hookimpl
def polydiff_register_modalities() -> list[ModalitySpec]:
    from .points import MODALITY

    return [MODALITY]


@hookimpl
def polydiff_register_datasets() -> list[DatasetSpec]:
    from .points import DATASETS

    return list(DATASETS)


@hookimpl
def polydiff_register_backbones() -> list[BackboneSpec]:
    from .points import BACKBONES

    return list(BACKBONES)


@hookimpl
def polydiff_register_metrics() -> list[MetricSpec]:
    from .imputation import IMPUTE_METRICS
    from .points import METRICS

    return [*METRICS, *IMPUTE_METRICS]


@hookimpl
def polydiff_register_schedules() -> list[ScheduleSpec]:
    from .schedules import BUILTIN_SCHEDULES

    # a schedule's class docstring (on one line) is its description
    return [ScheduleSpec(name=cls.name, cls=cls, description=" ".join((cls.__doc__ or cls.name).split()))
            for cls in BUILTIN_SCHEDULES]


@hookimpl
def polydiff_register_samplers() -> list[SamplerSpec]:
    from .samplers import BUILTIN_SAMPLERS

    return list(BUILTIN_SAMPLERS)


@hookimpl
def polydiff_register_mask_strategies() -> list[MaskStrategySpec]:
    from .masking import BUILTIN_MASK_STRATEGIES

    return list(BUILTIN_MASK_STRATEGIES)
