"""polydiff: one diffusion core for every modality, extended through pluggy plugins.

The public API is re-exported here. The subpackages are layers, each importing only those above it
in this list (``tests/test_layers.py`` checks it):

* :mod:`polydiff.diffusion`: the maths (states, schedules, parameterizations, losses, noise, samplers,
  sampling, guidance, likelihood, masks, imputation);
* :mod:`polydiff.nn`: network building blocks;
* :mod:`polydiff.evaluation`: baselines, any-modality metrics and the scoreboard;
* :mod:`polydiff.modalities`: the core's own ``points`` modality;
* :mod:`polydiff.training`: the objective, the trainer, checkpoints, distributed training;
* :mod:`polydiff.plugins`: the plugin API (hookspecs, specs, the host and registries, the built-ins);
* :mod:`polydiff.app`: configs, runs, workflows, ``polydiff compare``, the CLI and the Python API;
* :mod:`polydiff.testing`: the conformance kit for plugin test suites.
"""

from __future__ import annotations

from polydiff.app.api import Samples, TrainedRun, load_run, train
from polydiff.app.config import ConfigError
from polydiff.diffusion.data import ArrayDataset, DiffusionDataset, Subset, holdout_split
from polydiff.diffusion.guidance import classifier_free_guidance, repaint, with_conditioning, with_observed
from polydiff.diffusion.imputation import Imputation, impute
from polydiff.diffusion.likelihood import LikelihoodResult, log_likelihood
from polydiff.diffusion.losses import Weighting, denoising_loss
from polydiff.diffusion.noise import NoiseSource
from polydiff.diffusion.parameterization import Denoiser, Parameterization, convert, from_prediction, from_x0, to_x0
from polydiff.diffusion.sampling import SampleResult, sample, with_self_conditioning
from polydiff.diffusion.schedules import (
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
from polydiff.diffusion.state import Batch, Field, StateSpec
from polydiff.plugins.hookspecs import hookimpl
from polydiff.plugins.specs import (
    BackboneSpec,
    DatasetSpec,
    MaskStrategySpec,
    MetricSpec,
    ModalitySpec,
    SamplerSpec,
    ScheduleSpec,
)
from polydiff.training.checkpoint import CheckpointError, latest_checkpoint, read_checkpoint
from polydiff.training.trainer import TrainConfig, Trainer

from ._version import __version__
from .plugins import UnknownNameError, register, unregister
from .reporting import report

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
