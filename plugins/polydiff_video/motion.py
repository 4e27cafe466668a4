"""Global-motion extrapolation of given frames: the classical motion-compensated prediction of video
coding, as a conditioning input and as a baseline.

For a frame t, take the two latest given frames before it (s2 < s1 < t), find the integer
translation that best maps frame s2 onto s1 (least squared difference over shifts of at most
``radius`` pixels per axis, in [0, 1] intensities with black filling what moves in), and move frame
s1 on by that velocity times ``t - s1``. One translation per clip and frame: exact for one rigidly
moving object or a panning camera, the last frame for a static scene; the model learns the rest
(bounces, several objects, deformation).
"""

from __future__ import annotations

import torch
from torch import Tensor


def translate(frames: Tensor, shift: Tensor) -> Tensor:
    """``out[..., y, x] = frames[..., y - dy, x - dx]`` per item, 0 where that falls outside.

    Args:
        frames: ``[N, C, H, W]``.
        shift: ``[N, 2]`` integer ``(dy, dx)`` per item.
    """
    n, c, h, w = frames.shape
    shift = shift.to(device=frames.device, dtype=torch.long)
    ys = torch.arange(h, device=frames.device)[None, :, None] - shift[:, 0, None, None]  # [N, H, 1]
    xs = torch.arange(w, device=frames.device)[None, None, :] - shift[:, 1, None, None]  # [N, 1, W]
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)  # [N, H, W]
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    return frames.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w) * valid[:, None].to(frames.dtype)


def global_shift(src: Tensor, dst: Tensor, radius: int) -> Tensor:
    """The integer ``(dy, dx)`` in ``[-radius, radius]^2`` with the least squared difference between
    ``translate(src, shift)`` and ``dst`` (``[N, C, H, W]`` each, background 0), per item; ties go to
    the smaller shift. Returns ``[N, 2]`` longs."""
    r = torch.arange(-radius, radius + 1, device=src.device)
    shifts = torch.cartesian_prod(r, r)  # [S, 2]
    n = src.shape[0]
    ssd = torch.stack([(translate(src, s.expand(n, 2)) - dst).square().flatten(1).sum(1) for s in shifts])  # [S, N]
    ssd = ssd + 1e-6 * shifts.abs().sum(1, keepdim=True).to(ssd.dtype)  # prefer the smaller of equal shifts
    return shifts[ssd.argmin(0)]


def latest_given_before(given: Tensor) -> Tensor:
    """For frames ``given`` ``[B, T]`` (bool), the index of the latest given frame strictly before each
    frame, -1 where none is: ``[B, T]`` longs."""
    b, t = given.shape
    idx = torch.arange(t, device=given.device)
    latest = torch.where(given, idx, -1).cummax(1).values  # the latest given frame at or before each frame
    return torch.cat([latest.new_full((b, 1), -1), latest[:, :-1]], dim=1)


def extrapolated_frames(x_cond: Tensor, cond_mask: Tensor, radius: int) -> tuple[Tensor, Tensor]:
    """For every frame of clips ``[B, T, C, H, W]`` (model units, -1 = black), the latest given frame
    before it moved on by the global motion between the two latest given frames before it (see the
    module docstring). Returns the frames ``[B, T, C, H, W]`` and ``[B, T]`` booleans: whether two
    given frames precede the frame (elsewhere the frame is black)."""
    b, t = x_cond.shape[:2]
    given = cond_mask.reshape(b, t, -1).amax(-1) > 0
    idx = torch.arange(t, device=x_cond.device)
    s1 = latest_given_before(given)
    s2 = torch.where(s1 >= 0, s1.gather(1, s1.clamp_min(0)), -1)  # the latest given before s1
    valid = s2 >= 0
    rows = torch.arange(b, device=x_cond.device)[:, None].expand(b, t)
    unit = (x_cond + 1) / 2  # background 0 for the translations' black fill
    a, c = unit[rows, s2.clamp_min(0)].flatten(0, 1), unit[rows, s1.clamp_min(0)].flatten(0, 1)
    step = global_shift(a, c, radius).to(x_cond.dtype)  # [B*T, 2]: the motion from s2 to s1
    ratio = ((idx[None] - s1) / (s1 - s2).clamp_min(1)).to(x_cond.dtype).reshape(-1, 1)
    moved = translate(c, torch.round(step * ratio)).reshape(x_cond.shape)
    return torch.where(valid[..., None, None, None], moved * 2 - 1, -torch.ones_like(moved)), valid


__all__ = ["extrapolated_frames", "global_shift", "latest_given_before", "translate"]
