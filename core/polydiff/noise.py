"""Injected randomness: per-sample seeded generators, so sample i is the same whatever the batch.

EDM's ``StackedRandomGenerator`` idea: one ``torch.Generator`` per sample, seeded from that
sample's own seed. Every sampler draws its noise through a :class:`NoiseSource`, which also maps
noise into the state's noise space (zero padding, zero centre of mass).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import Tensor

from .state import StateSpec, projector


class NoiseSource:
    """Draws standard-normal noise shaped like a batch, one generator per sample.

    Args:
        seeds: one integer per sample.
        spec: the state's fields (for the centre-of-mass-free noise space); ``None``: plain noise.
        padding: packed padding mask; noise is zero on padded entries.
        device: where noise is returned (drawn on the CPU so results match across devices).
    """

    def __init__(self, seeds: Sequence[int], *, spec: StateSpec | None = None,
                 padding: Tensor | None = None, device: torch.device | str = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.spec, self.padding, self.device = spec, padding, torch.device(device)

    def __len__(self) -> int:
        return len(self.seeds)

    def __call__(self, like: Tensor) -> Tensor:
        """Fresh noise with the shape, dtype and device of ``like``."""
        if like.shape[0] != len(self.generators):
            raise ValueError(f"noise source has {len(self.generators)} seeds for a batch of {like.shape[0]}")
        eps = torch.stack([torch.randn(like.shape[1:], generator=g, dtype=torch.float32)
                           for g in self.generators]).to(device=like.device, dtype=like.dtype)
        return projector(self.spec, self.padding)(eps)


def stream_seed(seed: int, stream: str, index: int) -> int:
    """A 63-bit seed for item ``index`` of a named random stream (``"sample"``, ``"step"``, ...).

    Hashing keeps the streams of different seeds and purposes independent (no ``seed + i``
    collisions between seed 0 item 1 and seed 1 item 0)."""
    digest = hashlib.blake2b(f"polydiff/{seed}/{stream}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def seeds_for(n: int, seed: int) -> list[int]:
    """Seeds of samples ``0..n-1`` drawn with base ``seed``: sample i is the same in any batch."""
    return [stream_seed(seed, "sample", i) for i in range(n)]
