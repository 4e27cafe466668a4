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
        # log temperature and gate logit, each affine in c_noise = ln(sigma) / 4
        self.log_tau = nn.Parameter(torch.tensor([-3.0, 0.0]))
        self.gate = nn.Parameter(torch.tensor([0.0, 0.0]))

    def translations(self, frames: Tensor) -> Tensor:
        """Every translation of ``frames`` ``[N, C, H, W]`` within the radius: ``[N, C * H * W, S]``."""
        h, w = frames.shape[-2:]
        r = self.radius
        return F.unfold(F.pad(frames, (r, r, r, r), value=self.background), (h, w))

    def forward(self, guess: Tensor, x_cond: Tensor, cond_mask: Tensor, c_noise: Tensor) -> Tensor:
        """``guess``, ``x_cond``, ``cond_mask``: clips ``[B, T, C, H, W]``; ``c_noise`` ``[B]`` or a scalar.
        Frames with no given frame at or before them keep the guess; given frames too (they are not scored)."""
        b, t = guess.shape[:2]
        frame_given = cond_mask.flatten(2).amax(-1) > 0  # [B, T]
        has_source = ((torch.cumsum(frame_given.to(torch.int64), 1) > 0) & ~frame_given).flatten()  # [B*T]
        source = last_frame_fill(x_cond * cond_mask, cond_mask)  # the latest given frame at or before each frame
        rows = has_source.nonzero().flatten()  # only the predicted frames: the translations cost (2r+1)^2 frames
        stack = self.translations(source.flatten(0, 1)[rows].to(guess.dtype))  # [N, P, S]
        flat = guess.flatten(0, 1)[rows].flatten(1)  # [N, P]
        dist = (stack - flat[..., None]).square().mean(1)  # [N, S]
        c = c_noise.reshape(-1).expand(b).to(guess.dtype).repeat_interleave(t)[rows, None]  # [N, 1]
        weights = torch.softmax(-dist / torch.exp(self.log_tau[0] + self.log_tau[1] * c), dim=-1)
        moved = (stack * weights[:, None]).sum(-1)  # [N, P]
        gate = torch.sigmoid(self.gate[0] + self.gate[1] * c)
        out = guess.flatten(0, 1).flatten(1).index_copy(0, rows, gate * moved + (1 - gate) * flat)
        return out.reshape(guess.shape)

__all__ = ["TranslationMixture"]
