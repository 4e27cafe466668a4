"""Every number beside its baselines: the baseline methods any modality can declare (real items, a
Gaussian fit, mean fill, a prior fill), the any-modality metrics, and the scoreboard that scores a
model and its baselines with the same metrics on the same items. Given the specs, it needs no registry
(:func:`polydiff.plugins.scoring` looks them up for a modality)."""

from __future__ import annotations

from .baselines import (
    MIN_CLASSIFIER_ITEMS,
    RELIABLE_ACCURACY,
    BaselineContext,
    FillBaseline,
    Row,
    Scoreboard,
    baseline_imputation,
    gaussian_fit,
    mean_item_fill,
    observed_view,
    score_imputation,
    score_samples,
    training_items,
)
from .metrics import sliced_w2

__all__ = ["MIN_CLASSIFIER_ITEMS", "RELIABLE_ACCURACY", "BaselineContext", "FillBaseline", "Row", "Scoreboard",
           "baseline_imputation", "gaussian_fit", "mean_item_fill", "observed_view", "score_imputation",
           "score_samples", "sliced_w2", "training_items"]
