"""The audio plugin's baselines (``ModalitySpec.baselines``), scored beside every model on the same
clips and masks: linear interpolation of the log-mel spectrogram across gaps, the last given frame
repeated (continuation), one Gaussian fitted to the training spectrograms (floor) and real clips of
the training split (ceiling)."""

from __future__ import annotations

from torch import Tensor

from polydiff.diffusion import Batch, locf_fill
from polydiff.evaluation import BaselineContext, FillBaseline, training_items
from polydiff.plugins import BaselineSpec

from .fill import interpolate_frames
from .metrics import gaussian_baseline


def gaussian_clips(ctx: BaselineContext) -> Batch:
    """``n`` full-length spectrograms of one Gaussian fitted to the training clips, clipped to [-1, 1]."""
    return gaussian_baseline(ctx.train, ctx.n, seed=ctx.seed)


def repeat_last_frame(x_given: Tensor, given: Tensor) -> Tensor:
    """Each hidden frame repeats the last given frame before it (per mel band)."""
    return locf_fill(x_given, given, dim=-1)


BASELINES = (
    BaselineSpec(name="gaussian_fit", role="floor", fn=gaussian_clips,
                 description="one Gaussian fitted to the training spectrograms (silence-filled), clipped"),
    BaselineSpec(name="real_clips", role="ceiling", fn=training_items,
                 description="real clips of the training split, scored like samples"),
    BaselineSpec(name="linear", task="impute", fn=FillBaseline(interpolate_frames),
                 description="log-mel spectrogram linearly interpolated in time across the hidden frames"),
    BaselineSpec(name="repeat_last_frame", task="impute", fn=FillBaseline(repeat_last_frame),
                 description="the last given frame repeated over the hidden ones"),
)

__all__ = ["BASELINES", "gaussian_clips", "repeat_last_frame"]
