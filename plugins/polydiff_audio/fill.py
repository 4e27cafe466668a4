"""The audio plugin's prior fill (``ModalitySpec.prior_fill``): hidden frames of a log-mel spectrogram
``[B, 1, n_mels, frames]`` linearly interpolated along time from the given frames, per mel band (flat
before the first and after the last given frame), the classical gap-filling baseline."""

from __future__ import annotations

from torch import Tensor

from polydiff.diffusion import linear_fill


def interpolate_frames(x_given: Tensor, given: Tensor) -> Tensor:
    """Linear interpolation of each mel band along the frame (last) axis; given entries unchanged."""
    return linear_fill(x_given, given, dim=-1)


__all__ = ["interpolate_frames"]
