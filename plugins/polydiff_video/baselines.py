"""The video plugin's baselines (``ModalitySpec.baselines``), scored beside every model on the same
clips and masks: for prediction and interpolation copy-last-frame, the clip's mean given frame and
global-motion extrapolation (:mod:`polydiff_video.motion`); for generation one Gaussian fitted to the
training clips (floor) and real clips of the training split (ceiling)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from polydiff.diffusion import mean_fill
from polydiff.evaluation import BaselineContext, FillBaseline, gaussian_fit, training_items
from polydiff.plugins import BaselineSpec

from .fill import last_frame_fill, motion_fill


def mean_frame(observed: Any, ctx: BaselineContext) -> Tensor:
    """Every hidden entry is the mean of that pixel over the clip's given frames."""
    return mean_fill(observed.truth, observed.given, dims=(1,))


BASELINES = (
    BaselineSpec(name="gaussian_fit", role="floor", fn=gaussian_fit,
                 description="one Gaussian fitted to the training clips (diagonal above 4096 values)"),
    BaselineSpec(name="real_clips", role="ceiling", fn=training_items,
                 description="real clips of the training split, scored like samples"),
    BaselineSpec(name="copy_last_frame", task="impute", fn=FillBaseline(last_frame_fill),
                 description="each hidden frame is the last given frame before it"),
    BaselineSpec(name="mean_frame", task="impute", fn=mean_frame,
                 description="each hidden frame is the mean of the clip's given frames"),
    BaselineSpec(name="motion", task="impute", fn=FillBaseline(motion_fill),
                 description="the last given frame moved on by the global motion of the two before it"),
)

__all__ = ["BASELINES", "mean_frame"]
