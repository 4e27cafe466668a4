"""polydiff: one diffusion core for every modality, extended through pluggy plugins.

The public API is re-exported here; the modules behind it are:

* :mod:`polydiff.state`, :mod:`polydiff.data`: what is diffused (fields, masks, datasets);
* :mod:`polydiff.schedules`, :mod:`polydiff.parameterization`, :mod:`polydiff.losses`: the maths;
* :mod:`polydiff.samplers`, :mod:`polydiff.sampling`, :mod:`polydiff.guidance`, :mod:`polydiff.likelihood`;
* :mod:`polydiff.training`, :mod:`polydiff.checkpoint`: training and its files;
* :mod:`polydiff.hookspecs`, :mod:`polydiff.plugins`, :mod:`polydiff.specs`: the plugin API;
* :mod:`polydiff.testing`: the conformance kit for plugin test suites.
"""

from __future__ import annotations

from ._version import __version__
from .api import Samples, TrainedRun, load_run, train
from .checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from .config import ConfigError
from .data import ArrayDataset, DiffusionDataset, Subset, holdout_split
from .guidance import classifier_free_guidance, repaint, with_conditioning, with_observed
from .hookspecs import hookimpl
from .imputation import Imputation, impute
from .likelihood import LikelihoodResult, log_likelihood
from .losses import Weighting, denoising_loss
from .noise import NoiseSource
from .parameterization import Denoiser, Parameterization, convert, from_prediction, from_x0, to_x0
from .plugins import UnknownNameError, register, unregister
from .reporting import report
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
    sigma_grid,
)
from .specs import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec, SamplerSpec, ScheduleSpec
from .state import Batch, Field, StateSpec
from .training import TrainConfig, Trainer

__all__ = [
    "EDM",
    "VE",
    "ArrayDataset",
    "BackboneSpec",
    "Batch",
    "CheckpointError",
    "ConfigError",
    "DatasetSpec",
    "Denoiser",
    "DiffusionDataset",
    "Discrete",
    "Field",
    "Imputation",
    "LikelihoodResult",
    "MaskStrategySpec",
    "MetricSpec",
    "ModalitySpec",
    "NoiseLevels",
    "NoiseSource",
    "Parameterization",
    "RectifiedFlow",
    "SampleResult",
    "SamplerSpec",
    "Samples",
    "Schedule",
    "ScheduleSpec",
    "StateSpec",
    "Subset",
    "TrainConfig",
    "TrainedRun",
    "Trainer",
    "UnknownNameError",
    "VPCosine",
    "VPLinear",
    "VPSigmoid",
    "Weighting",
    "__version__",
    "classifier_free_guidance",
    "convert",
    "denoising_loss",
    "from_prediction",
    "from_x0",
    "holdout_split",
    "hookimpl",
    "impute",
    "latest_checkpoint",
    "load_run",
    "log_likelihood",
    "read_checkpoint",
    "register",
    "repaint",
    "report",
    "sample",
    "sigma_grid",
    "to_x0",
    "train",
    "unregister",
    "with_conditioning",
    "with_observed",
    "with_self_conditioning",
]
