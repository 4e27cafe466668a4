"""CSDI's two-axis transformer (Tashiro et al. 2021, Sec. 5 and Fig. 6) as a polydiff backbone.

``F(x_in[B, K, L], c_noise[B], *, x_cond, cond_mask, padding) -> [B, K, L]``. Every residual layer
attends along time (per feature) and then along features (per time step); side information is a
sinusoidal time embedding, a learnt feature embedding and the conditional mask; the observed values
enter as a second input channel. Where ``cond_mask = 1`` the noisy input is dropped (the value is
given exactly through ``x_cond``). Where ``cond_mask = 0``, ``x_cond`` holds the core's prior fill
(``model.prior_fill = "condition"`` / ``"residual"``, PriSTI's interpolated input) or 0 (a NaN there
reads as 0), so neither a missing value nor the noise on a given one reaches the network.

Level-invariant conditioning (``centre_condition=True``): ``x_cond`` is centred per series and feature on
the mean of its given entries (``cond_mask = 1``) before it enters the network, so the network sees the
given values and the fill relative to the window's own level, never the absolute level (a trending
series' test windows lie above every training level). Hidden entries never enter the centre. With
``model.prior_fill = "residual"`` the whole denoiser is then equivariant to a constant shift per feature
of a window: the noisy input ``x - fill`` and the centred ``x_cond`` do not change, and
``D(x) = fill + D_r(x - fill)`` shifts with the fill.

Padding (series shorter than ``L``): padded steps are zeroed on input, never attended to as keys
along time, and zeroed on output, so they cannot change a real output.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.nn import FourierEmbedding


def given_level(x_cond: Tensor, cond_mask: Tensor) -> Tensor:
    """The mean of the given entries (``cond_mask = 1``) of each series and feature, ``[B, K, 1]``; 0 for a
    feature with nothing given. Hidden entries of ``x_cond`` are not read (a NaN there changes nothing)."""
    given = cond_mask > 0
    total = torch.where(given, x_cond, torch.zeros_like(x_cond)).sum(-1, keepdim=True)
    return total / given.sum(-1, keepdim=True).clamp_min(1).to(x_cond.dtype)


def time_embedding(length: int, dim: int, device: torch.device) -> Tensor:
    """Transformer sinusoids of the step index ``[length, dim]`` (Vaswani et al. 2017; CSDI's time embedding)."""
    pos = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(-math.log(10000.0) * torch.arange(0, dim, 2, device=device, dtype=torch.float32) / dim)
    emb = torch.zeros(length, dim, device=device)
    emb[:, 0::2] = torch.sin(pos * freq)
    emb[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return emb


class AttentionBlock(nn.Module):
    """Pre-norm transformer layer over the token axis of ``h[N, T, C]``; ``keep[N, T]`` masks keys."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(channels), nn.LayerNorm(channels)
        self.qkv = nn.Linear(channels, 3 * channels)
        self.proj = nn.Linear(channels, channels)
        self.ff = nn.Sequential(nn.Linear(channels, 2 * channels), nn.GELU(), nn.Linear(2 * channels, channels))

    def forward(self, h: Tensor, keep: Tensor | None = None) -> Tensor:
        n, t, c = h.shape
        q, k, v = self.qkv(self.norm1(h)).reshape(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        mask = None
        if keep is not None:  # a row with no real key (a fully padded series) attends to itself only
            keep = keep | ~keep.any(dim=1, keepdim=True)
            mask = keep[:, None, None, :]
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        h = h + self.proj(a.transpose(1, 2).reshape(n, t, c))
        return h + self.ff(self.norm2(h))


class ResidualLayer(nn.Module):
    """CSDI's residual layer: + noise embedding, time attention, feature attention, + side info,
    gated activation, split into residual and skip (Fig. 6)."""

    def __init__(self, channels: int, heads: int, side_dim: int, emb_dim: int) -> None:
        super().__init__()
        self.noise = nn.Linear(emb_dim, channels)
        self.time_attn = AttentionBlock(channels, heads)
        self.feature_attn = AttentionBlock(channels, heads)
        self.mid = nn.Linear(channels, 2 * channels)
        self.side = nn.Linear(side_dim, 2 * channels)
        self.out = nn.Linear(channels, 2 * channels)

    def forward(self, h: Tensor, emb: Tensor, side: tuple[Tensor, Tensor, Tensor],
                keep_t: Tensor | None) -> tuple[Tensor, Tensor]:
        b, k, length, c = h.shape
        y = h + self.noise(emb)[:, None, None, :]
        keep = None if keep_t is None else keep_t[:, None, :].expand(b, k, length).reshape(b * k, length)
        y = self.time_attn(y.reshape(b * k, length, c), keep).reshape(b, k, length, c)
        if k > 1:  # with one feature there is nothing to attend to (CSDI skips it too)
            y = self.feature_attn(y.transpose(1, 2).reshape(b * length, k, c)).reshape(b, length, k, c).transpose(1, 2)
        gate, filt = (self.mid(y) + self.side_projection(*side)).chunk(2, dim=-1)
        residual, skip = self.out(torch.sigmoid(gate) * torch.tanh(filt)).chunk(2, dim=-1)
        return (h + residual) / math.sqrt(2.0), skip

    def side_projection(self, time: Tensor, feature: Tensor, mask: Tensor) -> Tensor:
        """``side([time_emb[l], feature_emb[k], cond_mask[b, k, l]])`` for every (b, k, l): one linear map of
        the concatenation, evaluated as a broadcast sum of its three column blocks (no [B, K, L, side] copy)."""
        w = self.side.weight
        td, fd = time.shape[-1], feature.shape[-1]
        by_time = F.linear(time, w[:, :td], self.side.bias)[None, None]  # [1, 1, L, 2C]
        by_feature = F.linear(feature, w[:, td:td + fd])[None, :, None]  # [1, K, 1, 2C]
        return by_time + by_feature + mask[..., None] * w[:, td + fd]


class CSDIBackbone(nn.Module):
    """The denoiser network of CSDI for ``[B, K, L]`` series.

    Args:
        features: K.
        channels, layers, heads: width, residual layers and attention heads (CSDI: 64, 4, 8).
        time_dim, feature_dim: sizes of the time and feature embeddings (CSDI: 128, 16).
        emb_dim: size of the noise-level embedding.
        centre_condition: centre ``x_cond`` per series and feature on its given entries' mean
            (:func:`given_level`), so that the network never sees a window's absolute level.

    ``x_cond`` / ``cond_mask`` missing means "nothing given" (unconditional generation), so the same
    network trains conditionally (CSDI) or unconditionally.
    """

    def __init__(self, features: int, *, channels: int = 64, layers: int = 4, heads: int = 8, time_dim: int = 128,
                 feature_dim: int = 16, emb_dim: int = 128, centre_condition: bool = False) -> None:
        super().__init__()
        if features < 1 or layers < 1:
            raise ValueError(f"need features >= 1 and layers >= 1, got {features}, {layers}")
        if not isinstance(centre_condition, bool):
            raise ValueError(f"centre_condition must be true or false, got {centre_condition!r}")
        self.features, self.time_dim, self.centre_condition = features, time_dim, centre_condition
        self.feature_emb = nn.Embedding(features, feature_dim)
        self.noise_emb = nn.Sequential(FourierEmbedding(emb_dim), nn.Linear(emb_dim, emb_dim), nn.SiLU(),
                                       nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.inp = nn.Linear(2, channels)
        side_dim = time_dim + feature_dim + 1
        self.layers = nn.ModuleList(ResidualLayer(channels, heads, side_dim, emb_dim) for _ in range(layers))
        last = nn.Linear(channels, 1)
        nn.init.zeros_(last.weight)  # F starts at 0, as CSDI's output projection does
        nn.init.zeros_(last.bias)
        self.head = nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), last)

    def forward(self, x: Tensor, c_noise: Tensor, *, x_cond: Tensor | None = None, cond_mask: Tensor | None = None,
                padding: Tensor | None = None) -> Tensor:
        if x.ndim != 3 or x.shape[1] != self.features:
            raise ValueError(f"expected series [B, {self.features}, L], got {list(x.shape)}")
        b, length = x.shape[0], x.shape[2]
        mask = torch.zeros_like(x) if cond_mask is None else cond_mask.to(x.dtype)
        # hidden entries of x_cond hold the prior fill (model.prior_fill) or 0; a NaN there reads as 0
        given = torch.zeros_like(x) if x_cond is None else torch.where(mask > 0, x_cond, torch.nan_to_num(
            x_cond, nan=0.0, posinf=0.0, neginf=0.0))
        real = torch.ones_like(x) if padding is None else padding.to(x.dtype)
        if self.centre_condition:  # the window's level, from its given entries only, is taken out
            given = given - given_level(given, mask * real)
        noisy = torch.where(mask > 0, torch.zeros_like(x), x) * real  # a given entry's noise is not information
        h = self.inp(torch.stack([noisy, given * real], dim=-1))  # [B, K, L, C]
        side = (time_embedding(length, self.time_dim, x.device).to(x.dtype), self.feature_emb.weight, mask * real)
        emb = self.noise_emb(c_noise.reshape(b))
        keep_t = None if padding is None else padding[:, 0, :] > 0
        skips = torch.zeros_like(h)
        for layer in self.layers:
            h, skip = layer(h, emb, side, keep_t)
            skips = skips + skip
        out = self.head(skips / math.sqrt(len(self.layers)))[..., 0]
        return out * real
