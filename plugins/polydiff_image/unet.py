"""A small U-Net for images (Ronneberger et al. 2015, as used by DDPM, Ho et al. 2020, and ADM,
Dhariwal & Nichol 2021): residual blocks with group norm and scale-shift noise conditioning,
self-attention at low resolution, a Fourier or sinusoidal noise-level embedding and optional class,
mask (CSDI-style) and low-resolution (super-resolution) conditioning.

The blocks are public so other plugins (video) can reuse them: :meth:`UNet.embed` and
:meth:`UNet.body` run the network on any ``[N, C, H, W]`` stack of frames, and a ``mixer`` factory
inserts extra modules (e.g. temporal attention) after every residual block, called as
``mixer_module(h, frames)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.nn import FourierEmbedding, LabelEmbedding


def groups_for(channels: int, max_groups: int = 32) -> int:
    """The largest group count <= ``max_groups`` dividing ``channels`` (GroupNorm needs a divisor)."""
    return next(g for g in range(min(max_groups, channels), 0, -1) if channels % g == 0)


def zero_init(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so a residual branch starts as the identity (ADM's practice)."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class PositionalEmbedding(nn.Module):
    """Sinusoidal embedding of a scalar (Vaswani et al. 2017; DDPM's timestep embedding).

    ``scale`` multiplies the input first: EDM's c_noise = ln(sigma)/4 lies in about [-2, 1], so the
    default 1000 spreads it over the wavelengths as DDPM's integer timesteps are."""

    def __init__(self, dim: int, max_positions: int = 10000, scale: float = 1000.0) -> None:
        super().__init__()
        self.scale = scale
        self.freqs: Tensor
        self.register_buffer("freqs", (1.0 / max_positions) ** (torch.arange(dim // 2) / (dim // 2)))

    def forward(self, c_noise: Tensor) -> Tensor:
        arg = c_noise.float()[:, None] * self.scale * self.freqs[None, :]
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-Conv twice, with the embedding as a scale and shift after the second norm
    (ADM's "scale-shift norm") and a 1x1 skip when the channel count changes."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1, self.conv1 = nn.GroupNorm(groups_for(in_ch), in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch)
        self.norm2 = nn.GroupNorm(groups_for(out_ch), out_ch)
        self.drop = nn.Dropout(dropout)
        self.conv2 = zero_init(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return self.skip(x) + h


class Attention(nn.Module):
    """Multi-head self-attention over the pixels of each image (no mixing across the batch)."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"attention: {channels} channels do not split into {heads} heads")
        self.heads = heads
        self.norm = nn.GroupNorm(groups_for(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = zero_init(nn.Conv2d(channels, channels, 1))

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 convolution."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest neighbour, then a convolution (no checkerboard artefacts)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Level(nn.Module):
    """The residual blocks (+ attention, + optional mixers) of one resolution of one path."""

    def __init__(self, in_chs: Sequence[int], out_ch: int, emb_dim: int, *, attention: bool, heads: int,
                 dropout: float, mixer: Callable[[int], nn.Module] | None) -> None:
        super().__init__()
        self.res = nn.ModuleList(ResBlock(c, out_ch, emb_dim, dropout=dropout) for c in in_chs)
        self.attn = nn.ModuleList(Attention(out_ch, heads) if attention else nn.Identity() for _ in in_chs)
        self.mix = nn.ModuleList(mixer(out_ch) for _ in in_chs) if mixer is not None else None


def parse_mult(channel_mult: str | int | Sequence[int]) -> tuple[int, ...]:
    """``"1,2,2"`` or ``(1, 2, 2)`` -> ``(1, 2, 2)``, a single level given as an int (``--model channel_mult=1``)
    -> ``(1,)``, with a clear error for anything else."""
    if isinstance(channel_mult, bool):
        raise ValueError(f"channel_mult must be comma-separated integers such as '1,2,2', got {channel_mult!r}")
    if isinstance(channel_mult, int):
        channel_mult = (channel_mult,)
    try:
        mult = tuple(int(m) for m in (channel_mult.split(",") if isinstance(channel_mult, str) else channel_mult))
    except (TypeError, ValueError):
        raise ValueError("channel_mult must be comma-separated integers such as '1,2,2', "
                         f"got {channel_mult!r}") from None
    if not mult or min(mult) < 1:
        raise ValueError(f"channel_mult needs at least one positive integer, got {channel_mult!r}")
    return mult


class UNet(nn.Module):
    """U-Net backbone ``F(x_in, c_noise, *, label, x_cond, cond_mask, lowres) -> out`` on ``[B, C, H, W]``.

    Args:
        in_channels, resolution: image channels and (H, W); both sides must be divisible by
            ``patch * 2 ** (len(channel_mult) - 1)``.
        out_channels: default ``in_channels``.
        channels, channel_mult: width of the first level and each level's multiplier.
        num_res_blocks: residual blocks per level on the way down (one more on the way up).
        attention_resolution: self-attention at every level whose smaller side is <= this (0: none).
        heads, dropout: attention heads; dropout inside residual blocks.
        embedding: ``"fourier"`` (random Fourier features, Song et al. 2021) or ``"positional"``
            (sinusoidal, DDPM) noise-level embedding.
        num_classes: class conditioning through :class:`~polydiff.nn.layers.LabelEmbedding` (label -1 = none).
        conditional: the input also gets ``x_cond`` and ``cond_mask`` (masked training, CSDI).
        lowres_channels: > 0: the input also gets ``lowres`` ``[B, lowres_channels, h, w]``, upsampled
            bilinearly to ``resolution`` (cascaded super-resolution, Saharia et al. 2021).
        extra_channels: channels the caller stacks onto :meth:`inputs` itself before :meth:`body`
            (the video U-Net's context frames).
        mixer: ``channels -> module`` inserted after every residual block, called ``m(h, frames)``.
        patch: > 1: fold each ``patch x patch`` block of pixels into channels first (pixel unshuffle)
            and unfold at the end, so every level runs at ``1 / patch`` of the side: about
            ``patch ** 2`` times cheaper (Hoogeboom et al. 2023, simple diffusion, uses the same
            downsampling). ``attention_resolution`` then refers to the patched sides.
    """

    def __init__(self, *, in_channels: int, resolution: tuple[int, int], out_channels: int | None = None,
                 channels: int = 32, channel_mult: str | int | Sequence[int] = (1, 2, 2), num_res_blocks: int = 1,
                 attention_resolution: int = 8, heads: int = 4, dropout: float = 0.0, emb_dim: int | None = None,
                 embedding: str = "fourier", num_classes: int | None = None, conditional: bool = False,
                 lowres_channels: int = 0, extra_channels: int = 0, mixer: Callable[[int], nn.Module] | None = None,
                 patch: int = 1) -> None:
        super().__init__()
        mult = parse_mult(channel_mult)
        if patch < 1:
            raise ValueError(f"patch must be >= 1, got {patch}")
        factor = patch * 2 ** (len(mult) - 1)
        h, w = resolution
        if h % factor or w % factor:
            raise ValueError(f"image size {h}x{w} is not divisible by {factor} = patch * 2**(levels-1) for "
                             f"patch {patch} and channel_mult {mult}: use fewer levels, another patch or resize "
                             "the images (data.size)")
        if num_res_blocks < 1 or channels < 1:
            raise ValueError(f"num_res_blocks and channels must be >= 1, got {num_res_blocks}, {channels}")
        self.in_channels, self.out_channels = in_channels, out_channels or in_channels
        self.resolution, self.conditional, self.lowres_channels = (h, w), conditional, lowres_channels
        self.patch = patch
        emb_dim = emb_dim or 4 * channels
        if embedding == "fourier":
            base: nn.Module = FourierEmbedding(channels)
        elif embedding == "positional":
            base = PositionalEmbedding(channels)
        else:
            raise ValueError(f"embedding must be 'fourier' or 'positional', got {embedding!r}")
        self.noise_emb = nn.Sequential(base, nn.Linear(channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.label_emb = LabelEmbedding(num_classes, emb_dim) if num_classes else None
        extra = (2 * in_channels if conditional else 0) + lowres_channels + extra_channels
        self.inp = nn.Conv2d((in_channels + extra) * patch**2, channels, 3, padding=1)

        kw = dict(heads=heads, dropout=dropout, mixer=mixer)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        skips, ch, side = [channels], channels, min(h, w) // patch
        for i, m in enumerate(mult):
            level = Level([ch] + [channels * m] * (num_res_blocks - 1), channels * m, emb_dim,
                          attention=side <= attention_resolution, **kw)  # type: ignore[arg-type]
            self.down.append(level)
            ch = channels * m
            skips += [ch] * num_res_blocks
            last = i == len(mult) - 1
            self.downsample.append(nn.Identity() if last else Downsample(ch))
            if not last:
                skips.append(ch)
                side //= 2
        self.mid = Level([ch, ch], ch, emb_dim, attention=attention_resolution > 0, **kw)  # type: ignore[arg-type]
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i, m in reversed(list(enumerate(mult))):
            ins = []
            for _ in range(num_res_blocks + 1):
                ins.append(ch + skips.pop())
                ch = channels * m
            self.up.append(Level(ins, ch, emb_dim, attention=side <= attention_resolution, **kw))  # type: ignore[arg-type]
            self.upsample.append(Upsample(ch) if i > 0 else nn.Identity())
            side *= 2 if i > 0 else 1
        self.out = nn.Sequential(nn.GroupNorm(groups_for(ch), ch), nn.SiLU(),
                                 zero_init(nn.Conv2d(ch, self.out_channels * patch**2, 3, padding=1)))

    def embed(self, c_noise: Tensor, label: Tensor | None = None) -> Tensor:
        """The conditioning vector ``[N, emb_dim]`` of noise level (and class label; None = no label)."""
        emb = self.noise_emb(c_noise)
        if self.label_emb is not None:
            emb = emb + self.label_emb(label if label is not None else
                                       torch.full((c_noise.shape[0],), -1, device=c_noise.device))
        return emb

    def _level(self, level: Level, h: Tensor, emb: Tensor, frames: int, skips: list[Tensor] | None,
               pop: bool) -> Tensor:
        for j, (res, attn) in enumerate(zip(level.res, level.attn, strict=True)):
            if pop:
                assert skips is not None
                h = torch.cat([h, skips.pop()], dim=1)
            h = attn(res(h, emb))
            if level.mix is not None:
                h = level.mix[j](h, frames)
            if skips is not None and not pop:
                skips.append(h)
        return h

    def body(self, h: Tensor, emb: Tensor, *, frames: int = 1) -> Tensor:
        """The network on stacked inputs ``[N, C_in (+ conditioning channels), H, W]`` with ``emb``
        ``[N, emb_dim]``; ``frames`` is passed to the mixers (``N = batch * frames``)."""
        h = self.inp(F.pixel_unshuffle(h, self.patch) if self.patch > 1 else h)
        skips = [h]
        for level, down in zip(self.down, self.downsample, strict=True):
            h = self._level(cast(Level, level), h, emb, frames, skips, pop=False)
            if not isinstance(down, nn.Identity):
                h = down(h)
                skips.append(h)
        h = self._level(self.mid, h, emb, frames, None, pop=False)
        for level, up in zip(self.up, self.upsample, strict=True):
            h = up(self._level(cast(Level, level), h, emb, frames, skips, pop=True))
        h = self.out(h)
        return F.pixel_shuffle(h, self.patch) if self.patch > 1 else h

    def inputs(self, x: Tensor, *, x_cond: Tensor | None = None, cond_mask: Tensor | None = None,
               lowres: Tensor | None = None) -> Tensor:
        """``x`` with its conditioning channels stacked on, checked against how the net was built."""
        if x.ndim != 4 or x.shape[1] != self.in_channels or tuple(x.shape[2:]) != self.resolution:
            raise ValueError(f"UNet expects images [B, {self.in_channels}, {self.resolution[0]}, "
                             f"{self.resolution[1]}], got {list(x.shape)}")
        parts = [x]
        if self.conditional:
            if x_cond is None or cond_mask is None:
                raise ValueError("this U-Net was built conditional=True: pass x_cond and cond_mask "
                                 "(polydiff.sample(..., conditional_model=True) or polydiff impute do)")
            parts += [x_cond, cond_mask.to(x.dtype)]
        if self.lowres_channels:
            if lowres is None:
                raise ValueError("this U-Net was built lowres_cond=True: pass lowres=[B, C, h, w] (the low-resolution "
                                 "image); use polydiff_image.generate.super_resolve to sample")
            if lowres.ndim != 4 or lowres.shape[:2] != (x.shape[0], self.lowres_channels):
                raise ValueError(f"lowres must be [{x.shape[0]}, {self.lowres_channels}, h, w], "
                                 f"got {list(lowres.shape)}")
            parts.append(F.interpolate(lowres.to(x.dtype), size=self.resolution, mode="bilinear",
                                       align_corners=False))
        return torch.cat(parts, dim=1) if len(parts) > 1 else x

    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None, x_cond: Tensor | None = None,
                cond_mask: Tensor | None = None, lowres: Tensor | None = None,
                padding: Tensor | None = None) -> Tensor:
        if padding is not None:  # images are fixed-size; honour the contract anyway
            x = x * padding
        h = self.inputs(x, x_cond=x_cond, cond_mask=cond_mask, lowres=lowres)
        return self.body(h, self.embed(c_noise, label)).to(x.dtype)


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters() if p.requires_grad)


def attention_sides(net: UNet) -> list[int]:
    """Image sides at which the net attends (for reports and tests)."""
    h = min(net.resolution) // net.patch
    sides = []
    for i, level in enumerate(net.down):
        if isinstance(cast(Level, level).attn[0], Attention):
            sides.append(h // 2**i)
    return sides


__all__ = ["Attention", "Downsample", "Level", "PositionalEmbedding", "ResBlock", "UNet", "Upsample",
           "attention_sides", "count_parameters", "groups_for", "parse_mult", "zero_init"]
