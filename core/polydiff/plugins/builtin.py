"""The core's own contributions, registered through the same hooks as any third-party plugin.

This module makes the core's specs: the ``points`` modality, its datasets and baselines, the schedules,
the any-modality metrics and the ``mlp`` backbone. Samplers and mask strategies are the exception: they
are described beside their maths (:mod:`polydiff.diffusion.samplers`, :mod:`~polydiff.diffusion.masking`)
because :func:`~polydiff.sample` and the trainer take them without a registry; they are registered here.
Each function imports its source module only when called, so a module that fails to import shows up
as this plugin's ``broken`` status instead of breaking :mod:`polydiff.plugins`.
"""

from __future__ import annotations

from .declare import SpecPlugin
from .specs import (
    BackboneSpec,
    BaselineSpec,
    DatasetSpec,
    MaskStrategySpec,
    MetricSpec,
    ModalitySpec,
    SamplerSpec,
    ScheduleSpec,
)


def modalities() -> list[ModalitySpec]:
    from polydiff.evaluation.baselines import gaussian_fit, mean_item_fill, training_items
    from polydiff.modalities import points

    baselines = (
        BaselineSpec(name="exact_denoiser", role="ceiling", fn=points.exact_denoiser_samples,
                     description="the model's sampler driven by the exact denoiser of the true mixture"),
        BaselineSpec(name="fresh_data", role="ceiling", fn=points.fresh_mixture_samples,
                     description="fresh draws from the true mixture (the data's own score)"),
        BaselineSpec(name="real_points", role="ceiling", fn=training_items,
                     description="real points of the training split, scored like samples (the data's own score)"),
        BaselineSpec(name="gaussian_fit", role="floor", fn=gaussian_fit,
                     description="one Gaussian fitted to the training points"),
        BaselineSpec(name="mean_fill", task="impute", fn=mean_item_fill,
                     description="hidden coordinates set to their training mean"))
    return [ModalitySpec(name="points", description="N-D points from Gaussian mixtures with an exact analytic denoiser",
                         default_dataset="ring", default_backbone="mlp", primary_metric="sliced_w2",
                         plot_samples=points.plot_points, plot_trajectory=points.plot_point_trajectory,
                         baselines=baselines)]


def datasets() -> list[DatasetSpec]:
    from polydiff.modalities import points

    return [DatasetSpec(name="ring", modality="points", build=points.load_ring,
                        description="8 Gaussians on a circle in 2D"),
            DatasetSpec(name="mixture", modality="points", build=points.load_mixture,
                        description="a random anisotropic Gaussian mixture, 16-D by default"),
            DatasetSpec(name="file", modality="points", build=points.load_file,
                        description="your own points: a .csv (header optional) or .npy table, one row per point")]


def backbones() -> list[BackboneSpec]:
    from polydiff.nn.layers import build_mlp

    return [BackboneSpec(name="mlp", modality=None, build=build_mlp, self_condition=True,
                         description="residual MLP over the flattened state (any modality of modest size)")]


def metrics() -> list[MetricSpec]:
    from polydiff.diffusion.imputation import coverage_90, coverage_error_90, crps, mae, rmse
    from polydiff.evaluation.metrics import sliced_w2
    from polydiff.modalities.points import true_nll

    return [
        MetricSpec(name="sliced_w2", modality=None, fn=sliced_w2, direction="lower",
                   description="sliced 2-Wasserstein distance to reference data (any modality, flattened)"),
        MetricSpec(name="true_nll", modality="points", fn=true_nll, direction="lower",
                   description="NLL per dimension of samples under the true mixture (nats)"),
        MetricSpec(name="mae", modality=None, task="impute", fn=mae, direction="lower",
                   description="MAE of the sample median on held-out entries (data units)"),
        MetricSpec(name="rmse", modality=None, task="impute", fn=rmse, direction="lower",
                   description="RMSE of the sample mean on held-out entries (data units)"),
        MetricSpec(name="crps", modality=None, task="impute", fn=crps, direction="lower",
                   description="normalised quantile CRPS on held-out entries (CSDI's, 19 levels)"),
        MetricSpec(name="coverage_90", modality=None, task="impute", fn=coverage_90, direction="higher",
                   description="fraction of held-out entries inside the 5-95% sample interval (target 0.9)"),
        MetricSpec(name="coverage_error_90", modality=None, task="impute", fn=coverage_error_90, direction="lower",
                   description="|coverage_90 - 0.9|: distance of the 90% interval from calibration"),
    ]


def schedules() -> list[ScheduleSpec]:
    from polydiff.diffusion.schedules import BUILTIN_SCHEDULES

    # a schedule's class docstring (on one line) is its description
    return [ScheduleSpec(name=cls.name, build=cls, description=" ".join((cls.__doc__ or cls.name).split()))
            for cls in BUILTIN_SCHEDULES]


def samplers() -> list[SamplerSpec]:
    from polydiff.diffusion.samplers import BUILTIN_SAMPLERS

    return list(BUILTIN_SAMPLERS)


def mask_strategies() -> list[MaskStrategySpec]:
    from polydiff.diffusion.masking import BUILTIN_MASK_STRATEGIES

    return list(BUILTIN_MASK_STRATEGIES)


polydiff_plugin = SpecPlugin(modalities=modalities, datasets=datasets, backbones=backbones, metrics=metrics,
                             schedules=schedules, samplers=samplers, mask_strategies=mask_strategies)
