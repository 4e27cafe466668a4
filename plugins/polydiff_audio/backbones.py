"""Two denoiser backbones for spectrograms ``[B, 1, n_mels, frames]``:

* ``mel_unet``: the image plugin's 2D U-Net over (mel, time), reused as is (a spectrogram is a 2D
  field; :class:`polydiff_image.unet.UNet` already zeroes padded entries and takes labels, CFG's
  label -1 and CSDI's ``x_cond`` / ``cond_mask``);
* ``mel_conv1d``: a 1D residual network over time with the mel bands as channels (dilated
  convolutions as in DiffWave, Kong et al. 2021, plus self-attention over frames that ignores padded
  frames). A sample costs far fewer operations than the U-Net's, which matters on a CPU.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polydiff.diffusion import DiffusionDataset
from polydiff.nn import FourierEmbedding, LabelEmbedding


def _shape(dataset: DiffusionDataset, name: str) -> tuple[int, int]:
    shape = tuple(dataset.sample_shape)
    if len(shape) != 3 or shape[0] != 1:
        raise ValueError(f"the {name} backbone needs spectrograms [1, n_mels, frames], got per-sample shape "
                         f"{list(shape)}")
    return int(shape[1]), int(shape[2])


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def build_mel_unet(dataset: DiffusionDataset, *, channels: int = 32, channel_mult: str = "1,2,2",
                   num_res_blocks: int = 1, attention_resolution: int = 8, heads: int = 4, dropout: float = 0.0,
                   class_cond: bool = False, conditional: bool = False) -> nn.Module:
    try:
        from polydiff_image.unet import UNet
    except ImportError as e:
        raise ImportError(f"the mel_unet backbone reuses the image plugin's U-Net, which failed to import ({e}); "
                          "install it with pip install 'polydiff[image]', or use model.backbone=mel_conv1d") from e
    n_mels, frames = _shape(dataset, "mel_unet")
    if class_cond and not dataset.num_classes:
        raise ValueError("model.class_cond = true needs a labelled dataset")
    return UNet(in_channels=1, resolution=(n_mels, frames), channels=channels, channel_mult=channel_mult,
                num_res_blocks=num_res_blocks, attention_resolution=attention_resolution, heads=heads,
                dropout=dropout, num_classes=dataset.num_classes if class_cond else None, conditional=conditional)


class Block1d(nn.Module):
    """GroupNorm-SiLU-dilated conv, FiLM from the embedding, GroupNorm-SiLU-conv (zero-initialised)."""

    def __init__(self, width: int, emb_dim: int, dilation: int) -> None:
        super().__init__()
        groups = 8 if width % 8 == 0 else 1
        self.norm1, self.norm2 = nn.GroupNorm(groups, width), nn.GroupNorm(groups, width)
        self.conv1 = nn.Conv1d(width, width, 3, padding=dilation, dilation=dilation)
        self.emb = nn.Linear(emb_dim, 2 * width)
        self.conv2 = _zero(nn.Conv1d(width, width, 3, padding=1))

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        z = self.conv1(F.silu(self.norm1(h)))
        scale, shift = self.emb(emb)[:, :, None].chunk(2, dim=1)
        return h + self.conv2(F.silu(self.norm2(z) * (1 + scale) + shift))


class Attention1d(nn.Module):
    """Self-attention over the frames of each clip; padded frames are never attended to."""

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"mel_conv1d: width {width} does not split into {heads} heads")
        self.heads = heads
        self.norm = nn.GroupNorm(8 if width % 8 == 0 else 1, width)
        self.qkv = nn.Conv1d(width, 3 * width, 1)
        self.proj = _zero(nn.Conv1d(width, width, 1))

    def forward(self, h: Tensor, frames_real: Tensor | None) -> Tensor:
        b, c, t = h.shape
        q, k, v = self.qkv(self.norm(h)).reshape(b, 3, self.heads, c // self.heads, t).transpose(-1, -2).unbind(1)
        mask = None if frames_real is None else frames_real[:, None, None, :]  # [B, 1, 1, T] keys
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return h + self.proj(out.transpose(-1, -2).reshape(b, c, t))


class MelConv1d(nn.Module):
    """``F(x_in, c_noise, *, label, x_cond, cond_mask, padding)`` on ``[B, 1, n_mels, T]``: mel bands are
    channels, ``depth`` residual blocks with dilations cycling 1, 2, 4, 8, self-attention after every
    ``attention_every`` blocks (0: none)."""

    def __init__(self, n_mels: int, *, width: int = 128, depth: int = 8, emb_dim: int = 128, heads: int = 4,
                 attention_every: int = 4, num_classes: int | None = None, conditional: bool = False) -> None:
        super().__init__()
        self.n_mels, self.conditional = n_mels, conditional
        self.noise_emb = nn.Sequential(FourierEmbedding(emb_dim), nn.Linear(emb_dim, emb_dim), nn.SiLU(),
                                       nn.Linear(emb_dim, emb_dim))
        self.label_emb = LabelEmbedding(num_classes, emb_dim) if num_classes else None
        self.inp = nn.Conv1d(n_mels * (3 if conditional else 1), width, 3, padding=1)
        self.blocks = nn.ModuleList(Block1d(width, emb_dim, 2 ** (i % 4)) for i in range(depth))
        every = attention_every if attention_every > 0 else depth + 1
        self.attn = nn.ModuleDict({str(i): Attention1d(width, heads) for i in range(depth) if (i + 1) % every == 0})
        self.out = nn.Sequential(nn.GroupNorm(8 if width % 8 == 0 else 1, width), nn.SiLU(),
                                 _zero(nn.Conv1d(width, n_mels, 3, padding=1)))

    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None, x_cond: Tensor | None = None,
                cond_mask: Tensor | None = None, padding: Tensor | None = None) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != self.n_mels:
            raise ValueError(f"mel_conv1d expects spectrograms [B, 1, {self.n_mels}, frames], got {list(x.shape)}")
        real = None if padding is None else padding.amax(dim=(1, 2)) > 0  # [B, T]
        h = x if padding is None else x * padding
        parts = [h[:, 0]]
        if self.conditional:
            if x_cond is None or cond_mask is None:
                raise ValueError("this mel_conv1d was built conditional=True: pass x_cond and cond_mask "
                                 "(polydiff impute does for conditional runs)")
            parts += [x_cond[:, 0], cond_mask[:, 0].to(x.dtype)]
        emb = self.noise_emb(c_noise)
        if self.label_emb is not None:
            emb = emb + self.label_emb(label if label is not None else
                                       torch.full((x.shape[0],), -1, device=x.device))
        h = self.inp(torch.cat(parts, dim=1))
        keep = None if real is None else real[:, None, :].to(h.dtype)
        for i, block in enumerate(self.blocks):
            h = block(h if keep is None else h * keep, emb)  # zeroed padded frames: no leak through convs
            if str(i) in self.attn:
                h = self.attn[str(i)](h, real)
        return self.out(h)[:, None].to(x.dtype)


def build_mel_conv1d(dataset: DiffusionDataset, *, width: int = 128, depth: int = 8, emb_dim: int = 128,
                     heads: int = 4, attention_every: int = 4, class_cond: bool = False,
                     conditional: bool = False) -> MelConv1d:
    n_mels, _ = _shape(dataset, "mel_conv1d")
    if class_cond and not dataset.num_classes:
        raise ValueError("model.class_cond = true needs a labelled dataset")
    return MelConv1d(n_mels, width=width, depth=depth, emb_dim=emb_dim, heads=heads, attention_every=attention_every,
                     num_classes=dataset.num_classes if class_cond else None, conditional=conditional)


__all__ = ["Attention1d", "Block1d", "MelConv1d", "build_mel_conv1d", "build_mel_unet"]
