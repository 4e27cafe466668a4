"""polydiff: one diffusion core for every modality, extended through pluggy plugins."""

from __future__ import annotations

from .data import ArrayDataset, DiffusionDataset
from .losses import Weighting, denoising_loss
from .noise import NoiseSource
from .parameterization import Denoiser, Parameterization, convert, from_prediction, from_x0, to_x0
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
from .state import Batch, Field, StateSpec

__version__ = "0.1.0"

__all__ = [
    "EDM", "VE", "ArrayDataset", "Batch", "Denoiser", "DiffusionDataset", "Discrete", "Field",
    "NoiseLevels", "NoiseSource", "Parameterization", "RectifiedFlow", "Schedule", "StateSpec",
    "VPCosine", "VPLinear", "VPSigmoid", "Weighting", "__version__", "convert", "denoising_loss",
    "from_prediction", "from_x0", "sigma_grid", "to_x0",
]
