"""The molecule plugin's baselines (``ModalitySpec.baselines``), scored beside every model with the
same bond perception: random coordinates with the data's own atom types and charges (floor), real
molecules of the training split (ceiling: the data's own validity and stability), and for scaffold
completion random values for the hidden entries (floor)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion import Batch
from polydiff.evaluation import BaselineContext, training_items
from polydiff.plugins import BaselineSpec


def random_coordinates(ctx: BaselineContext) -> Batch:
    """``n`` training molecules (their atom types, charges and sizes) with positions replaced by
    Gaussian noise of each molecule's own coordinate spread, centred on the origin (CoM-free)."""
    real = training_items(ctx)
    spec = ctx.train.spec
    fields = {k: v.clone() for k, v in spec.unpack(real.x).items()}
    pos = fields["pos"]  # [n, N, 3]
    atoms = (spec.unpack(real.padding)["pos"][..., :1] > 0).to(pos.dtype) if real.padding is not None \
        else torch.ones_like(pos[..., :1])
    fields["pos"] = gaussian_positions(pos, atoms, ctx.seed + 7)
    return Batch(x=spec.pack(fields), padding=real.padding, cond=real.cond)


def gaussian_positions(pos: Tensor, atoms: Tensor, seed: int) -> Tensor:
    """Gaussian coordinates ``[n, N, 3]`` with each item's own coordinate spread (``atoms [n, N, 1]``:
    1 for real atoms), centred on the origin (CoM-free), zero at padding; seeded."""
    count = atoms.sum(1, keepdim=True).clamp_min(1)
    centre = (pos * atoms).sum(1, keepdim=True) / count
    spread = (((pos - centre) * atoms).square().sum((1, 2), keepdim=True) / (3 * count)).sqrt()
    noise = torch.randn(pos.shape, generator=torch.Generator().manual_seed(seed), dtype=pos.dtype)
    noise = noise * spread * atoms
    return noise - (noise.sum(1, keepdim=True) / count) * atoms


def random_fill(observed: Any, ctx: BaselineContext) -> Tensor:
    """Hidden entries drawn from a Gaussian with the mean and spread of the item's given entries of
    the same column (coordinates, type scores, charges), seeded."""
    x, given = observed.truth, observed.given
    g = given.to(x.dtype)
    count = g.sum(0, keepdim=True).clamp_min(1)
    mean = (x * g).sum(0, keepdim=True) / count
    std = (((x - mean) * g).square().sum(0, keepdim=True) / count).sqrt().clamp_min(1e-3)
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(ctx.seed + 11), dtype=x.dtype)
    return mean + std * z


BASELINES = (
    BaselineSpec(name="random_coordinates", role="floor", fn=random_coordinates,
                 description="training molecules' atom types and charges at random (Gaussian) positions"),
    BaselineSpec(name="real_molecules", role="ceiling", fn=training_items,
                 description="real molecules of the training split, same bond perception (the data's own score)"),
    BaselineSpec(name="random_fill", role="floor", task="impute", fn=random_fill,
                 description="hidden entries drawn from a Gaussian matching the given entries of each column"),
)

__all__ = ["BASELINES", "gaussian_positions", "random_coordinates", "random_fill"]
