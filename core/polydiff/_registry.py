"""The registries the core owns: specs by name, sorted, with errors that say what is valid."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

Source = Literal["builtin", "entry point", "programmatic"]


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class UnknownNameError(KeyError, ValueError):
    """A name that no plugin registered; the message lists the valid names and a close match."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], *, where: str = "") -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        close = difflib.get_close_matches(name, self.valid, n=1)
        self.suggestion = close[0] if close else None
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        listed = f"; valid: {', '.join(self.valid)}" if self.valid else ("" if where else "; none registered")
        self.message = f"unknown {kind} {name!r}{where}{listed}{hint}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.message


class DuplicateNameError(ValueError):
    """Two plugins registered the same name in one registry."""


class Registry(Generic[T]):
    """Specs of one kind by name, or by ``(modality, name)`` when ``by_modality`` (datasets).

    Iteration is sorted by key, so results never depend on the order plugins were called in.
    """

    def __init__(self, kind: str, *, by_modality: bool = False) -> None:
        self.kind, self.by_modality = kind, by_modality
        self._items: dict[tuple[str, ...], tuple[T, str]] = {}

    def _key(self, spec: T) -> tuple[str, ...]:
        return (str(getattr(spec, "modality")), spec.name) if self.by_modality else (spec.name,)  # noqa: B009

    def add(self, spec: T, *, plugin: str) -> None:
        """Add ``spec`` contributed by ``plugin``; a name already taken raises naming both plugins."""
        key = self._key(spec)
        if key in self._items:
            first = self._items[key][1]
            label = "/".join(key)
            raise DuplicateNameError(f"{_singular(self.kind)} {label!r} is "
                                     f"registered by both plugin {first!r} and plugin {plugin!r}; "
                                     "rename one or disable a plugin (POLYDIFF_DISABLE_PLUGINS)")
        self._items[key] = (spec, plugin)

    def get(self, name: str, *, modality: str | None = None) -> T:
        """The spec called ``name`` (in ``modality`` for a per-modality registry)."""
        if self.by_modality:
            if modality is None:
                raise TypeError(f"the {self.kind} registry is per modality: pass modality=")
            if (modality, name) in self._items:
                return self._items[(modality, name)][0]
            valid = [k[1] for k in self._items if k[0] == modality]
            where = f" for modality {modality!r}" if valid else (
                f" (no {self.kind} registered for modality {modality!r}; modalities with {self.kind}: "
                f"{', '.join(sorted({k[0] for k in self._items})) or 'none'})")
            raise UnknownNameError(_singular(self.kind), name, valid, where=where)
        if (name,) in self._items:
            return self._items[(name,)][0]
        raise UnknownNameError(_singular(self.kind), name, (k[0] for k in self._items))

    def provider(self, name: str, *, modality: str | None = None) -> str:
        """The plugin that registered ``name``."""
        spec = self.get(name, modality=modality)
        return self._items[self._key(spec)][1]

    def names(self) -> list[str]:
        return ["/".join(k) for k in sorted(self._items)]

    def __contains__(self, key: object) -> bool:
        key = key if isinstance(key, tuple) else (key,)
        return key in self._items

    def __iter__(self) -> Iterator[T]:
        return (self._items[k][0] for k in sorted(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} entries: {', '.join(self.names()) or '-'})"


def _singular(kind: str) -> str:
    return {"modalities": "modality", "mask_strategies": "mask strategy"}.get(kind, kind.rstrip("s"))


@dataclass(frozen=True, kw_only=True)
class PluginInfo:
    """What ``polydiff plugins`` shows about one plugin.

    ``status``: ``"ok"``, ``"unavailable: <reason>"`` or ``"disabled"``; ``provides``: the names the
    plugin contributes per registry (empty unless ``ok``).
    """

    name: str
    version: str | None
    source: Source
    status: str
    provides: Mapping[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = ["DuplicateNameError", "PluginInfo", "Registry", "Source", "UnknownNameError"]
