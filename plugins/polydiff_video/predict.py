"""Block-autoregressive frame prediction (MCVD, Voleti et al. 2022; Ho et al. 2022, Sec. 3.1): a
conditional model of short windows of ``window`` frames predicts the next ``stride`` frames from the
``window - stride`` before them, and is rolled forward over a clip of any length, each new block
seeing the frames it predicted before. Every hidden frame is then at most ``stride`` frames from a
known one, so the net only has to move what it sees a little, instead of carrying a shape many
frames ahead.

Each of the ``n_samples`` samples of a clip is its own chain (its blocks follow its own earlier
predictions), so the spread of the samples is the spread of whole futures.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from polydiff.diffusion import Batch, Imputation, impute


def predict_autoregressive(denoiser: Any, batch: Batch, *, given: int, window: int, stride: int = 1,
                           n_samples: int = 1, seed: int = 0, **sampling: Any) -> Imputation:
    """Predict frames ``given..T-1`` of every clip of ``batch`` (``[B, T, C, H, W]``) with a
    conditional model of ``window``-frame clips trained to predict their last ``stride`` frames
    (``future_frames`` with ``given = window - stride``).

    Args:
        denoiser: the window model (``conditional`` backbone, trained with ``train.conditional``).
        given: known frames at the start of every clip (at least ``window - stride``). When
            ``T - given`` is not a multiple of ``stride``, the last block predicts fewer frames from
            more context: train with ``mask_options = {given = 0}`` for that.
        window, stride: frames the model sees and frames each block predicts.
        n_samples: independent futures per clip.
        seed: block k's noise uses ``seed + k`` (results do not depend on ``batch_size``).
        sampling: passed to :func:`polydiff.diffusion.imputation.impute` (``sampler``, ``steps``, ``schedule``,
            ``spec``, ``progress``, ``batch_size``...).

    Returns:
        An :class:`~polydiff.diffusion.imputation.Imputation` of the whole clips (``samples``
        ``[B, n_samples, T, ...]``; the first ``given`` frames are the truth), scored like any other.
    """
    b, t = batch.x.shape[:2]
    if not 1 <= stride < window:
        raise ValueError(f"stride must be in [1, window - 1] = [1, {window - 1}], got {stride}")
    if not window - stride <= given < t:
        raise ValueError(f"given must be in [window - stride, T - 1] = [{window - stride}, {t - 1}] for a "
                         f"{window}-frame window predicting {stride}, got {given}")
    start = time.perf_counter()
    rep = lambda v: v.repeat_interleave(n_samples, dim=0)  # noqa: E731
    chains = rep(batch.x).clone()  # [B * S, T, ...]: every sample's clip, filled in block by block
    cond = {k: rep(v) for k, v in batch.cond.items()}
    nfe = 0
    for k, first in enumerate(range(given, t, stride)):
        last = min(first + stride, t)  # the final block may be shorter: it still ends at a window's end
        lo = last - window
        target = torch.zeros_like(chains[:, lo:last])
        target[:, first - lo:] = 1
        imp = impute(denoiser, Batch(x=chains[:, lo:last], cond=cond), target, n_samples=1, seed=seed + k,
                     conditional_model=True, **sampling)
        chains[:, first:last] = imp.samples[:, 0, first - lo:]
        nfe += imp.nfe
    hidden = torch.zeros_like(batch.x)
    hidden[:, given:] = 1
    return Imputation(samples=chains.reshape(b, n_samples, *batch.x.shape[1:]), truth=batch.x, given=1 - hidden,
                      target=hidden, cond=dict(batch.cond), nfe=nfe, seconds=time.perf_counter() - start)


__all__ = ["predict_autoregressive"]
