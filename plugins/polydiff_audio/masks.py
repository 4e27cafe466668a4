"""Target masks over time for spectrograms ``[B, 1, n_mels, frames]``: a gap to inpaint, the end
of each clip to continue, or either with random lengths for training.
``fn(observed, generator, **options) -> target`` (target <= observed).

Lengths are given in milliseconds (``ms``, converted with ``frame_ms``, the codec's hop in ms:
16 for the default 128 samples at 8 kHz) or in frames (``frames`` > 0 wins). Only real frames
count: a frame is real when any of its entries is observed, so padding never becomes a target.
"""

from __future__ import annotations

import torch
from torch import Tensor

from polydiff import MaskStrategySpec


def _real_frames(observed: Tensor, name: str) -> tuple[Tensor, Tensor]:
    if observed.ndim != 4:
        raise ValueError(f"{name}: audio masks need spectrogram masks [B, 1, n_mels, frames], got shape "
                         f"{list(observed.shape)}")
    real = observed.amax(dim=(1, 2)) > 0  # [B, T]
    t = torch.arange(observed.shape[-1], device=observed.device)
    length = torch.where(real, t + 1, torch.zeros_like(t)).amax(dim=1)  # last real frame + 1
    return real, length


def _frames(ms: float, frames: int, frame_ms: float, name: str) -> int:
    if frames < 0 or ms < 0 or frame_ms <= 0:
        raise ValueError(f"{name}: need ms >= 0, frames >= 0 and frame_ms > 0, got {ms}, {frames}, {frame_ms}")
    k = frames if frames > 0 else round(ms / frame_ms)
    if k < 1:
        raise ValueError(f"{name}: the gap is shorter than one frame ({ms} ms at {frame_ms} ms per frame); "
                         "give ms >= frame_ms or frames >= 1")
    return k


def _gap_of(observed: Tensor, generator: torch.Generator, gap: Tensor, name: str) -> Tensor:
    """A gap of ``gap[b]`` frames per clip, placed uniformly at random strictly inside its real frames."""
    real, length = _real_frames(observed, name)
    if bool((length < 3).any()):
        raise ValueError(f"{name}: a clip has fewer than 3 real frames, too short for a gap with context")
    size = torch.minimum(length, gap.to(length.device) + 2) - 2  # [B]
    room = (length - size - 1).float()  # start in [1, length - size - 1]
    u = torch.rand(observed.shape[0], generator=generator, device=generator.device).to(observed.device)
    start = 1 + (u * room).long().clamp(max=(room - 1).long())
    t = torch.arange(observed.shape[-1], device=observed.device)
    inside = (t >= start[:, None]) & (t < (start + size)[:, None]) & real
    return observed * inside[:, None, None, :].to(observed.dtype)


def time_gap(observed: Tensor, generator: torch.Generator, *, ms: float = 200.0, frames: int = 0,
             frame_ms: float = 16.0) -> Tensor:
    """Every mel bin of ``ms`` milliseconds (or ``frames`` frames) of each clip, placed uniformly at
    random strictly inside its real frames (at least one frame of context on each side). A clip too
    short for the gap gets the longest gap that leaves that context."""
    gap = _frames(ms, frames, frame_ms, "time_gap")
    return _gap_of(observed, generator, torch.full((observed.shape[0],), gap), "time_gap")


def _tail_of(observed: Tensor, tail: Tensor, name: str) -> Tensor:
    """The last ``tail[b]`` real frames of each clip, always keeping at least one as the prompt."""
    real, length = _real_frames(observed, name)
    if bool((length < 2).any()):
        raise ValueError(f"{name}: a clip has fewer than 2 real frames, nothing to continue from")
    size = torch.minimum(length, tail.to(length.device) + 1) - 1
    t = torch.arange(observed.shape[-1], device=observed.device)
    hidden = (t >= (length - size)[:, None]) & real
    return observed * hidden[:, None, None, :].to(observed.dtype)


def continuation(observed: Tensor, generator: torch.Generator, *, ms: float = 250.0, frames: int = 0,
                 frame_ms: float = 16.0) -> Tensor:
    """The last ``ms`` milliseconds (or ``frames`` frames) of each clip's real frames: continue the
    sound from its beginning. At least one real frame is always kept as the prompt."""
    k = _frames(ms, frames, frame_ms, "continuation")
    return _tail_of(observed, torch.full((observed.shape[0],), k), "continuation")


def time_mixed(observed: Tensor, generator: torch.Generator, *, min_ms: float = 50.0, max_ms: float = 400.0,
               continuation: float = 0.3, frame_ms: float = 16.0) -> Tensor:
    """For training one conditional model for both tasks: per clip, with probability ``continuation``
    its last ``min_ms..max_ms`` milliseconds, otherwise a gap of ``min_ms..max_ms`` inside it (lengths
    uniform in whole frames), so the model sees every gap length it will be asked to fill."""
    lo, hi = _frames(min_ms, 0, frame_ms, "time_mixed"), _frames(max_ms, 0, frame_ms, "time_mixed")
    if hi < lo or not 0.0 <= continuation <= 1.0:
        raise ValueError(f"time_mixed: need min_ms <= max_ms and 0 <= continuation <= 1, got {min_ms}, {max_ms}, "
                         f"{continuation}")
    b, dev = observed.shape[0], generator.device
    k = torch.randint(lo, hi + 1, (b,), generator=generator, device=dev).to(observed.device)
    tail = torch.rand(b, generator=generator, device=dev).to(observed.device) < continuation
    gap = _gap_of(observed, generator, k, "time_mixed")
    return torch.where(tail[:, None, None, None], _tail_of(observed, k, "time_mixed"), gap)


MASK_STRATEGIES = [
    MaskStrategySpec(name="time_gap", fn=time_gap, options={"ms": 200.0, "frames": 0, "frame_ms": 16.0},
                     description="a gap of `ms` (or `frames`) across all mel bins inside each clip (audio inpainting)"),
    MaskStrategySpec(name="continuation", fn=continuation, options={"ms": 250.0, "frames": 0, "frame_ms": 16.0},
                     description="the last `ms` (or `frames`) of each clip (audio continuation)"),
    MaskStrategySpec(name="time_mixed", fn=time_mixed,
                     options={"min_ms": 50.0, "max_ms": 400.0, "continuation": 0.3, "frame_ms": 16.0},
                     description="per clip a gap or a continuation of min_ms..max_ms (conditional training)"),
]

__all__ = ["MASK_STRATEGIES", "continuation", "time_gap", "time_mixed"]
