"""The maths of diffusion, for any state: what is diffused, forward processes, parameterizations,
losses, per-sample noise, samplers, guidance, likelihood, masks and imputation.

This layer imports nothing above it (no plugin registry, trainer or app); plugins import its public
names from here.
"""

from __future__ import annotations

from .calibration import (
    calibration_draws,
    calibration_task,
    conformal_scale,
    given_calibration,
    given_only,
    widen,
)
from .contracts import MaskStrategySpec, SamplerSpec
from .data import ArrayDataset, DiffusionDataset, Subset, holdout_split
from .gmm import GaussianMixture, random_mixture, ring, sliced_wasserstein
from .guidance import classifier_free_guidance, repaint, with_conditioning, with_observed, with_prior_fill
from .imputation import Imputation, coverage_90, crps, impute, in_data_units, interval, mae, rmse, weibull_levels
from .likelihood import LikelihoodResult, log_likelihood
from .losses import Weighting, denoising_loss
from .masking import cond_mask_of, random_ratio
from .noise import NoiseSource, seeds_for, stream_seed, stream_seeds
from .parameterization import Denoiser, DenoiserLike, Parameterization, convert, from_prediction, from_x0, to_x0
from .prior_fill import (
    PriorFill,
    attach_prior_fill,
    harmonic_fill,
    linear_fill,
    locf_fill,
    mean_fill,
    resolve_prior_fill,
)
from .sampling import SampleResult, sample, with_self_conditioning
from .schedules import (
    EDM,
    VE,
    Discrete,
    NoiseLevels,
    RectifiedFlow,
    Schedule,
    VPCosine,
    VPLinear,
    VPSigmoid,
    scaled_to_data,
    sigma_grid,
)
from .state import Batch, Field, StateSpec, remove_com
from .windows import chronological_holdout, holdout_apart, holdout_by_source, split_apart

__all__ = [
    "EDM", "VE", "ArrayDataset", "Batch", "Denoiser", "DenoiserLike", "DiffusionDataset", "Discrete", "Field",
    "GaussianMixture", "Imputation", "LikelihoodResult", "MaskStrategySpec", "NoiseLevels", "NoiseSource",
    "Parameterization", "PriorFill", "RectifiedFlow", "SampleResult", "SamplerSpec", "Schedule", "StateSpec",
    "Subset", "VPCosine", "VPLinear", "VPSigmoid", "Weighting", "attach_prior_fill", "calibration_draws",
    "calibration_task", "chronological_holdout",
    "classifier_free_guidance",
    "cond_mask_of", "conformal_scale", "convert", "coverage_90", "crps", "denoising_loss", "from_prediction",
    "from_x0", "given_calibration", "given_only", "harmonic_fill", "holdout_apart", "holdout_by_source",
    "holdout_split", "impute", "in_data_units",
    "interval", "linear_fill",
    "locf_fill", "log_likelihood", "mae", "mean_fill", "random_mixture", "random_ratio", "remove_com", "repaint",
    "resolve_prior_fill", "ring", "rmse", "sample", "scaled_to_data", "seeds_for", "sigma_grid",
    "sliced_wasserstein", "split_apart", "stream_seed", "stream_seeds", "to_x0", "weibull_levels", "widen",
    "with_conditioning",
    "with_observed", "with_prior_fill", "with_self_conditioning",
]
