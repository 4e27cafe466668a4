"""E(n) and permutation equivariance of functions on states with centre-of-mass-free positions
(the idea of e3nn's ``assert_equivariant``, for packed polydiff states)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from polydiff.diffusion.state import Field, StateSpec, remove_com

Fields = dict[str, Tensor]


def random_rotation(batch: int, dim: int, generator: torch.Generator, dtype: torch.dtype = torch.float32) -> Tensor:
    """``[batch, dim, dim]`` rotations, uniform (Haar) via QR with the sign fix of Mezzadri 2007."""
    q, r = torch.linalg.qr(torch.randn(batch, dim, dim, generator=generator, dtype=torch.float64))
    q = q * torch.sign(torch.diagonal(r, dim1=-2, dim2=-1))[:, None, :]
    q[:, :, 0] *= torch.sign(torch.linalg.det(q))[:, None]  # det +1: a rotation, not a reflection
    return q.to(dtype)


def check_equivariance(fn: Callable[..., Tensor], *, spec: StateSpec, n_atoms: int = 5, batch: int = 3,
                       atol: float = 1e-4, kwargs: Mapping[str, Any] | None = None,
                       vector_fields: Sequence[str] = (), reflections: bool = True, n_rotations: int = 3,
                       dtype: torch.dtype = torch.float32, seed: int = 0) -> dict[str, float]:
    """Assert that ``fn(x_packed, **kwargs) -> packed`` (same ``spec``) is E(n)- and permutation-equivariant.

    Positions are the ``com_free`` fields of ``spec`` (the last axis holds coordinates, the axis
    before it indexes atoms); ``vector_fields`` name other fields that rotate like positions but do
    not translate; every other field must be invariant. Fields sharing the atom axis (the variable
    ``None`` axis, or for fixed shapes a first axis of the atom count) are permuted with the atoms.
    Checks, on random inputs with zero centre of mass:

    * ``rotation``: ``fn(R x) = R fn(x)`` for ``n_rotations`` random rotations per sample;
    * ``reflection``: the same with an improper rotation (skip with ``reflections=False`` for
      functions that are only SO(n)-equivariant, e.g. chiral ones);
    * ``translation``: ``fn(x + t)`` equals ``fn(x)`` up to each position field's centre of mass
      (the centre of mass is not part of a com_free state) and exactly in the other fields;
    * ``permutation``: ``fn(P x) = P fn(x)`` for a random atom permutation per sample.

    Returns:
        the maximal absolute error per transform; raises AssertionError naming the failing transform
        and field when one exceeds ``atol``.
    """
    positions = [f.name for f in spec.fields if f.noise == "com_free"]
    if not positions:
        raise ValueError(f"check_equivariance needs a com_free position field; {spec!r} has none")
    unknown = set(vector_fields) - set(spec.names)
    if unknown:
        raise ValueError(f"vector_fields {sorted(unknown)} are not fields of {spec!r}")
    fields = {f.name: f for f in spec.fields}
    pos0 = fields[positions[0]]
    n = pos0.resolved(n_atoms)[-2]
    atom_axis = {f.name: _atom_axis(f, pos0, spec.variable) for f in spec.fields}
    vectors = set(positions) | set(vector_fields)
    dims = {fields[v].resolved(n)[-1] for v in vectors}
    if len(dims) != 1:
        raise ValueError(f"position and vector fields must share one coordinate dimension, got {sorted(dims)}")
    d = dims.pop()
    g = torch.Generator().manual_seed(seed)
    kw = dict(kwargs or {})

    def call(values: Fields) -> Fields:
        return spec.unpack(fn(spec.pack(values), **kw))

    x = {f.name: torch.randn(batch, *f.resolved(n), generator=g, dtype=dtype) for f in spec.fields}
    x = {k: remove_com(v) if k in positions else v for k, v in x.items()}
    y = call(x)

    def rotate(values: Fields, rot: Tensor) -> Fields:
        return {k: torch.einsum("b...d,bed->b...e", v, rot) if k in vectors else v for k, v in values.items()}

    def permute(values: Fields, perm: Tensor) -> Fields:
        out = {}
        for k, v in values.items():
            ax = atom_axis[k]
            if ax is None:
                out[k] = v
                continue
            shape = [batch] + [1] * (v.ndim - 1)
            shape[1 + ax] = n
            idx = perm.reshape(shape).expand_as(v)
            out[k] = torch.gather(v, 1 + ax, idx)
        return out

    errors: dict[str, float] = {}
    worst: dict[str, str] = {}

    def record(transform: str, got: Fields, want: Fields) -> None:
        for k in spec.names:
            e = float((got[k] - want[k]).abs().max()) if got[k].numel() else 0.0
            if e >= errors.get(transform, -1.0):
                errors[transform], worst[transform] = e, k

    for _ in range(n_rotations):
        rot = random_rotation(batch, d, g, dtype)
        record("rotation", call(rotate(x, rot)), rotate(y, rot))
    if reflections:
        flip = torch.ones(d, dtype=dtype)
        flip[0] = -1
        improper = random_rotation(batch, d, g, dtype) * flip  # R @ diag(-1, 1, ...): det -1
        record("reflection", call(rotate(x, improper)), rotate(y, improper))
    t = 3 * torch.randn(batch, d, generator=g, dtype=dtype)
    shifted = {k: v + t.reshape(batch, *[1] * (v.ndim - 2), d) if k in positions else v for k, v in x.items()}
    no_com = lambda vals: {k: remove_com(v) if k in positions else v for k, v in vals.items()}  # noqa: E731
    record("translation", no_com(call(shifted)), no_com(y))
    perm = torch.argsort(torch.rand(batch, n, generator=g), dim=1)
    record("permutation", call(permute(x, perm)), permute(y, perm))

    failing = [f"{t} (field {worst[t]!r}: max error {e:.3g} > atol {atol:g})" for t, e in errors.items() if e > atol]
    if failing:
        raise AssertionError("function is not equivariant under " + "; ".join(failing))
    return errors


def _atom_axis(f: Field, pos: Field, variable: bool) -> int | None:
    """The axis of ``f``'s per-sample shape that indexes atoms, or None for a per-molecule field."""
    if f.noise == "com_free" or f is pos:
        return len(f.shape) - 2
    if variable:
        return f.shape.index(None) if None in f.shape else None
    return 0 if f.shape and f.shape[0] == pos.shape[-2] else None
