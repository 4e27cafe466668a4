"""The image plugin's baselines (``ModalitySpec.baselines``), scored beside every model: one Gaussian
fitted to the training images (floor), real images of the training split (ceiling), and for
inpainting the mean training image and a harmonic (Laplace) fill of the hidden pixels."""

from __future__ import annotations

from polydiff.diffusion import Batch, harmonic_fill
from polydiff.evaluation import BaselineContext, FillBaseline, mean_item_fill, training_items
from polydiff.plugins import BaselineSpec

from .metrics import gaussian_baseline


def gaussian_images(ctx: BaselineContext) -> Batch:
    """``n`` draws of one full-covariance Gaussian fitted to the training pixels, clipped to [-1, 1]."""
    return gaussian_baseline(ctx.train, ctx.n, seed=ctx.seed)


BASELINES = (
    BaselineSpec(name="gaussian_fit", role="floor", fn=gaussian_images,
                 description="one Gaussian (full pixel covariance) fitted to the training images, clipped"),
    BaselineSpec(name="real_images", role="ceiling", fn=training_items,
                 description="real images of the training split, scored like samples (the data's own score)"),
    BaselineSpec(name="mean_image", task="impute", fn=mean_item_fill,
                 description="hidden pixels from the mean training image"),
    BaselineSpec(name="harmonic_fill", task="impute", fn=FillBaseline(harmonic_fill),
                 description="hidden pixels relaxed to the average of their neighbours (Laplace inpainting)"),
)

__all__ = ["BASELINES", "gaussian_images"]
