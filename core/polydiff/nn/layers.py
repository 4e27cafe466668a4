"""Building blocks for backbones that any plugin may reuse."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

if TYPE_CHECKING:
    from polydiff.diffusion.data import DiffusionDataset


class FourierEmbedding(nn.Module):
    """Random Fourier features of the scalar noise level c_noise (Song et al. 2021; EDM's ncsn++)."""

    def __init__(self, dim: int, scale: float = 16.0, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.freqs: Tensor
        self.register_buffer("freqs", torch.randn(dim // 2, generator=g) * scale)

    def forward(self, c_noise: Tensor) -> Tensor:
        arg = 2 * math.pi * c_noise.float()[:, None] * self.freqs[None, :]
        return torch.cat([arg.cos(), arg.sin()], dim=1)


class LabelEmbedding(nn.Module):
    """Class embedding with a learnt "no label" row for label ``-1`` (classifier-free guidance)."""

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.table = nn.Embedding(num_classes + 1, dim)

    def forward(self, label: Tensor) -> Tensor:
        if label.numel() and (int(label.max()) >= self.num_classes or int(label.min()) < -1):
            raise ValueError(f"labels must lie in [-1, {self.num_classes - 1}] (-1 = unconditional), "
                             f"got range [{int(label.min())}, {int(label.max())}]")
        return self.table(torch.where(label < 0, self.num_classes, label))


class ResidualMLPBlock(nn.Module):
    def __init__(self, width: int, emb_dim: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.emb = nn.Linear(emb_dim, 2 * width)
        self.fc1, self.fc2 = nn.Linear(width, width), nn.Linear(width, width)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        scale, shift = self.emb(emb).chunk(2, dim=1)
        z = self.norm(h) * (1 + scale) + shift  # adaptive norm conditioning (FiLM)
        return h + self.fc2(nn.functional.silu(self.fc1(z)))


class MLPBackbone(nn.Module):
    """Residual MLP over the flattened packed state; works for any modality of modest size.

    Conditioning: noise level (Fourier features), optional class label (``label``, -1 = none), and
    for conditional models the observed values and mask (``x_cond``, ``cond_mask``) as extra inputs,
    and with ``self_condition`` an x0 estimate (``self_cond``) as another.
    """

    def __init__(self, dim: int, *, width: int = 256, depth: int = 3, emb_dim: int = 128,
                 num_classes: int | None = None, conditional: bool = False, self_condition: bool = False) -> None:
        super().__init__()
        self.dim, self.conditional, self.supports_self_condition = dim, conditional, self_condition
        self.noise_emb = nn.Sequential(FourierEmbedding(emb_dim), nn.Linear(emb_dim, emb_dim), nn.SiLU())
        self.label_emb = LabelEmbedding(num_classes, emb_dim) if num_classes else None
        self.inp = nn.Linear(dim * (1 + 2 * conditional + self_condition), width)
        self.blocks = nn.ModuleList(ResidualMLPBlock(width, emb_dim) for _ in range(depth))
        self.out = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, dim))

    def forward(self, x: Tensor, c_noise: Tensor, *, label: Tensor | None = None,
                x_cond: Tensor | None = None, cond_mask: Tensor | None = None,
                padding: Tensor | None = None, self_cond: Tensor | None = None) -> Tensor:
        b = x.shape[0]
        h = (x if padding is None else x * padding).reshape(b, -1)
        if self.conditional:
            if x_cond is None or cond_mask is None:
                raise ValueError("this backbone was built conditional=True: pass x_cond and cond_mask")
            h = torch.cat([h, x_cond.reshape(b, -1), cond_mask.reshape(b, -1).to(h.dtype)], dim=1)
        if self.supports_self_condition:
            if self_cond is None:
                raise ValueError("this backbone was built self_condition=True: pass self_cond (zeros for none)")
            h = torch.cat([h, (self_cond if padding is None else self_cond * padding).reshape(b, -1)], dim=1)
        emb = self.noise_emb(c_noise)
        if self.label_emb is not None:
            emb = emb + self.label_emb(label if label is not None else torch.full((b,), -1, device=x.device))
        h = self.inp(h)
        for block in self.blocks:
            h = block(h, emb)
        return self.out(h).reshape(x.shape)


def build_mlp(dataset: DiffusionDataset, *, width: int = 256, depth: int = 3, emb_dim: int = 128,
              class_cond: bool = False, conditional: bool = False, self_condition: bool = False) -> torch.nn.Module:
    """A residual MLP over the flattened state of ``dataset`` (any modality of modest size)."""
    dim = 1
    for d in dataset.sample_shape:
        dim *= d
    return MLPBackbone(dim, width=width, depth=depth, emb_dim=emb_dim,
                       num_classes=dataset.num_classes if class_cond else None, conditional=conditional,
                       self_condition=self_condition)


__all__ = ["FourierEmbedding", "LabelEmbedding", "MLPBackbone", "ResidualMLPBlock", "build_mlp"]
