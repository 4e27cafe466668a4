"""Injected randomness: counter-based per-sample noise, so sample i is the same whatever the batch.

Every sampler draws its noise through a :class:`NoiseSource`, which also maps noise into the
state's noise space (zero padding, zero centre of mass). The value of item ``i``'s noise at draw
``s`` (the s-th call, the initial noise being draw 0) and flat element ``e`` is a pure function of
(item i's seed, s, e): a counter-based generator in the spirit of Philox (Salmon et al. 2011),
evaluated with whole-tensor integer ops over (item, draw, element), then Box-Muller. So noise
does not depend on which other items share the batch, on the batch size, or on how many draws are
made at once, and no Python loop runs over items.

The generator: per item, three 32-bit key words from SplitMix64 of its seed; per (draw, element
pair), two 32-bit counter words from SplitMix64 of ``draw * 2**32 + pair``; the two words, xored
with the key, pass three rounds of a bijective 32-bit mixer (``lowbias32``, C. Wellons) with
cross-feeding, giving a 32-bit uniform for the radius and one for the angle of Box-Muller
(Box & Muller 1958): ``r = sqrt(-2 log u1)`` with u1 at 32-bit resolution (tails to 6.77 sigma),
one normal ``r cos(theta)``, one ``r sin(theta)``. Noise is drawn on the CPU, several draws at a time,
and moved to the requested device, so results match across devices.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch
from torch import Tensor

from .state import StateSpec, projector

_M32 = (1 << 32) - 1
_BLOCK_ELEMENTS = 1 << 18  # noise values drawn ahead per block (1 MiB of float32: stays in cache)
_MAX_DRAWS_AHEAD = 64


def _signed(v: int, bits: int) -> int:
    """Two's-complement reading of the low ``bits`` bits of ``v`` (torch has no uint32/uint64 maths)."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v


_GAMMA, _GAMMA2 = _signed(0x9E3779B97F4A7C15, 64), _signed(2 * 0x9E3779B97F4A7C15, 64)
_SM1, _SM2 = _signed(0xBF58476D1CE4E5B9, 64), _signed(0x94D049BB133111EB, 64)
_LB1, _LB2 = _signed(0x7FEB352D, 32), _signed(0x846CA68B, 32)


def _splitmix64(z: Tensor) -> Tensor:
    """SplitMix64's output function on int64 (Steele et al. 2014); wrapping multiply, logical shifts."""
    z = z ^ ((z >> 30) & ((1 << 34) - 1))
    z = z * _SM1
    z = z ^ ((z >> 27) & ((1 << 37) - 1))
    z = z * _SM2
    return z ^ ((z >> 31) & ((1 << 33) - 1))


def _words(z: Tensor) -> tuple[Tensor, Tensor]:
    """The low and high 32-bit words of int64 ``z`` as int32 (bit patterns kept)."""
    lo = z & _M32
    return (lo - ((lo >> 31) << 32)).to(torch.int32), (z >> 32).to(torch.int32)


def _lowbias32_(x: Tensor, tmp: Tensor) -> Tensor:
    """In-place ``lowbias32`` (a bijective 32-bit integer hash, C. Wellons' hash-prospector) on int32."""
    for shift, mult in ((16, _LB1), (15, _LB2), (16, 0)):
        torch.bitwise_right_shift(x, shift, out=tmp)
        tmp &= (1 << (32 - shift)) - 1  # arithmetic -> logical shift
        x ^= tmp
        if mult:
            x *= mult
    return x


def _item_keys(seeds: Sequence[int]) -> Tensor:
    """Three 32-bit key words per seed ``[B, 3]`` int32."""
    try:  # seeds_for's seeds are 63-bit: no per-item Python work
        s = torch.tensor(seeds, dtype=torch.int64)
    except (OverflowError, RuntimeError):
        s = torch.tensor([_signed(int(v), 64) for v in seeds], dtype=torch.int64)
    k0, k1 = _words(_splitmix64(s + _GAMMA))
    k2, _ = _words(_splitmix64(s + _GAMMA2))
    return torch.stack([k0, k1, k2], dim=1)


def _bits(keys: Tensor, first_draw: int, draws: int, pairs: int) -> tuple[Tensor, Tensor]:
    """The generator's two 32-bit words ``[draws, B, pairs]`` (int32) for draws ``first_draw..``."""
    counter = (torch.arange(first_draw, first_draw + draws, dtype=torch.int64)[:, None] << 32) + \
        torch.arange(pairs, dtype=torch.int64)[None]
    m0, m1 = _words(_splitmix64(counter * _GAMMA))  # item-independent: [draws, pairs]
    k = keys.T[:, None, :, None]  # [3, 1, B, 1]
    x = m0[:, None] ^ k[0]
    y = m1[:, None] ^ k[1]
    tmp = torch.empty_like(x)
    _lowbias32_(x, tmp)
    y ^= x
    _lowbias32_(y, tmp)
    x ^= y
    x ^= k[2]
    _lowbias32_(x, tmp)
    return x, y


def _normals(keys: Tensor, first_draw: int, draws: int, numel: int) -> Tensor:
    """Standard normals ``[draws, B, numel]`` float32: element e uses pair ``e % P`` (P = ceil(numel / 2)),
    the cosine half for ``e < P`` and the sine half after."""
    pairs = (numel + 1) // 2
    x, y = _bits(keys, first_draw, draws, pairs)
    # u1 = (x + 1/2) / 2**32 for x read as unsigned: 32 bits in float32 (high 24 + low 8), never 0
    hi = torch.bitwise_right_shift(x, 8).bitwise_and_(0xFFFFFF).to(torch.float32)
    u1 = x.bitwise_and_(0xFF).to(torch.float32).add_(0.5).mul_(1 / 256).add_(hi).mul_(2.0**-24)
    r = u1.log_().mul_(-2.0).sqrt_()
    theta = y.bitwise_right_shift_(8).bitwise_and_(0xFFFFFF).to(torch.float32).mul_(2 * math.pi / 2**24)
    out = torch.empty(draws, len(keys), 2 * pairs)
    torch.mul(r, theta.cos(), out=out[..., :pairs])
    torch.mul(r, theta.sin_(), out=out[..., pairs:])
    return out[..., :numel]


class NoiseSource:
    """Draws standard-normal noise shaped like a batch; item i's values depend on its seed only.

    Each call is one draw: the draw counter advances by one per call, and item ``i``'s noise at
    draw ``s`` is a fixed function of ``(seeds[i], s, element)`` (module docstring), computed for
    the whole batch and several draws ahead at once.

    Args:
        seeds: one integer per sample (any int; read modulo 2**64).
        spec: the state's fields (for the centre-of-mass-free noise space); ``None``: plain noise.
        padding: packed padding mask; noise is zero on padded entries.
        device: where noise is returned (drawn on the CPU so results match across devices).
    """

    def __init__(self, seeds: Sequence[int], *, spec: StateSpec | None = None,
                 padding: Tensor | None = None, device: torch.device | str = "cpu") -> None:
        self.seeds = [int(s) for s in seeds]
        self.keys = _item_keys(self.seeds)
        self.spec, self.padding, self.device = spec, padding, torch.device(device)
        self.draws = 0  # calls so far: the next call is draw number ``draws``
        self._block: Tensor | None = None  # draws ``_first .. _first + len`` for per-item shape ``_shape``
        self._first, self._shape, self._blocks_made = 0, torch.Size(), 0

    def __len__(self) -> int:
        return len(self.seeds)

    def _refill(self, like: Tensor) -> None:
        shape, numel = like.shape[1:], max(1, like[0].numel())
        # draws ahead: 1, 8, 64 (a deterministic sampler makes one draw) within the memory budget;
        # the values do not depend on this choice
        ahead = min(8**self._blocks_made, _MAX_DRAWS_AHEAD, max(1, _BLOCK_ELEMENTS // (len(self) * numel)))
        block = _normals(self.keys, self.draws, ahead, numel).reshape(ahead, len(self), *shape)
        self._block = block.to(device=like.device, dtype=like.dtype)
        self._first, self._shape = self.draws, shape
        self._blocks_made += 1

    def __call__(self, like: Tensor) -> Tensor:
        """Fresh noise (the next draw) with the shape, dtype and device of ``like``."""
        if like.shape[0] != len(self):
            raise ValueError(f"noise source has {len(self)} seeds for a batch of {like.shape[0]}")
        b = self._block
        if (b is None or self._shape != like.shape[1:] or b.dtype != like.dtype or b.device != like.device
                or not self._first <= self.draws < self._first + len(b)):
            self._refill(like)
            b = self._block
            assert b is not None
        eps = b[self.draws - self._first]
        self.draws += 1
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
