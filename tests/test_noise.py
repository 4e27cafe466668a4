"""Counter-based per-sample noise: exact bits, normal statistics, independence, batch independence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polydiff.diffusion.noise import (
    NoiseSource,
    _bits,
    _cell_keys,
    _draw_pair_words,
    _item_keys,
    _normals,
    seeds_for,
    stream_seed,
    stream_seeds,
)

M64, M32 = (1 << 64) - 1, (1 << 32) - 1


def _ref_splitmix(z: int) -> int:
    z &= M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def _ref_lowbias(x: int) -> int:
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def _ref_bits(seed: int, pair: int, element: int) -> tuple[int, int]:
    """The generator written with Python's unbounded integers: torch's wrapping int maths must agree."""
    gamma = 0x9E3779B97F4A7C15
    k = _ref_splitmix(seed + gamma)  # the item's key words
    e = _ref_splitmix(element * gamma)  # the element's counter words
    k0 = _ref_lowbias((k & M32) ^ (e & M32))
    k1 = _ref_lowbias((k >> 32) ^ (e >> 32) ^ k0)  # the cell's key words
    m = _ref_splitmix(((1 << 32) + pair) * gamma)  # the draw pair's counter words
    x = _ref_lowbias((m & M32) ^ k0)
    y = _ref_lowbias((m >> 32) ^ k1 ^ x)
    return _ref_lowbias(x ^ y), y


def _ref_normal(seed: int, draw: int, element: int) -> float:
    """Box-Muller in float64 from the reference bits: draws 2p and 2p + 1 share pair p."""
    x, y = _ref_bits(seed, draw // 2, element)
    r = math.sqrt(-2 * math.log(((x & 0x7FFFFFFF) + 0.5) / 2**31)) * (-1 if x >> 31 else 1)
    phi = (y - (y >> 31 << 32)) * math.pi / 2**32  # y read as signed: [-pi/2, pi/2)
    return r * math.cos(phi) if draw % 2 else r * math.sin(phi)


def test_bits_match_a_pure_python_reference() -> None:
    seeds = [0, 1, 2**63 - 1, 2**64 - 1, -1, 123456789, *seeds_for(3, 7)]
    x, y, _ = _bits(_cell_keys(_item_keys(seeds), 6), _draw_pair_words(5, 3))  # [pair, item * element]
    for b, seed in enumerate(seeds):
        for k in range(3):
            for e in range(6):
                assert (int(x[k, 6 * b + e]) & M32, int(y[k, 6 * b + e]) & M32) == _ref_bits(seed, 5 + k, e)


def test_values_match_float64_box_muller() -> None:
    """The float32 pipeline (polynomial sine and cosine) agrees with Box-Muller in float64 to 2e-6
    (measured: 7e-7 over 7200 values)."""
    seeds = [4, 2**64 - 1, *seeds_for(5, 3)]
    src = NoiseSource(seeds)
    got = torch.stack([src(torch.empty(len(seeds), 9)) for _ in range(5)])  # [draw, item, element]
    want = torch.tensor([[[_ref_normal(s, d, e) for e in range(9)] for s in seeds] for d in range(5)])
    assert (got.double() - want).abs().max() < 2e-6


def test_standard_normal_statistics() -> None:
    src = NoiseSource(seeds_for(40000, 0))  # both halves of the Box-Muller pairs: draws 0 and 1
    z = torch.cat([src(torch.empty(40000, 25)) for _ in range(2)]).double().flatten()  # 2M values
    n = z.numel()
    assert abs(float(z.mean())) < 4 / math.sqrt(n)
    assert abs(float(z.var()) - 1) < 4 * math.sqrt(2 / n)
    assert abs(float((z**3).mean())) < 4 * math.sqrt(15 / n)  # skewness
    assert abs(float((z**4).mean()) - 3) < 4 * math.sqrt(96 / n)  # kurtosis
    # Kolmogorov-Smirnov distance to the normal CDF (1% critical value 1.63 / sqrt(n); measured 0.47)
    ecdf = torch.arange(1, n + 1, dtype=torch.float64) / n
    cdf = torch.special.ndtr(z.sort().values)
    ks = float(torch.maximum(cdf - ecdf + 1 / n, ecdf - cdf).max())
    assert ks < 1.63 / math.sqrt(n), ks * math.sqrt(n)
    tail = float((z.abs() > 3).double().mean())  # 0.0027 expected
    assert abs(tail - 0.0027) < 4 * math.sqrt(0.0027 / n)


def test_independent_across_items_draws_and_elements() -> None:
    src = NoiseSource(seeds_for(2000, 1))
    draws = torch.stack([src(torch.empty(2000, 8)) for _ in range(6)], 1).double()  # [items, draws, elems]
    bound = 5 / math.sqrt(2000 * 8)  # correlation of independent normals: ~N(0, 1/n)
    flat = draws.permute(1, 0, 2).reshape(6, -1)
    corr_draws = torch.corrcoef(flat)  # draw s vs draw t over all items and elements
    assert (corr_draws - torch.eye(6, dtype=torch.float64)).abs().max() < bound
    elems = draws.reshape(-1, 8).T  # element j vs element k (cosine vs sine halves included)
    assert (torch.corrcoef(elems) - torch.eye(8, dtype=torch.float64)).abs().max() < 5 / math.sqrt(12000)
    neighbours = float((draws[1:] * draws[:-1]).mean())  # neighbouring items (consecutive seeds)
    assert abs(neighbours) < 5 / math.sqrt(1999 * 48)
    same_seed = NoiseSource([5, 6, 5])(torch.empty(3, 4))  # a seed repeated gives the same noise
    assert torch.equal(same_seed[0], same_seed[2]) and not torch.equal(same_seed[0], same_seed[1])


def test_items_sharing_one_key_word_are_independent() -> None:
    """Among 65536 seeds two share a 32-bit key word with probability ~0.4: their noise, and its
    size (the Box-Muller radius), must still be uncorrelated."""
    keys = _item_keys(seeds_for(3, 4))
    keys[1, 0], keys[2, 1] = keys[0, 0], keys[0, 1]  # item 1 shares word 0 with item 0, item 2 word 1
    z = _normals(_cell_keys(keys, 20000), 0, 4).double().reshape(8, 3, -1).transpose(0, 1).reshape(3, -1)
    bound = 5 / math.sqrt(z.shape[1])
    assert (torch.corrcoef(z) - torch.eye(3, dtype=torch.float64)).abs().max() < bound
    assert (torch.corrcoef(z**2) - torch.eye(3, dtype=torch.float64)).abs().max() < bound


def test_item_noise_does_not_depend_on_the_batch() -> None:
    seeds = seeds_for(300, 2)
    full = NoiseSource(seeds)
    whole = [full(torch.empty(300, 3, 5)) for _ in range(9)]
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))[:7]
    part = NoiseSource([seeds[i] for i in order])  # other companions, other order, fewer draws ahead
    for s in range(9):
        assert torch.equal(part(torch.empty(7, 3, 5)), whole[s][order])
    # a draw of another shape is the same function of (seed, draw, flat element)
    a, b = NoiseSource(seeds[:4]), NoiseSource(seeds[:4])
    a(torch.empty(4, 15)), b(torch.empty(4, 15))
    assert torch.equal(a(torch.empty(4, 15)).reshape(4, 3, 5), b(torch.empty(4, 3, 5)))
    # dtype: the float32 values, cast
    c = NoiseSource(seeds[:4])(torch.empty(4, 15, dtype=torch.float64))
    assert c.dtype == torch.float64 and torch.equal(c.float(), NoiseSource(seeds[:4])(torch.empty(4, 15)))


def test_odd_sizes_and_errors() -> None:
    z = NoiseSource([3])(torch.empty(1, 7))
    assert z.shape == (1, 7) and len(set(z.flatten().tolist())) == 7
    with pytest.raises(ValueError, match="2 seeds for a batch of 3"):
        NoiseSource([1, 2])(torch.empty(3, 2))
    for bad in ([1.5, 2.0], ["7"], [[1, 2]]):
        with pytest.raises(ValueError, match="one integer seed per sample"):
            NoiseSource(bad)  # type: ignore[arg-type]
    assert NoiseSource([]).keys.shape == (0, 2)
    same = NoiseSource(torch.tensor([5, -1]))(torch.empty(2, 3))  # a tensor of seeds; -1 is 2**64 - 1
    assert torch.equal(same, NoiseSource([5, 2**64 - 1])(torch.empty(2, 3)))


def test_stream_seeds_are_vectorised_scalar_seeds_and_streams_stay_apart() -> None:
    many = stream_seeds(5, "sample", 0, 200)
    assert many.dtype == np.int64 and many.min() >= 0
    assert many.tolist() == [stream_seed(5, "sample", i) for i in range(200)] == seeds_for(200, 5)
    assert stream_seeds(5, "sample", 40, 60).tolist() == many[40:60].tolist()  # any slice: batches agree
    # no seed + i collisions between seeds or between streams
    assert not set(many.tolist()) & set(stream_seeds(6, "sample", 0, 200).tolist())
    assert not set(many.tolist()) & set(stream_seeds(5, "grid-calibration", 0, 200).tolist())
    assert len(set(stream_seeds(0, "sample", 0, 65536).tolist())) == 65536
    with pytest.raises(ValueError, match="start <= stop"):
        stream_seeds(0, "sample", 5, 2)
