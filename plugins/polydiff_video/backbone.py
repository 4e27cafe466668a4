"""A factorized space-time U-Net for clips ``[B, T, C, H, W]`` (Ho et al. 2022, "Video Diffusion
Models", Sec. 3): the image plugin's U-Net runs on every frame (2-D convolutions, spatial attention)
and after each of its residual blocks a temporal module mixes the frames of a clip, pixel by pixel:
self-attention over time with a frame-position embedding, or a 1-D convolution over time.

Nothing of the U-Net is copied: :class:`polydiff_image.unet.UNet` takes a ``mixer`` factory and
exposes ``embed`` / ``inputs`` / ``body``; this module only adds the temporal mixers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff_image.unet import PositionalEmbedding, UNet, groups_for, zero_init

from .motion import extrapolated_frames
from .warp import TranslationMixture

TEMPORAL = ("attention", "conv", "both")


def _per_pixel(h: Tensor, frames: int) -> tuple[Tensor, tuple[int, int, int, int, int]]:
    """``[B*T, C, H, W]`` -> ``[B*H*W, T, C]`` (one sequence over time per pixel)."""
    bt, c, hh, ww = h.shape
    b = bt // frames
    seq = h.reshape(b, frames, c, hh, ww).permute(0, 3, 4, 1, 2).reshape(b * hh * ww, frames, c)
    return seq, (b, frames, c, hh, ww)


def _back(s: Tensor, shape: tuple[int, int, int, int, int]) -> Tensor:
    b, t, c, hh, ww = shape
    return s.reshape(b, hh, ww, t, c).permute(0, 3, 4, 1, 2).reshape(b * t, c, hh, ww)


class TemporalAttention(nn.Module):
    """Multi-head self-attention across the frames of each clip at every pixel; frames know their
    place through a sinusoidal frame-index embedding added to the queries and keys. The output
    projection starts at zero, so an untrained block is the identity (the image U-Net per frame)."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"temporal attention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.pos = PositionalEmbedding(channels, scale=1.0)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = zero_init(nn.Linear(channels, channels))

    def forward(self, h: Tensor, frames: int) -> Tensor:
        s, shape = _per_pixel(self.norm(h), frames)
        n, t, c = s.shape
        s = s + self.pos(torch.arange(t, device=h.device, dtype=h.dtype)).to(s.dtype)[None]
        q, k, v = self.qkv(s).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, t, c)
        return h + _back(self.proj(out), shape)


class TemporalConv(nn.Module):
    """GroupNorm, SiLU and a 1-D convolution over time (kernel ``kernel``, zero padding at the clip's
    ends) at every pixel; zero-initialised residual branch."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"temporal_kernel must be odd and >= 1, got {kernel}")
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.conv = zero_init(nn.Conv3d(channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0)))

    def forward(self, h: Tensor, frames: int) -> Tensor:
        bt, c, hh, ww = h.shape
        x = F.silu(self.norm(h)).reshape(bt // frames, frames, c, hh, ww).transpose(1, 2)
        return h + self.conv(x).transpose(1, 2).reshape(bt, c, hh, ww)


class TemporalMixer(nn.Module):
    """The temporal module after each residual block: attention, convolution, or conv then attention."""

    def __init__(self, channels: int, kind: str, heads: int, kernel: int) -> None:
        super().__init__()
        if kind not in TEMPORAL:
            raise ValueError(f"temporal must be one of {', '.join(TEMPORAL)}, got {kind!r}")
        self.conv = TemporalConv(channels, kernel) if kind in ("conv", "both") else None
        self.attn = TemporalAttention(channels, heads) if kind in ("attention", "both") else None

    def forward(self, h: Tensor, frames: int) -> Tensor:
        if self.conv is not None:
            h = self.conv(h, frames)
        return self.attn(h, frames) if self.attn is not None else h


def context_frames(x_cond: Tensor, cond_mask: Tensor, k: int) -> Tensor:
    """For every frame, the ``k`` given frames nearest before it (or at it; then the nearest after
    it when fewer are before), each with a channel holding its signed distance ``(t - s) / T``:
    ``[B, T, k * (C + 1), H, W]``, zeros where a clip has fewer than ``k`` given frames.

    Frame stacking as in MCVD (Voleti et al. 2022): a hidden frame sees the digit where it last was,
    so it only has to move it, instead of carrying its shape pixel by pixel through temporal layers.
    """
    b, t = x_cond.shape[:2]
    given = cond_mask.reshape(b, t, -1).amax(-1) > 0  # [B, T]: a frame counts as given if any pixel is
    idx = torch.arange(t, device=x_cond.device)
    lag = idx[:, None] - idx[None, :]  # [t, s] = t - s
    order = torch.where(lag >= 0, lag, t - lag).to(x_cond.dtype)  # the past by recency, then the future
    order = torch.where(given[:, None, :], order[None], torch.full_like(order[None], float("inf")))  # [B, t, s]
    rank, src = order.topk(min(k, t), dim=-1, largest=False)  # [B, T, k]
    valid = rank.isfinite()
    frames = x_cond[torch.arange(b, device=x_cond.device)[:, None, None], src]  # [B, T, k, C, H, W]
    dist = ((idx[None, :, None] - src).to(x_cond.dtype) / t)[..., None, None, None].expand(*src.shape, 1,
                                                                                          *x_cond.shape[3:])
    ctx = torch.cat([frames, dist], dim=3) * valid[..., None, None, None].to(x_cond.dtype)
    if k > t:  # more context than frames: pad with empty slots
        ctx = torch.cat([ctx, ctx.new_zeros(b, t, k - t, *ctx.shape[3:])], dim=2)
    return ctx.reshape(b, t, -1, *x_cond.shape[3:])


class VideoUNet(nn.Module):
    """Space-time U-Net ``F(x_in, c_noise, *, label, x_cond, cond_mask) -> out`` on ``[B, T, C, H, W]``.

    Args:
        frames, in_channels, resolution: the clip shape ``T``, ``C`` and ``(H, W)``.
        temporal: ``"attention"``, ``"conv"`` or ``"both"`` (see :class:`TemporalMixer`).
        temporal_kernel: kernel of the temporal convolution (odd).
        num_classes, conditional, and the remaining arguments: as :class:`polydiff_image.unet.UNet`
            (label ``-1`` = no label; ``conditional``: ``x_cond`` / ``cond_mask`` of the clip's
            shape become extra input channels of every frame).
        context: with ``conditional``, every frame also gets its ``context`` nearest given frames and
            their distances as input channels (:func:`context_frames`); 0: off.
        extrapolate: with ``conditional``, every frame also gets the latest given frame before it
            moved on by the global motion between the two latest given frames before it, found
            among shifts of at most ``extrapolate`` pixels, and a channel saying whether it exists
            (:func:`polydiff_video.motion.extrapolated_frames`); 0: off.
        warp: with ``conditional``, every predicted frame becomes a learnt mixture of translations of
            at most ``warp`` pixels of the latest wholly given frame before it and the U-Net's output
            (:class:`polydiff_video.warp.TranslationMixture`); needs ``parameterization = "x0"`` and
            not ``prior_fill = "residual"``; 0: off.
    """

    def __init__(self, *, frames: int, in_channels: int, resolution: tuple[int, int], channels: int = 32,
                 channel_mult: str | int = "1,2", num_res_blocks: int = 1, attention_resolution: int = 0,
                 heads: int = 4, dropout: float = 0.0, embedding: str = "fourier", temporal: str = "attention",
                 temporal_kernel: int = 3, num_classes: int | None = None, conditional: bool = False,
                 patch: int = 1, context: int = 0, extrapolate: int = 0, warp: int = 0) -> None:
        super().__init__()
        if warp < 0 or (warp and not conditional):
            raise ValueError(f"warp = {warp}: it must be >= 0, and > 0 needs conditional = true (it moves the "
                             "given frames of a masked, conditional model)")
        if extrapolate < 0 or (extrapolate and not conditional):
            raise ValueError(f"extrapolate = {extrapolate}: it must be >= 0, and > 0 needs conditional = true (it "
                             "moves the given frames of a masked, conditional model)")
        if context < 0 or (context and not conditional):
            raise ValueError(f"context = {context}: it must be >= 0, and > 0 needs conditional = true (the context "
                             "frames are the given frames of a masked, conditional model)")
        if temporal not in TEMPORAL:
            raise ValueError(f"temporal must be one of {', '.join(TEMPORAL)}, got {temporal!r}")
        TemporalConv(1, temporal_kernel)  # validates the kernel before building the net
        self.frames, self.conditional, self.context, self.extrapolate = frames, conditional, context, extrapolate
        self.unet = UNet(in_channels=in_channels, resolution=resolution, channels=channels, channel_mult=channel_mult,
                         num_res_blocks=num_res_blocks, attention_resolution=attention_resolution, heads=heads,
                         dropout=dropout, embedding=embedding, num_classes=num_classes, conditional=conditional,
                         mixer=lambda ch: TemporalMixer(ch, temporal, heads, temporal_kernel), patch=patch,
                         extra_channels=context * (in_channels + 1) + (in_channels + 1 if extrapolate else 0))
        self.warp_head = TranslationMixture(warp) if warp else None
        # read by polydiff's build_denoiser: the head's output is the denoised clip, no c_skip * x may be added
        self.required_parameterization = ("x0", f"model.warp = {warp} makes its output the denoised clip") if warp \
            else None

    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None, x_cond: Tensor | None = None,
                cond_mask: Tensor | None = None, padding: Tensor | None = None) -> Tensor:
        u = self.unet
        want = [self.frames, u.in_channels, *u.resolution]
        if x.ndim != 5 or list(x.shape[1:]) != want:
            raise ValueError(f"VideoUNet expects clips [B, {', '.join(map(str, want))}], got {list(x.shape)}")
        if padding is not None:  # clips are fixed-size; honour the contract anyway
            x = x * padding
        b, t = x.shape[:2]
        flat = lambda v: None if v is None else v.reshape(b * t, *v.shape[2:])  # noqa: E731
        h = u.inputs(flat(x), x_cond=flat(x_cond), cond_mask=flat(cond_mask))  # type: ignore[arg-type]
        if self.context:
            assert x_cond is not None and cond_mask is not None  # inputs() checked
            ctx = context_frames(x_cond.to(x.dtype), cond_mask, self.context)
            h = torch.cat([h, ctx.reshape(b * t, *ctx.shape[2:])], dim=1)
        if self.extrapolate:
            assert x_cond is not None and cond_mask is not None
            moved, valid = extrapolated_frames(x_cond.to(x.dtype), cond_mask, self.extrapolate)
            flag = valid.to(x.dtype)[..., None, None, None].expand(b, t, 1, *moved.shape[3:])
            h = torch.cat([h, torch.cat([moved, flag], dim=2).reshape(b * t, -1, *moved.shape[3:])], dim=1)
        rep = lambda v: None if v is None else v.repeat_interleave(t, dim=0)  # noqa: E731
        emb = u.embed(rep(c_noise.reshape(-1).expand(b)), rep(label))  # type: ignore[arg-type]
        out = u.body(h, emb, frames=t).reshape(x.shape).to(x.dtype)
        if self.warp_head is not None:
            assert x_cond is not None and cond_mask is not None
            out = self.warp_head(out, x_cond.to(x.dtype), cond_mask.to(x.dtype), c_noise)
        return out


def build_video_unet(dataset: object, *, channels: int = 32, channel_mult: str | int = "1,2", num_res_blocks: int = 1,
                     attention_resolution: int = 0, heads: int = 4, dropout: float = 0.0, embedding: str = "fourier",
                     temporal: str = "attention", temporal_kernel: int = 3, class_cond: bool = False,
                     conditional: bool = False, patch: int = 1, context: int = 0,
                     extrapolate: int = 0, warp: int = 0) -> VideoUNet:
    """The ``video_unet`` backbone for a dataset of clips ``[T, C, H, W]``."""
    shape = tuple(dataset.sample_shape)  # type: ignore[attr-defined]
    if len(shape) != 4:
        raise ValueError(f"the video_unet backbone needs clips [T, C, H, W], got per-sample shape {list(shape)}")
    num_classes = getattr(dataset, "num_classes", None)
    if class_cond and not num_classes:
        raise ValueError("model.class_cond = true needs a labelled dataset (moving_digits); this one has no labels")
    return VideoUNet(frames=shape[0], in_channels=shape[1], resolution=(shape[2], shape[3]), channels=channels,
                     channel_mult=channel_mult, num_res_blocks=num_res_blocks,
                     attention_resolution=attention_resolution, heads=heads, dropout=dropout, embedding=embedding,
                     temporal=temporal, temporal_kernel=temporal_kernel,
                     num_classes=num_classes if class_cond else None, conditional=conditional, patch=patch,
                     context=context, extrapolate=extrapolate, warp=warp)


VIDEO_UNET_OPTIONS = {"channels": 32, "channel_mult": "1,2", "num_res_blocks": 1, "attention_resolution": 0,
                      "heads": 4, "dropout": 0.0, "embedding": "fourier", "temporal": "attention",
                      "temporal_kernel": 3, "class_cond": False, "conditional": False, "patch": 1,
                      "context": 0, "extrapolate": 0, "warp": 0}

__all__ = ["VIDEO_UNET_OPTIONS", "TemporalAttention", "TemporalConv", "TemporalMixer", "VideoUNet",
           "build_video_unet", "context_frames"]
