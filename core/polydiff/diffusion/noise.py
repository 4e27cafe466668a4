"""Injected randomness: counter-based per-sample noise, so sample i is the same whatever the batch.

Every sampler draws its noise through a :class:`NoiseSource`, which also maps noise into the
state's noise space (zero padding, zero centre of mass). The value of item ``i``'s noise at draw
``s`` (the s-th call, the initial noise being draw 0) and flat element ``e`` is a pure function of
(item i's seed, s, e): a counter-based generator in the spirit of Philox (Salmon et al. 2011),
evaluated with whole-tensor integer ops over (item, draw, element), then Box-Muller. So noise
does not depend on which other items share the batch, on the batch size, or on how many draws are
made at once, and no Python loop runs over items.

The generator: per item, two 32-bit key words from SplitMix64 of its seed; per (item, element) cell,
two key words from two rounds of a bijective 32-bit mixer (``lowbias32``, C. Wellons) over the
item's words xor the element's counter words (SplitMix64 of ``e``), made once per source and shape;
per draw pair ``s // 2``, two counter words (SplitMix64 of ``2**32 + s // 2``). Three rounds of the
mixer over cell words xor counter words, each fed by the one before, give the words x and y. Box-Muller
(Box & Muller 1958) makes draws 2p and 2p + 1 of a cell from one pair: radius ``sqrt(-2 log u)``
with u from 31 bits of x (tails to 6.6 sigma) and the sign bit of x, angle in [-pi/2, pi/2) from y;
sine and cosine are polynomials (errors below 6e-8), since torch's transcendental kernels cost as much
as the rest together. About 60 whole-tensor passes per pair of values over cache-sized chunks,
all inner loops contiguous. Noise is drawn on the CPU, several draws at a time, and moved to the
requested device, so results match across devices.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from .state import StateSpec, projector

Seeds = Sequence[int] | np.ndarray | Tensor
_BLOCK_ELEMENTS = 1 << 18  # noise values made ahead (1 MiB of float32)
_FIRST_BLOCK_ELEMENTS = 1 << 14  # the first block: small batches draw ahead (per-op overhead dominates)
_MAX_PAIRS_AHEAD = 32  # draw pairs made ahead at most (64 draws)
_CHUNK = 1 << 16  # values per work buffer (five buffers of 256 KiB)
# sin(phi) / phi and cos(phi) as polynomials in phi^2 (Taylor to phi^11 and phi^12): on |phi| <= pi/2
# the errors are below 6e-8 and 7e-9, under float32's resolution of the result
_SIN = (-1 / 39916800, [torch.tensor(c) for c in (1 / 362880, -1 / 5040, 1 / 120, -1 / 6, 1.0)])
_COS = (1 / 479001600, [torch.tensor(c) for c in (-1 / 3628800, 1 / 40320, -1 / 720, 1 / 24, -1 / 2, 1.0)])


def _signed(v: int, bits: int) -> int:
    """Two's-complement reading of the low ``bits`` bits of ``v`` (torch has no uint32/uint64 maths)."""
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v




def _i32(v: int) -> Tensor:
    return torch.tensor(_signed(v, 32), dtype=torch.int32)


def _f32(v: float) -> Tensor:
    return torch.tensor(v, dtype=torch.float32)


# constants as 0-d tensors: an op with a Python number wraps it first (2.6 us against 1.0 us a call)
_LOWBIAS = [(_i32(shift), _i32((1 << (32 - shift)) - 1), _i32(mult) if mult else None)
            for shift, mult in ((16, 0x7FEB352D), (15, 0x846CA68B), (16, 0))]
_SIGN, _LOW31, _HALF, _TWO_M31, _MINUS2, _ANGLE = (_i32(1 << 31), _i32((1 << 31) - 1), _f32(0.5), _f32(2.0**-31),
                                                   _f32(-2.0), _f32(math.pi / 2**32))


def _lowbias32_(x: Tensor, tmp: Tensor) -> Tensor:
    """In-place ``lowbias32`` (a bijective 32-bit integer hash, C. Wellons' hash-prospector) on int32."""
    for shift, mask, mult in _LOWBIAS:
        torch.bitwise_right_shift(x, shift, out=tmp)
        tmp &= mask  # arithmetic -> logical shift
        x ^= tmp
        if mult is not None:
            x *= mult
    return x


def _item_keys(seeds: Seeds) -> Tensor:
    """Two 32-bit key words per seed ``[B, 2]`` int32: the words of SplitMix64(seed + gamma)."""
    arr = np.asarray(seeds)  # one C loop over the seeds (a Python loop costs ~80 ns an item)
    if arr.ndim == 1 and arr.dtype.kind in "iu":
        s = arr.astype(np.uint64)  # negative: read modulo 2**64
    else:  # empty, ints beyond int64 (numpy makes them float or object), or not integers at all
        items: list[object] = list(seeds) if arr.ndim == 1 else [None]
        if not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
            raise ValueError(f"NoiseSource needs one integer seed per sample (e.g. seeds_for(n, seed)), got "
                             f"{arr.dtype} values of shape {tuple(arr.shape)}")
        s = np.array([int(v) & ((1 << 64) - 1) for v in items if isinstance(v, int | np.integer)], dtype=np.uint64)
    k0, k1 = _splitmix64_np(s + np.uint64(0x9E3779B97F4A7C15))
    return torch.from_numpy(np.stack([k0.numpy(), k1.numpy()], axis=1))  # torch.stack: 13 ms at 65536


def _splitmix64_u64(z: np.ndarray) -> np.ndarray:
    """SplitMix64's output function on uint64 numpy (logical shifts, wrapping multiply)."""
    z = z ^ (z >> np.uint64(30))
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _splitmix64_np(z: np.ndarray) -> tuple[Tensor, Tensor]:
    """SplitMix64 of uint64 numpy (a few microseconds for short vectors, where torch needs masks),
    as two int32 word tensors."""
    z = _splitmix64_u64(z)
    lo, hi = z.astype(np.uint32), (z >> np.uint64(32)).astype(np.uint32)
    return torch.from_numpy(lo.view(np.int32)), torch.from_numpy(hi.view(np.int32))


def _pair_words(first: int, count: int) -> tuple[Tensor, Tensor]:
    """Two 32-bit words per counter ``first..first+count-1`` (int32 ``[count]`` each): SplitMix64 of
    the Weyl sequence ``counter * gamma``."""
    return _splitmix64_np(np.arange(first, first + count, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15))


def _mix(a0: Tensor, a1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Two rounds of ``lowbias32`` over the words ``a0``, ``a1`` (int32, same shape; consumed): the
    second round is fed by the first, so both results depend on both inputs. Also a work buffer."""
    tmp = torch.empty_like(a0)
    _lowbias32_(a0, tmp)
    _lowbias32_(a1.bitwise_xor_(a0), tmp)
    return a0, a1, tmp


def _cell_keys(keys: Tensor, numel: int) -> tuple[Tensor, Tensor]:
    """Two key words per (item, flat element) ``[B * numel]`` int32: the item's key words mixed with
    the element's counter words (counters ``0..numel-1``)."""
    e0, e1 = _pair_words(0, numel)
    k0, k1, _ = _mix(torch.bitwise_xor(keys[:, 0, None], e0), torch.bitwise_xor(keys[:, 1, None], e1))
    return k0.flatten(), k1.flatten()


def _bits(cell: tuple[Tensor, Tensor], pair_words: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
    """The generator's two 32-bit words ``[pairs, cells]`` (int32) from the cells' key words and the
    draw pairs' counter words (:func:`_draw_pair_words`), and a work buffer of the same shape."""
    p0, p1 = pair_words
    x, y, tmp = _mix(torch.bitwise_xor(cell[0], p0[:, None]), torch.bitwise_xor(cell[1], p1[:, None]))
    _lowbias32_(x.bitwise_xor_(y), tmp)  # a third round: neither output is a linear function of the
    return x, y, tmp  # other and of one cell word (two items sharing a key word share the first x)


def _draw_pair_words(first_pair: int, pairs: int) -> tuple[Tensor, Tensor]:
    """The counter words of draw pairs ``first_pair..`` (counters ``2**32 + pair``; elements use
    ``0..numel-1``)."""
    return _pair_words((1 << 32) + first_pair, pairs)


def _horner(p: Tensor, coeffs: tuple[float, list[Tensor]], out: Tensor) -> Tensor:
    """``sum_k coeffs[k] p^(n-k)`` into ``out`` (the leading coefficient, then the others as 0-d
    tensors), one fused multiply-add per coefficient."""
    lead, rest = coeffs
    torch.add(rest[0], p, alpha=lead, out=out)
    for c in rest[1:]:
        torch.addcmul(c, out, p, out=out)
    return out


def _normals_(out: Tensor, cell: tuple[Tensor, Tensor], pair_words: tuple[Tensor, Tensor]) -> Tensor:
    """Standard normals into ``out`` ``[pairs, 2, cells]`` float32 (``out[p, h]``: draw
    ``2 * (first pair + p) + h``): draws 2p and 2p + 1 of a cell are one Box-Muller pair."""
    x, y, tmp = _bits(cell, pair_words)
    r, z = out[:, 0], out[:, 1]
    # r = sqrt(-2 log u), u = (w + 1/2) / 2**31 in (0, 1], w = the low 31 bits of x; its sign: x's sign bit
    r.copy_(torch.bitwise_and(x, _LOW31, out=tmp)).add_(_HALF).mul_(_TWO_M31).log_().mul_(_MINUS2).sqrt_()
    r.view(torch.int32).bitwise_xor_(x.bitwise_and_(_SIGN))  # a signed radius: angle phi or phi + pi
    z.copy_(y).mul_(_ANGLE)  # phi in [-pi/2, pi/2) from all 32 bits of y
    p = z * z
    s = _horner(p, _SIN, tmp.view(torch.float32)).mul_(z)
    _horner(p, _COS, z).mul_(r)  # draw 2p + 1: r cos phi
    r.mul_(s)  # draw 2p: r sin phi
    return out


def _normals(cell: tuple[Tensor, Tensor], first_pair: int, pairs: int) -> Tensor:
    """Standard normals ``[2 * pairs, cells]`` float32 for draws ``2 * first_pair ..``, made in chunks
    of cells so that the work buffers stay in cache (``_CHUNK`` values per buffer)."""
    n, words = len(cell[0]), _draw_pair_words(first_pair, pairs)
    out = torch.empty(pairs, 2, n)
    step = max(1, _CHUNK // pairs)
    for c0 in range(0, n, step):
        _normals_(out[:, :, c0:c0 + step], (cell[0][c0:c0 + step], cell[1][c0:c0 + step]), words)
    return out.reshape(2 * pairs, n)


class NoiseSource:
    """Draws standard-normal noise shaped like a batch; item i's values depend on its seed only.

    Each call is one draw: the draw counter advances by one per call, and item ``i``'s noise at
    draw ``s`` is a fixed function of ``(seeds[i], s, element)`` (module docstring), computed for
    the whole batch and several draws ahead at once.

    Args:
        seeds: one integer per sample (any int, read modulo 2**64), as a sequence, a numpy array or a
            tensor; anything else is a ValueError.
        spec: the state's fields (for the centre-of-mass-free noise space); ``None``: plain noise.
        padding: packed padding mask; noise is zero on padded entries.
        device: where noise is returned (drawn on the CPU so results match across devices).
    """

    def __init__(self, seeds: Seeds, *, spec: StateSpec | None = None,
                 padding: Tensor | None = None, device: torch.device | str = "cpu") -> None:
        self.keys = _item_keys(seeds)
        self._n = len(seeds)
        self.spec, self.padding, self.device = spec, padding, torch.device(device)
        self._project = projector(spec, padding)
        self.draws = 0  # calls so far: the next call is draw number ``draws``
        self._block: Tensor | None = None  # draws ``_first .. _first + len`` ``[draws, B, *shape]``
        self._first = 0
        self._cells: tuple[Tensor, Tensor] | None = None  # per (item, element) key words for the shape

    def __len__(self) -> int:
        return self._n

    def _refill(self, like: Tensor) -> None:
        shape = like.shape[1:]
        numel = math.prod(shape)
        if self._cells is None or len(self._cells[0]) != len(self) * numel:
            self._cells = _cell_keys(self.keys, numel)
        # draw pairs ahead: at first a small block (a deterministic sampler uses draw 0 only; for small
        # batches per-op overhead dominates), then up to 32 pairs within the memory budget; the values
        # do not depend on this choice
        budget = _FIRST_BLOCK_ELEMENTS if self.draws < 2 else _BLOCK_ELEMENTS
        ahead = min(_MAX_PAIRS_AHEAD, max(1, budget // max(1, 2 * len(self) * numel)))
        first_pair = self.draws // 2
        block = _normals(self._cells, first_pair, ahead).reshape(2 * ahead, len(self), *shape)
        self._block = block.to(device=like.device, dtype=like.dtype)
        self._first = 2 * first_pair

    def __call__(self, like: Tensor) -> Tensor:
        """Fresh noise (the next draw) with the shape, dtype and device of ``like``."""
        b, k = self._block, self.draws - self._first
        if (b is None or not 0 <= k < b.shape[0] or like.shape != b.shape[1:] or b.dtype != like.dtype
                or b.device != like.device):
            if like.shape[0] != self._n:
                raise ValueError(f"noise source has {self._n} seeds for a batch of {like.shape[0]}")
            self._refill(like)
            b, k = self._block, self.draws - self._first
            assert b is not None
        eps = b[k]
        self.draws += 1
        return self._project(eps)


def stream_seeds(seed: int, stream: str, start: int, stop: int) -> np.ndarray:
    """63-bit seeds (int64 ``[stop - start]``) for items ``start..stop-1`` of a named random stream
    (``"sample"``, ``"step"``, ...).

    The stream's base word is a hash of ``(seed, stream)``, so the streams of different seeds and
    purposes are independent (no ``seed + i`` collisions between seed 0 item 1 and seed 1 item 0);
    item i's seed is SplitMix64 of ``base + i * gamma``, in numpy (a Python loop over items cost
    ~90 ms at 65536 items)."""
    if not 0 <= start <= stop:
        raise ValueError(f"stream_seeds needs 0 <= start <= stop, got {start}, {stop}")
    digest = hashlib.blake2b(f"polydiff/{seed}/{stream}".encode(), digest_size=8).digest()
    index = np.arange(start, stop, dtype=np.uint64)
    z = _splitmix64_u64(np.uint64(int.from_bytes(digest, "little")) + index * np.uint64(0x9E3779B97F4A7C15))
    return (z & np.uint64((1 << 63) - 1)).astype(np.int64)


def stream_seed(seed: int, stream: str, index: int) -> int:
    """The seed of item ``index`` of a named random stream: ``stream_seeds(seed, stream, index, index + 1)``."""
    return int(stream_seeds(seed, stream, index, index + 1)[0])


def seeds_for(n: int, seed: int) -> list[int]:
    """Seeds of samples ``0..n-1`` drawn with base ``seed``: sample i is the same in any batch."""
    return stream_seeds(seed, "sample", 0, n).tolist()
