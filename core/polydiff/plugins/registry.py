"""The registries the core owns: specs by name, sorted, with errors that say what is valid."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

Source = Literal["builtin", "entry point", "module", "programmatic"]
RANK: dict[str, int] = {"builtin": 0, "entry point": 1, "module": 2, "programmatic": 3}
"""Who wins a name two plugins register: the lower rank, then the earlier registration."""


class _Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=_Named)


class UnknownNameError(KeyError, ValueError):
    """A name that no plugin registered; the message lists the valid names and a close match."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], *, where: str = "", note: str = "") -> None:
        self.kind, self.name, self.valid = kind, name, sorted(valid)
        close = difflib.get_close_matches(name, self.valid, n=1)
        self.suggestion = close[0] if close else None
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        listed = f"; valid: {', '.join(self.valid)}" if self.valid else ("" if where else "; none registered")
        self.message = f"unknown {kind} {name!r}{where}{listed}{hint}{note}"
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError would print the repr of the message
        return self.message


class UnavailablePluginError(UnknownNameError):
    """A name that belongs to a plugin which is installed but not usable (unavailable, broken or
    disabled); the message says which plugin, why, and how to fix it."""

    def __init__(self, kind: str, name: str, valid: Iterable[str], *, info: PluginInfo, what: str = "") -> None:
        super().__init__(kind, name, valid)
        self.plugin = info
        state, _, _ = info.status.partition(":")
        why = f"{state}: {info.reason}" if info.reason else state
        fix = f"; install it with: {info.install}" if info.install else ""
        self.message = f"{what}{kind} {name!r} is provided by plugin {info.name!r}, which is {why}{fix}"
        self.args = (self.message,)


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

    ``status``, one line:

    * ``"ok"``;
    * ``"conflict: <names>"``: loaded, but some of its names were already taken by another plugin (see
      :data:`RANK`); those entries are disabled, the rest work;
    * ``"broken: <reason>"``: imported, but a hook raised or returned invalid specs; nothing registered;
    * ``"unavailable: <reason>[. Install it with: <command>]"``: its import failed;
    * ``"disabled"``: excluded by ``POLYDIFF_PLUGINS`` / ``POLYDIFF_DISABLE_PLUGINS``.

    ``reason`` and ``install`` hold the parts of the status (``install`` only when the cause is a
    missing module); ``provides``: the names the plugin contributes per registry.
    """

    name: str
    version: str | None
    source: Source
    status: str
    provides: Mapping[str, list[str]] = field(default_factory=dict)
    reason: str | None = None
    install: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve(contrib: Mapping[str, Mapping[str, list[Any]]], key: Callable[[str, Any], tuple[str, ...]]
            ) -> tuple[dict[str, dict[str, list[Any]]], dict[str, list[str]]]:
    """Drop every entry whose ``(kind, key)`` an earlier plugin of ``contrib`` (iterated in priority
    order) already registered: ``(kept contributions, per plugin the sentences naming what was dropped)``."""
    owner: dict[tuple[str, ...], str] = {}
    kept: dict[str, dict[str, list[Any]]] = {}
    problems: dict[str, list[str]] = {}
    for plugin, kinds in contrib.items():
        kept[plugin] = {}
        for kind, specs in kinds.items():
            for spec in specs:
                k = (kind, *key(kind, spec))
                if k in owner:
                    first = "this plugin registers it twice" if owner[k] == plugin else f"plugin {owner[k]!r} has it"
                    problems.setdefault(plugin, []).append(f"{_singular(kind)} {'/'.join(k[1:])!r} ({first})")
                    continue
                owner[k] = plugin
                kept[plugin].setdefault(kind, []).append(spec)
    return kept, problems


__all__ = ["RANK", "DuplicateNameError", "PluginInfo", "Registry", "Source", "UnavailablePluginError",
           "UnknownNameError", "resolve"]
