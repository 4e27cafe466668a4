"""Small shape helpers shared by every part of the core (k-diffusion's `append_dims` idea)."""

from __future__ import annotations

import torch
from torch import Tensor


def append_dims(v: Tensor, ndim: int) -> Tensor:
    """Reshape a per-sample vector ``[B]`` so it broadcasts against a ``[B, ...]`` tensor of ``ndim`` dims."""
    if v.ndim > ndim:
        raise ValueError(f"cannot broadcast a {v.ndim}-d tensor against a {ndim}-d one")
    return v.reshape(v.shape + (1,) * (ndim - v.ndim))


def per_sample(sigma: Tensor | float, x: Tensor) -> Tensor:
    """``sigma`` as a ``[B]`` tensor on ``x``'s device and dtype (a scalar is repeated)."""
    s = torch.as_tensor(sigma, device=x.device, dtype=x.dtype)
    if s.ndim == 0:
        s = s.expand(x.shape[0])
    if s.shape != (x.shape[0],):
        raise ValueError(f"sigma must be a scalar or of shape [{x.shape[0]}], got {list(s.shape)}")
    return s


def masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean over all non-batch dims of ``values`` where ``mask`` is 1: one number per sample.

    A sample whose mask is all zero contributes 0 (not NaN), so a batch with an empty target set
    still trains.
    """
    flat = values.reshape(values.shape[0], -1)
    if mask is None:
        return flat.mean(dim=1)
    m = mask.expand_as(values).reshape(values.shape[0], -1).to(values.dtype)
    return (flat * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)
