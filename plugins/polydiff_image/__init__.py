"""polydiff_image: the image modality.

Registers the ``image`` modality (``[B, C, H, W]`` in [-1, 1]), the datasets ``digits``,
``fashion_mnist`` and ``folder``, the ``unet`` backbone, the ``classifier_fd`` and
``classifier_accuracy`` metrics and the mask strategies ``center_box``, ``half``, ``random_boxes``
and ``image_mixed``. The building blocks are importable for other plugins:
:mod:`polydiff_image.unet` (``UNet``, ``ResBlock``, ``Attention``, ``Downsample``, ``Upsample``).

Importing it checks the ``image`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[image]'`` in ``polydiff plugins`` rather than failing later.
"""

from __future__ import annotations

import PIL  # noqa: F401  (the extra's dependencies: folder loader, PNG/GIF files)
import sklearn  # noqa: F401  (the extra's dependency: the digits dataset)

from polydiff.plugins import SpecPlugin

__version__ = "0.1.0"

polydiff_plugin = SpecPlugin(registry="polydiff_image.registry")
