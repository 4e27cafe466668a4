"""Mask strategies for images: which pixels are hidden (the *target*) for inpainting and outpainting.

Each is ``fn(observed, generator, **options) -> target`` on packed ``[B, C, H, W]`` masks; a hidden
pixel is hidden in every channel; ``target <= observed``. They serve both conditional (masked)
training (``train.mask_strategy``) and evaluation (``polydiff impute --mask``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

SIDES = ("left", "right", "top", "bottom")


def _check(observed: Tensor) -> tuple[int, int, int]:
    if observed.ndim != 4:
        raise ValueError(f"image mask strategies need [B, C, H, W] masks, got shape {list(observed.shape)}")
    b, _, h, w = observed.shape
    return b, h, w


def _fraction(name: str, value: float, low: float = 0.0) -> float:
    if not low < value <= 1:
        raise ValueError(f"{name} must be in ({low}, 1], got {value}")
    return float(value)


def _box(h: int, w: int, top: Tensor, left: Tensor, bh: Tensor, bw: Tensor) -> Tensor:
    """``[B, H, W]`` masks, 1 inside the boxes ``[top, top+bh) x [left, left+bw)``."""
    rows = torch.arange(h, device=top.device)[None, :, None]
    cols = torch.arange(w, device=top.device)[None, None, :]
    t, lf = top[:, None, None], left[:, None, None]
    return ((rows >= t) & (rows < t + bh[:, None, None]) & (cols >= lf) & (cols < lf + bw[:, None, None])).float()


def _finish(region: Tensor, observed: Tensor) -> Tensor:
    return region[:, None].to(observed.device, torch.float32).expand(observed.shape) * observed.float()


def center_box(observed: Tensor, generator: torch.Generator, *, size: float = 0.5) -> Tensor:
    """Hide a centred box covering ``size`` of each side (inpainting)."""
    b, h, w = _check(observed)
    _fraction("center_box size", size)
    bh, bw = max(1, round(size * h)), max(1, round(size * w))
    full = lambda v: torch.full((b,), v)  # noqa: E731
    return _finish(_box(h, w, full((h - bh) // 2), full((w - bw) // 2), full(bh), full(bw)), observed)


def half(observed: Tensor, generator: torch.Generator, *, side: str = "random", fraction: float = 0.5) -> Tensor:
    """Hide ``fraction`` of the image on one ``side`` (left, right, top, bottom, or ``random`` per
    sample): outpainting the hidden part from the visible one."""
    b, h, w = _check(observed)
    _fraction("half fraction", fraction)
    if side not in (*SIDES, "random"):
        raise ValueError(f"half: side must be one of {', '.join(SIDES)} or random, got {side!r}")
    dev = generator.device
    which = (torch.randint(4, (b,), generator=generator, device=dev).cpu() if side == "random"
             else torch.full((b,), SIDES.index(side)))
    ph, pw = max(1, round(fraction * h)), max(1, round(fraction * w))
    zeros, full = torch.zeros(b, dtype=torch.long), lambda v: torch.full((b,), v)
    top = torch.where(which == 3, full(h - ph), zeros)  # bottom
    left = torch.where(which == 1, full(w - pw), zeros)  # right
    bh = torch.where(which >= 2, full(ph), full(h))
    bw = torch.where(which >= 2, full(w), full(pw))
    return _finish(_box(h, w, top, left, bh, bw), observed)


def random_boxes(observed: Tensor, generator: torch.Generator, *, boxes: int = 3, min_size: float = 0.2,
                 max_size: float = 0.5) -> Tensor:
    """Hide the union of ``boxes`` boxes per sample, each side a uniform fraction in
    [``min_size``, ``max_size``] of the image side, placed uniformly inside the image."""
    b, h, w = _check(observed)
    if boxes < 1:
        raise ValueError(f"random_boxes: boxes must be >= 1, got {boxes}")
    _fraction("random_boxes min_size", min_size)
    _fraction("random_boxes max_size", max_size)
    if min_size > max_size:
        raise ValueError(f"random_boxes: min_size {min_size} > max_size {max_size}")
    dev = generator.device
    region = torch.zeros(b, h, w)
    for _ in range(boxes):
        u = torch.rand(4, b, generator=generator, device=dev).cpu()
        bh = (min_size + (max_size - min_size) * u[0]).mul(h).round().clamp(1, h).long()
        bw = (min_size + (max_size - min_size) * u[1]).mul(w).round().clamp(1, w).long()
        top = (u[2] * (h - bh + 1)).floor().long().clamp(max=h - 1)
        left = (u[3] * (w - bw + 1)).floor().long().clamp(max=w - 1)
        region = torch.maximum(region, _box(h, w, top, left, bh, bw))
    return _finish(region, observed)


def mixed(observed: Tensor, generator: torch.Generator, *, size: float = 0.5) -> Tensor:
    """For training one model for every task: per sample one of center_box (with ``size``), half
    (random side) and random_boxes, chosen uniformly."""
    b, _, _ = _check(observed)
    masks = torch.stack([center_box(observed, generator, size=size), half(observed, generator),
                         random_boxes(observed, generator)])
    pick = torch.randint(3, (b,), generator=generator, device=generator.device).to(observed.device)
    return masks[pick, torch.arange(b, device=observed.device)]


STRATEGIES: dict[str, tuple[Callable[..., Tensor], dict[str, Any], str]] = {
    "center_box": (center_box, {"size": 0.5}, "hide a centred box covering `size` of each side (inpainting)"),
    "half": (half, {"side": "random", "fraction": 0.5},
             "hide `fraction` of the image on one side (left/right/top/bottom/random): outpainting"),
    "random_boxes": (random_boxes, {"boxes": 3, "min_size": 0.2, "max_size": 0.5},
                     "hide the union of `boxes` random boxes of side min_size..max_size"),
    "image_mixed": (mixed, {"size": 0.5}, "per sample one of center_box, half, random_boxes (training)"),
}

__all__ = ["STRATEGIES", "center_box", "half", "mixed", "random_boxes"]
