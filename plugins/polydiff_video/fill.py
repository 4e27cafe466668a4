"""The video plugin's prior fill (``ModalitySpec.prior_fill``): what a frame would be without a model.

Every hidden frame becomes the latest given frame before it moved on by the global motion between the
two latest given frames before it (:func:`polydiff_video.motion.extrapolated_frames`, the classical
motion-compensated prediction); where fewer than two given frames precede it, the last given frame
(the nearest later one before the first given frame). Clips ``[B, T, C, H, W]``, masks whole frames.
"""

from __future__ import annotations

from torch import Tensor

from polydiff.diffusion import locf_fill

from .motion import extrapolated_frames

MOTION_RADIUS = 3  # pixels per frame searched for the global motion (moving digits move <= 3 px/frame)


def last_frame_fill(x_given: Tensor, given: Tensor) -> Tensor:
    """Each hidden frame is the last given frame before it (copy-last-frame), or the first given one
    for frames before it; given frames unchanged."""
    return locf_fill(x_given, given, dim=1)


def motion_fill(x_given: Tensor, given: Tensor) -> Tensor:
    """Global-motion extrapolation where two given frames precede a hidden frame, else
    :func:`last_frame_fill`; given frames unchanged."""
    last = last_frame_fill(x_given, given)
    moved, valid = extrapolated_frames(x_given, given, MOTION_RADIUS)
    frame_given = given.flatten(2).amax(-1) > 0  # [B, T]
    use = (valid & ~frame_given).reshape(*valid.shape, *([1] * (x_given.ndim - 2)))
    return last.where(~use, moved.to(last.dtype))


__all__ = ["MOTION_RADIUS", "last_frame_fill", "motion_fill"]
