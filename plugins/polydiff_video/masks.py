"""Mask strategies for clips: which whole frames are hidden (the *target*).

``future_frames`` is frame prediction (the first frames are given), ``middle_frames`` is frame
interpolation (the first and last frames are given). Each is ``fn(observed, generator, **options)
-> target`` on packed ``[B, T, C, H, W]`` masks with ``target <= observed``; they serve conditional
training (``train.mask_strategy``) and evaluation (``polydiff impute --mask``).
"""

from __future__ import annotations

import torch
from torch import Tensor


def _frames(observed: Tensor) -> tuple[int, int]:
    if observed.ndim != 5:
        raise ValueError(f"video mask strategies need [B, T, C, H, W] masks, got shape {list(observed.shape)}")
    return observed.shape[0], observed.shape[1]


def _context(given: int, b: int, low: int, high: int, generator: torch.Generator, name: str) -> Tensor:
    """``[B]`` numbers of given frames: ``given`` for all, or uniform in [low, high] per clip when 0."""
    if given < 0:
        raise ValueError(f"{name}: given must be >= 0 (0 = random per clip), got {given}")
    if given == 0:
        if high < low:
            raise ValueError(f"{name}: clips are too short to hide any frame")
        return torch.randint(low, high + 1, (b,), generator=generator, device=generator.device).cpu()
    if given > high:
        raise ValueError(f"{name}: given={given} leaves no frame to predict in clips of this length; use given <= "
                         f"{high}")
    return torch.full((b,), given)


def _finish(hidden: Tensor, observed: Tensor) -> Tensor:
    """``[B, T]`` booleans -> packed target mask (a hidden frame is hidden in every pixel)."""
    shape = (*hidden.shape, *([1] * (observed.ndim - 2)))
    return hidden.to(observed.device, torch.float32).reshape(shape).expand(observed.shape) * observed.float()


def future_frames(observed: Tensor, generator: torch.Generator, *, given: int = 2) -> Tensor:
    """Frame prediction: the first ``given`` frames are given, the rest are targets
    (``given = 0``: a random 1..T-1 per clip, to train one model for every context length)."""
    b, t = _frames(observed)
    k = _context(given, b, 1, t - 1, generator, "future_frames")
    return _finish(torch.arange(t)[None, :] >= k[:, None], observed)


def middle_frames(observed: Tensor, generator: torch.Generator, *, given: int = 1) -> Tensor:
    """Frame interpolation: the first and the last ``given`` frames are given, the middle ones are
    targets (``given = 0``: a random 1..(T-1)//2 per clip)."""
    b, t = _frames(observed)
    k = _context(given, b, 1, (t - 1) // 2, generator, "middle_frames")
    idx = torch.arange(t)[None, :]
    return _finish((idx >= k[:, None]) & (idx < t - k[:, None]), observed)


def mixed(observed: Tensor, generator: torch.Generator) -> Tensor:
    """For training one model for both tasks: per clip future_frames or middle_frames, each with a
    random context."""
    b, _ = _frames(observed)
    masks = torch.stack([future_frames(observed, generator, given=0), middle_frames(observed, generator, given=0)])
    pick = torch.randint(2, (b,), generator=generator, device=generator.device).to(observed.device)
    return masks[pick, torch.arange(b, device=observed.device)]


STRATEGIES = {
    "future_frames": (future_frames, {"given": 2},
                      "frame prediction: the first `given` frames are given, later ones hidden (0: random per clip)"),
    "middle_frames": (middle_frames, {"given": 1},
                      "frame interpolation: first and last `given` frames given, the middle hidden (0: random)"),
    "video_mixed": (mixed, {}, "per clip future_frames or middle_frames with a random context (training)"),
}

__all__ = ["STRATEGIES", "future_frames", "middle_frames", "mixed"]
