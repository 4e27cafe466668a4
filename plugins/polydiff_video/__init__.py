"""polydiff_video: the video modality.

Registers the ``video`` modality (clips ``[B, T, C, H, W]`` in [-1, 1]); the datasets
``moving_digits`` (scikit-learn digits bouncing, seeded), ``opencv_sample`` (OpenCV's ``vtest.avi``
street footage, Debian ``opencv-doc``) and ``files`` (your videos or frame folders); the
``video_unet`` backbone (the image plugin's U-Net per frame + temporal attention or convolution);
the metrics ``frame_fd``, ``frame_accuracy``, ``frame_diff_w1`` and, for predicted frames,
``digit_identity`` and ``centroid_error``; the mask strategies ``future_frames`` (frame
prediction), ``middle_frames`` (interpolation) and ``video_mixed``. From Python:
block-autoregressive prediction with a window model (``predict.predict_autoregressive``,
``data.frame_windows``) and global-motion extrapolation (``motion``).

Importing it checks the ``video`` extra (and the image plugin whose U-Net and classifier it reuses),
so a missing extra shows as ``unavailable: ... pip install 'polydiff[video]'`` in ``polydiff plugins``.
"""

from __future__ import annotations

import av  # noqa: F401  (the extra's dependency: PyAV decodes and encodes video for imageio)
import imageio  # noqa: F401  (the extra's dependency: reading and writing clips)
import sklearn  # noqa: F401  (the extra's dependency: digits frames)

import polydiff_image  # noqa: F401  (the U-Net, reference classifier and plotting helpers)
from polydiff.plugins import SpecPlugin

__version__ = "0.1.0"

polydiff_plugin = SpecPlugin(registry="polydiff_video.registry")
