"""What is diffused: named tensor fields, their noise spaces, padding and observed masks.

A modality declares a :class:`StateSpec` (immutable, readable ``repr``). The core packs the fields
of a batch into ONE tensor so that samplers, losses and likelihood stay plain tensor maths:

* one field: the tensor itself, ``[B, *shape]`` (images stay ``[B, C, H, W]``);
* several fields: each flattened to ``[B, -1]`` and concatenated along dim 1.

A field shape may use ``None`` for the variable-length axis (atoms, time steps). All fields of a
state share that one axis; samples shorter than the batch's longest are padded and a padding mask
(``1`` = real entry) travels with the batch in packed shape.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import torch
from torch import Tensor

NoiseSpace = Literal["gaussian", "com_free"]


@dataclass(frozen=True)
class Field:
    """One named tensor of a sample.

    Args:
        name: key of the field, e.g. ``"x"``, ``"pos"``, ``"atom_types"``.
        shape: per-sample shape; ``None`` marks the variable-length axis (at most one).
        noise: ``"gaussian"`` (plain isotropic noise) or ``"com_free"``: noise, samples and the
            model output live in the zero centre-of-mass subspace (Hoogeboom et al. 2022, Sec. 3.2);
            the last axis holds coordinates and the mean is taken over the axis before it.
    """

    name: str
    shape: tuple[int | None, ...]
    noise: NoiseSpace = "gaussian"

    def __post_init__(self) -> None:
        if sum(d is None for d in self.shape) > 1:
            raise ValueError(f"field {self.name!r}: at most one variable (None) axis, got {self.shape}")
        if self.noise not in ("gaussian", "com_free"):
            raise ValueError(f"field {self.name!r}: noise must be 'gaussian' or 'com_free', got {self.noise!r}")
        if self.noise == "com_free" and (len(self.shape) != 2 or self.shape[1] is None):
            # the centre of mass is a mean over axis -2 (atoms), which is also the padded axis
            raise ValueError(f"field {self.name!r}: com_free needs a shape (N, D) such as (None, 3), got {self.shape}")

    def resolved(self, length: int | None) -> tuple[int, ...]:
        if None in self.shape and length is None:
            raise ValueError(f"field {self.name!r} has a variable axis: give its length")
        return tuple(length if d is None else d for d in self.shape)  # type: ignore[misc]

    def __repr__(self) -> str:
        dims = ", ".join("N" if d is None else str(d) for d in self.shape)
        extra = "" if self.noise == "gaussian" else f", {self.noise}"
        return f"{self.name}[{dims}{extra}]"


@dataclass(frozen=True)
class StateSpec:
    """The fields of a modality's state, in packing order."""

    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if not names:
            raise ValueError("a state needs at least one field")
        if len(set(names)) != len(names):
            raise ValueError(f"field names must be unique, got {names}")

    @property
    def variable(self) -> bool:
        return any(None in f.shape for f in self.fields)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def __repr__(self) -> str:
        return "StateSpec(" + ", ".join(map(repr, self.fields)) + ")"

    # -- packing ---------------------------------------------------------------------------
    def pack(self, values: dict[str, Tensor]) -> Tensor:
        """Named fields ``{name: [B, *shape]}`` -> one packed tensor."""
        missing = set(self.names) - set(values)
        extra = set(values) - set(self.names)
        if missing or extra:
            raise ValueError(f"state fields mismatch: missing {sorted(missing)}, unexpected {sorted(extra)}; "
                             f"expected {list(self.names)}")
        length = self._length_of(values)
        for f in self.fields:
            want = f.resolved(length)
            got = tuple(values[f.name].shape[1:])
            if got != want:
                raise ValueError(f"field {f.name!r}: expected per-sample shape {list(want)}, got {list(got)}")
        if len(self.fields) == 1:
            return values[self.fields[0].name]
        b = values[self.fields[0].name].shape[0]
        return torch.cat([values[f.name].reshape(b, -1) for f in self.fields], dim=1)

    def unpack(self, x: Tensor) -> dict[str, Tensor]:
        """Packed tensor -> named fields (views where possible)."""
        if len(self.fields) == 1:
            return {self.fields[0].name: x}
        length = self.length_of_packed(x)
        out, start = {}, 0
        for f in self.fields:
            shape = f.resolved(length)
            n = math.prod(shape)
            out[f.name] = x[:, start:start + n].reshape(x.shape[0], *shape)
            start += n
        return out

    def length_of_packed(self, x: Tensor) -> int | None:
        if len(self.fields) == 1:
            f = self.fields[0]
            return None if None not in f.shape else int(x.shape[1 + f.shape.index(None)])
        fixed = sum(math.prod(d for d in f.shape if d is not None) for f in self.fields if None not in f.shape)
        per_item = sum(math.prod(d for d in f.shape if d is not None) for f in self.fields if None in f.shape)
        total = x.shape[1] if x.ndim == 2 else -1
        if total < fixed or (per_item == 0 and total != fixed) or (per_item and (total - fixed) % per_item):
            raise ValueError(f"packed tensor of shape {list(x.shape)} does not fit {self!r}")
        return (total - fixed) // per_item if per_item else None

    def _length_of(self, values: dict[str, Tensor]) -> int | None:
        lengths = {int(values[f.name].shape[1 + f.shape.index(None)]) for f in self.fields if None in f.shape}
        if len(lengths) > 1:
            raise ValueError(f"all variable-length fields must share one length, got {sorted(lengths)}")
        return lengths.pop() if lengths else None

    # -- masks and noise spaces ------------------------------------------------------------
    def padding_mask(self, lengths: Tensor, max_length: int) -> Tensor:
        """Packed-shape float mask (1 = real) for samples with ``lengths`` real items."""
        items = (torch.arange(max_length, device=lengths.device)[None, :] < lengths[:, None]).float()
        parts = {}
        for f in self.fields:
            shape = f.resolved(max_length)
            if None in f.shape:
                axis = f.shape.index(None)
                view = [lengths.shape[0]] + [1] * len(shape)
                view[1 + axis] = max_length
                parts[f.name] = items.reshape(view).expand(lengths.shape[0], *shape)
            else:
                parts[f.name] = torch.ones(lengths.shape[0], *shape, device=lengths.device)
        return self.pack(parts)

    def project(self, x: Tensor, padding: Tensor | None = None) -> Tensor:
        """Map a packed tensor into the state's noise space: zero padding, remove the centre of mass."""
        if padding is not None:
            x = x * padding
        if not any(f.noise == "com_free" for f in self.fields):
            return x
        parts = self.unpack(x)
        masks = self.unpack(padding) if padding is not None else {}
        for f in self.fields:
            if f.noise == "com_free":
                parts[f.name] = remove_com(parts[f.name], masks.get(f.name))
        return self.pack(parts)

    def dims(self, padding: Tensor | None, x: Tensor) -> Tensor:
        """Degrees of freedom per sample: real entries, minus the coordinates fixed by each CoM."""
        d = padding.reshape(x.shape[0], -1).sum(1) if padding is not None else torch.full(
            (x.shape[0],), float(x[0].numel()), device=x.device)
        for f in self.fields:
            if f.noise == "com_free":
                d = d - float(f.shape[-1])  # type: ignore[arg-type]
        return d


def projector(spec: StateSpec | None, padding: Tensor | None) -> Callable[[Tensor], Tensor]:
    """``x -> x`` mapped into the noise space of ``spec`` under ``padding`` (one rule for samplers,
    noise, likelihood and losses): padded entries zeroed, centres of mass removed."""
    if spec is not None:
        return lambda t: spec.project(t, padding)
    return (lambda t: t) if padding is None else (lambda t: t * padding)


def degrees_of_freedom(spec: StateSpec | None, padding: Tensor | None, x: Tensor) -> Tensor:
    """Per-sample dimension of the noise space (real entries, minus each removed centre of mass)."""
    if spec is not None:
        return spec.dims(padding, x)
    if padding is not None:
        return padding.reshape(x.shape[0], -1).sum(1)
    return torch.full((x.shape[0],), float(x[0].numel()), device=x.device)


def remove_com(pos: Tensor, mask: Tensor | None = None) -> Tensor:
    """Subtract the centre of mass over axis -2 of ``pos`` (``[B, ..., N, 3]``), counting real atoms only."""
    if mask is None:
        return pos - pos.mean(dim=-2, keepdim=True)
    m = mask.to(pos.dtype)
    com = (pos * m).sum(dim=-2, keepdim=True) / m.sum(dim=-2, keepdim=True).clamp_min(1.0)
    return (pos - com) * m


@dataclass
class Batch:
    """A batch as the core sees it: packed data plus masks and conditioning.

    Args:
        x: packed clean data ``[B, ...]``.
        padding: packed-shape float mask, 1 = real entry (``None``: all real).
        observed: packed-shape float mask, 1 = observed / given entry (conditioning, imputation);
            ``None``: nothing observed.
        cond: extra conditioning passed to the backbone by keyword, e.g. ``{"label": LongTensor[B]}``.
    """

    x: Tensor
    padding: Tensor | None = None
    observed: Tensor | None = None
    cond: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("padding", "observed"):
            m = getattr(self, name)
            if m is not None and m.shape != self.x.shape:
                raise ValueError(f"Batch.{name} must have the packed shape {list(self.x.shape)}, "
                                 f"got {list(m.shape)}")
        for k, v in self.cond.items():
            if v.shape[0] != self.x.shape[0]:
                raise ValueError(f"Batch.cond[{k!r}] has {v.shape[0]} rows for a batch of {self.x.shape[0]}")

    def __len__(self) -> int:
        return self.x.shape[0]

    def present(self) -> Tensor:
        """The entries that hold data, as a float mask like ``x``: ``observed``, else ``padding``, else
        all of them (what a loss, a mask strategy or an imputation may use as known values)."""
        if self.observed is not None:
            return self.observed
        return self.padding if self.padding is not None else torch.ones_like(self.x)

    def to(self, device: torch.device | str) -> Batch:
        mv = lambda t: None if t is None else t.to(device)  # noqa: E731
        return Batch(x=self.x.to(device), padding=mv(self.padding), observed=mv(self.observed),
                     cond={k: v.to(device) for k, v in self.cond.items()})

    def select(self, index: Tensor | slice) -> Batch:
        sl = lambda t: None if t is None else t[index]  # noqa: E731
        return replace(self, x=self.x[index], padding=sl(self.padding), observed=sl(self.observed),
                       cond={k: v[index] for k, v in self.cond.items()})
