"""A motion-compensated output head: every predicted frame as a soft mixture of whole-frame translations
of the latest given frame before it (``video_unet`` option ``warp``).

A U-Net has to redraw an object in every frame it predicts, and a small one trained for minutes
blurs or changes its shape (on moving digits it kept the motion but lost the digit's identity).
Video prediction nets have long built frames by moving pixels of an earlier frame instead (CDNA,
Finn et al. 2016; dynamic filter networks, De Brabandere et al. 2016). This head does that with one
translation per frame: the U-Net's own prediction ``guess`` of a frame only chooses among the
translations of its source frame, by the softmax of their negative mean squared distance to the guess
(a learnt temperature per noise level), and a learnt gate per noise level mixes the result with the guess:

    D_t = g(sigma) * sum_s softmax_s(-|shift_s(source_t) - guess_t|^2 / tau(sigma)) shift_s(source_t)
          + (1 - g(sigma)) * guess_t

At a high noise level the mixture spreads over the translations the given frames leave possible (a
blurred but correctly shaped object); at a low one it picks one, so a sampled frame is the source frame
moved, pixel for pixel. Exact for one rigidly moving object on a plain background; the gate leaves the
rest (deformation, several objects, things coming into view) to the U-Net. The output is the
denoised frame, so a model with this head needs ``parameterization = "x0"`` (c_skip = 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .fill import last_frame_fill

SPEED = 10.0  # the head's two scalars move this much faster than the net's weights (see __init__)


class TranslationMixture(nn.Module):
    """The ``warp`` head: see the module docstring.

    Args:
        radius: the largest translation in pixels per axis, ``(2 radius + 1)^2`` candidates; it must
            cover how far an object moves from the source frame to the farthest predicted frame.
        background: the value that moves in from outside the frame (-1: black in model units).
    """

    def __init__(self, radius: int, background: float = -1.0) -> None:
        super().__init__()
        if radius < 1:
            raise ValueError(f"warp = {radius}: the translation radius must be >= 1 pixel (0 turns the head off)")
        self.radius, self.background = radius, background
        # log temperature and gate logit, each affine in c_noise = ln(sigma) / 4 and stored divided by
        # SPEED: Adam moves a parameter by about lr per step whatever its gradient, and at 2e-3 the gate
        # logit rose from 0 to 1.3 in 1100 steps, leaving 13% of the U-Net's blur in the sampled frames
        self.log_tau = nn.Parameter(torch.tensor([-3.0, 0.0]) / SPEED)
        self.gate = nn.Parameter(torch.tensor([3.0, 0.0]) / SPEED)  # 0.95: start from the moved frame

    def _padded(self, frames: Tensor) -> Tensor:
        r = self.radius
        return F.pad(frames, (r, r, r, r), value=self.background)

    def distances(self, source: Tensor, guess: Tensor) -> Tensor:
        """Mean squared distance between every translation of ``source`` and ``guess`` (``[N, C, H, W]``
        each): ``[N, (2 radius + 1)^2]``, row-major over the shifts. As |a|^2 - 2 a.b + |b|^2 with grouped
        convolutions: the stack of all translations would be (2 radius + 1)^2 frames per frame."""
        n, c, h, w = source.shape
        padded = self._padded(source)
        cross = F.conv2d(padded.reshape(1, n * c, *padded.shape[-2:]), guess.reshape(n * c, 1, h, w), groups=n * c)
        own = F.avg_pool2d(padded.square().sum(1, keepdim=True), (h, w), stride=1) * (h * w)  # |translation|^2
        total = own.reshape(n, -1) - 2 * cross.reshape(n, c, -1).sum(1) + guess.square().flatten(1).sum(1, keepdim=True)
        return total / (c * h * w)

    def mix(self, source: Tensor, weights: Tensor) -> Tensor:
        """``sum_s weights[:, s] * shift_s(source)``: ``[N, C, H, W]``."""
        n, c, h, w = source.shape
        padded = self._padded(source)
        side = 2 * self.radius + 1
        kernel = weights.reshape(n, 1, side, side).repeat_interleave(c, dim=0)
        return F.conv2d(padded.reshape(1, n * c, *padded.shape[-2:]), kernel, groups=n * c).reshape(n, c, h, w)

    def forward(self, guess: Tensor, x_cond: Tensor, cond_mask: Tensor, c_noise: Tensor) -> Tensor:
        """``guess``, ``x_cond``, ``cond_mask``: clips ``[B, T, C, H, W]``; ``c_noise`` ``[B]`` or a scalar.
        Frames with no given frame at or before them keep the guess; given frames too (they are not scored)."""
        b, t = guess.shape[:2]
        frame_given = cond_mask.flatten(2).amax(-1) > 0  # [B, T]
        has_source = ((torch.cumsum(frame_given.to(torch.int64), 1) > 0) & ~frame_given).flatten()  # [B*T]
        source = last_frame_fill(x_cond * cond_mask, cond_mask)  # the latest given frame at or before each frame
        rows = has_source.nonzero().flatten()  # only the predicted frames
        if not len(rows):
            return guess
        src = source.flatten(0, 1)[rows].to(guess.dtype)  # [N, C, H, W]
        flat = guess.flatten(0, 1)[rows]
        c = c_noise.reshape(-1).expand(b).to(guess.dtype).repeat_interleave(t)[rows, None]  # [N, 1]
        dist = self.distances(src, flat)  # [N, S]
        log_tau, gate_logit = (SPEED * (p[0] + p[1] * c) for p in (self.log_tau, self.gate))
        weights = torch.softmax(-dist / torch.exp(log_tau), dim=-1)
        gate = torch.sigmoid(gate_logit)[..., None, None]
        mixed = gate * self.mix(src, weights) + (1 - gate) * flat
        out = guess.flatten(0, 1).index_copy(0, rows, mixed)
        return out.reshape(guess.shape)


__all__ = ["TranslationMixture"]
