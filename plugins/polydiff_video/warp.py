"""A motion-compensated output head: every predicted frame as a soft mixture of whole-frame translations
of the latest wholly given frame before it (``video_unet`` option ``warp``).

A U-Net has to redraw an object in every frame it predicts, and a small one trained for minutes
blurs or changes its shape (on moving digits it kept the motion but lost the digit's identity).
Video prediction nets have long built frames by moving pixels of an earlier frame instead (CDNA,
Finn et al. 2016; dynamic filter networks, De Brabandere et al. 2016). This head does that with one
translation per frame: the U-Net's own prediction ``guess`` of a frame only chooses among the
translations of its source frame, by the softmax of their negative mean squared distance to the guess
(temperature ``tau``), and a gate ``g`` mixes the result with the guess; ``ln tau`` and the gate's logit
are learnt, each affine in ``c_noise = ln(sigma) / 4``:

    D_t = g * sum_s softmax_s(-|shift_s(source_t) - guess_t|^2 / tau) shift_s(source_t) + (1 - g) * guess_t

At a high noise level the mixture spreads over the translations the given frames leave possible (a
blurred but correctly shaped object); at a low one it picks one, so where the gate is near 1 a sampled
frame is the source frame moved pixel for pixel. Exact for one rigidly moving object on a plain
background; the gate leaves the rest (deformation, several objects, things coming into view) to the
U-Net. The output is the denoised frame, so a model with this head needs ``parameterization = "x0"``
(c_skip = 0).

Sources are whole given frames (the masks ``future_frames``, ``middle_frames``, ``video_mixed``): a
frame with only some pixels given is predicted, not used as a source, and with pixel masks
(``random_ratio``) no frame is a source and the head passes the U-Net's output through.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .motion import latest_given_before

# The head's two scalars are stored divided by this: Adam moves a parameter by about lr per step
# whatever its gradient, too slowly for a gate logit that has to travel several units in a few
# thousand steps (measured in docs/plugins/video.md)
PARAM_SCALE = 10.0


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
        self.log_tau = nn.Parameter(torch.tensor([-3.0, 0.0]) / PARAM_SCALE)  # ln tau = -3 + 0 * c_noise at first
        self.gate = nn.Parameter(torch.tensor([3.0, 0.0]) / PARAM_SCALE)  # gate 0.95: start from the moved frame

    def _padded(self, frames: Tensor) -> Tensor:
        r = self.radius
        return F.pad(frames, (r, r, r, r), value=self.background)

    def distances(self, source: Tensor, guess: Tensor) -> Tensor:
        """Mean squared distance between every translation of ``source`` and ``guess`` (``[N, C, H, W]``
        each): ``[N, (2 radius + 1)^2]``. Candidate ``s = i (2 radius + 1) + j`` is the translation by
        ``(radius - i, radius - j)`` pixels (down, right), from ``(radius, radius)`` to ``(-radius, -radius)``.
        As |a|^2 - 2 a.b + |b|^2 with grouped convolutions, in float32 (the difference cancels)."""
        n, ch, h, w = source.shape
        with torch.autocast(source.device.type, enabled=False):
            padded, guess = self._padded(source.float()), guess.float()
            cross = F.conv2d(padded.reshape(1, n * ch, *padded.shape[-2:]), guess.reshape(n * ch, 1, h, w),
                             groups=n * ch)
            own = F.avg_pool2d(padded.square().sum(1, keepdim=True), (h, w), stride=1) * (h * w)  # |translation|^2
            total = own.reshape(n, -1) - 2 * cross.reshape(n, ch, -1).sum(1) + guess.square().flatten(1).sum(1)[:, None]
            return total / (ch * h * w)

    def mix(self, source: Tensor, weights: Tensor) -> Tensor:
        """``sum_s weights[:, s] * shift_s(source)`` (candidates as in :meth:`distances`): ``[N, C, H, W]``."""
        n, ch, h, w = source.shape
        padded = self._padded(source)
        side = 2 * self.radius + 1
        kernel = weights.to(source.dtype).reshape(n, 1, side, side).repeat_interleave(ch, dim=0)
        return F.conv2d(padded.reshape(1, n * ch, *padded.shape[-2:]), kernel, groups=n * ch).reshape(n, ch, h, w)

    def forward(self, guess: Tensor, x_cond: Tensor, cond_mask: Tensor, c_noise: Tensor) -> Tensor:
        """``guess``, ``x_cond``, ``cond_mask``: clips ``[B, T, C, H, W]``; ``c_noise`` ``[B]`` or a scalar.
        Frames with no wholly given frame before them, and wholly given frames, keep the guess. Every
        frame goes through the head (no data-dependent indexing: no device sync, and every parameter
        gets a gradient in every step, as DistributedDataParallel requires)."""
        b, t = guess.shape[:2]
        whole = cond_mask.flatten(2).amin(-1) > 0  # [B, T]: wholly given frames, the possible sources
        before = latest_given_before(whole)
        has_source = (before >= 0) & ~whole
        rows = torch.arange(b, device=guess.device)[:, None]
        source = (x_cond * cond_mask)[rows, before.clamp_min(0)].flatten(0, 1)  # [B*T, C, H, W]
        flat = guess.flatten(0, 1)
        noise = c_noise.reshape(-1).expand(b).to(guess.dtype).repeat_interleave(t)[:, None]  # [B*T, 1]
        log_tau, gate_logit = (PARAM_SCALE * (p[0] + p[1] * noise) for p in (self.log_tau, self.gate))
        weights = torch.softmax(-self.distances(source, flat) / torch.exp(log_tau.float()), dim=-1)
        gate = torch.sigmoid(gate_logit)[..., None, None]
        mixed = (gate * self.mix(source, weights) + (1 - gate) * flat).reshape(guess.shape)
        return torch.where(has_source.reshape(b, t, *([1] * (guess.ndim - 2))), mixed, guess)


__all__ = ["PARAM_SCALE", "TranslationMixture"]
