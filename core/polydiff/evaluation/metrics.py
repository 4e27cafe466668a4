"""Metrics that apply to any modality (a flattened state)."""

from __future__ import annotations

import torch

from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.gmm import sliced_wasserstein
from polydiff.diffusion.state import Batch


def sliced_w2(samples: Batch, reference: DiffusionDataset) -> float:
    """Sliced 2-Wasserstein distance between samples and as many reference points (flattened)."""
    n = min(len(samples), len(reference))
    ref = reference.get_batch(torch.arange(n)).x.reshape(n, -1)
    return sliced_wasserstein(samples.x[:n].reshape(n, -1), ref)


__all__ = ["sliced_w2"]
