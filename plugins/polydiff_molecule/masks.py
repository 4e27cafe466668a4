"""Mask strategies of the molecule state: which atoms (or which coordinates) are held out.

A strategy sees only the packed observed mask ``[B, N * 13]``; the fixed field layout of
:data:`~polydiff_molecule.data.SPEC` tells which entries belong to which atom. Fixing the other atoms
and generating the targets is scaffold-constrained generation (given atoms stay exactly in place).
"""

from __future__ import annotations

import torch
from torch import Tensor

from polydiff import MaskStrategySpec

from .data import spec_of


def _atoms(observed: Tensor) -> Tensor:
    """``[B, N]`` real (observed) atoms, from the position entries of the packed mask."""
    if observed.ndim != 2:
        raise ValueError(f"molecule masks act on packed states [B, N * 13], got shape {list(observed.shape)}")
    return spec_of(observed).unpack(observed)["pos"].amax(-1)


def _pick(atoms: Tensor, ratio: float, generator: torch.Generator) -> Tensor:
    """Per sample ``max(1, round(ratio * n))`` of its ``n`` atoms, uniformly: ``[B, N]`` 0/1."""
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    scores = torch.rand(atoms.shape, generator=generator, device=generator.device).to(atoms.device)
    scores = torch.where(atoms > 0, scores, torch.full_like(scores, -1.0))
    ranks = scores.argsort(1, descending=True).argsort(1)
    k = (ratio * atoms.sum(1)).round().clamp(min=1)[:, None]
    return (ranks < k).to(atoms.dtype) * (atoms > 0)


def atom_subset(observed: Tensor, generator: torch.Generator, *, ratio: float = 0.5) -> Tensor:
    """A fraction ``ratio`` of each molecule's atoms is the target (position, type and charge); the
    others form the fixed scaffold."""
    chosen = _pick(_atoms(observed), ratio, generator)
    parts = {name: chosen[..., None].expand_as(v) for name, v in spec_of(observed).unpack(observed).items()}
    return spec_of(observed).pack(parts).to(observed.dtype) * observed


def positions_only(observed: Tensor, generator: torch.Generator, *, ratio: float = 1.0) -> Tensor:
    """The positions of a fraction ``ratio`` of the atoms are the target; every atom type and charge is
    given (``ratio = 1``: a conformer of a known atom composition, without bonds)."""
    chosen = _pick(_atoms(observed), ratio, generator)
    parts = {name: (chosen[..., None] if name == "pos" else torch.zeros_like(chosen)[..., None]).expand_as(v)
             for name, v in spec_of(observed).unpack(observed).items()}
    return spec_of(observed).pack(parts).to(observed.dtype) * observed


MASK_STRATEGIES = [
    MaskStrategySpec(name="atom_subset", fn=atom_subset, options={"ratio": 0.5},
                     description="a `ratio` of each molecule's atoms (all their fields); the rest stay fixed"),
    MaskStrategySpec(name="atom_positions", fn=positions_only, options={"ratio": 1.0},
                     description="positions of a `ratio` of the atoms; all atom types given (molecule)"),
]
