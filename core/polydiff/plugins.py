"""Plugin loading: the host that builds the core's registries from every plugin's hooks.

Plugins are found through the entry-point group ``polydiff`` and loaded explicitly, lazily (on the
first registry access, never at import) and one at a time: a plugin whose import or hook fails is
listed as ``unavailable: <reason>`` and never takes the host down. The core's own schedules,
samplers, mask strategies and ``points`` modality come from :mod:`polydiff.builtin` through the same
hooks.

Environment variables, read when entry points are first loaded (call :func:`reset` after changing them):

* ``POLYDIFF_PLUGINS=image,audio``: load only these entry points (allow-list);
* ``POLYDIFF_DISABLE_PLUGINS=video``: never load these (deny-list; ``*`` disables every entry point).

Built-ins and programmatically registered plugins are not affected by either list.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import threading
from typing import Any

import pluggy

from . import hookspecs
from ._registry import DuplicateNameError, PluginInfo, Registry, Source, UnknownNameError
from .specs import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec, SamplerSpec, ScheduleSpec

GROUP = "polydiff"
BUILTIN_NAME = "polydiff"
log = logging.getLogger(__name__)


# registry kind -> (hook, spec type, keyed by (modality, name)?)
KINDS: dict[str, tuple[str, type, bool]] = {
    "modalities": ("polydiff_register_modalities", ModalitySpec, False),
    "datasets": ("polydiff_register_datasets", DatasetSpec, True),
    "backbones": ("polydiff_register_backbones", BackboneSpec, False),
    "schedules": ("polydiff_register_schedules", ScheduleSpec, False),
    "samplers": ("polydiff_register_samplers", SamplerSpec, False),
    "metrics": ("polydiff_register_metrics", MetricSpec, False),
    "mask_strategies": ("polydiff_register_mask_strategies", MaskStrategySpec, False),
}


def _env_list(var: str) -> set[str]:
    return {s.strip() for s in os.environ.get(var, "").split(",") if s.strip()}


def _install_hint(ep: importlib.metadata.EntryPoint) -> str:
    """``pip install 'dist[extra]'`` when the distribution has an extra named like the entry point."""
    dist = ep.dist
    if dist is None:
        return f"pip install {ep.module.split('.')[0]}"
    extras = dist.metadata.get_all("Provides-Extra") or []
    return f"pip install '{dist.name}[{ep.name}]'" if ep.name in extras else f"pip install {dist.name}"


class PluginHost:
    """A :class:`pluggy.PluginManager` plus the registries built from its plugins' hooks.

    Args:
        entry_points: discover plugins of the ``polydiff`` entry-point group (on first use).
        builtins: register :mod:`polydiff.builtin` (the core's own contributions).
    """

    def __init__(self, *, entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._load_entry_points = entry_points
        self._infos: dict[str, PluginInfo] = {}  # name -> info, in registration order
        self._contrib: dict[str, dict[str, list[Any]]] | None = None
        self._registries: dict[str, Registry[Any]] = {}
        if builtins:
            from . import builtin

            self._add(builtin, BUILTIN_NAME, "builtin", _version("polydiff"))

    # -- registration -----------------------------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a module or object with :data:`~polydiff.hookspecs.hookimpl` functions (from a
        script, notebook or test); returns its name. Invalid hook implementations raise here."""
        with self._lock:
            name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            if name in self._infos:
                raise ValueError(f"a plugin named {name!r} is already registered ({self._infos[name].source}); "
                                 "pass another name= or unregister it first")
            self.pm.register(plugin, name=name)
            self._check_hooks(name)
            self._infos[name] = PluginInfo(name=name, version=getattr(plugin, "__version__", None),
                                           source="programmatic", status="ok")
            self._invalidate()
            return name

    def unregister(self, plugin: object | str) -> None:
        """Remove a plugin given by name or object (built-ins included, e.g. in tests)."""
        with self._lock:
            self._ensure_entry_points()
            name = plugin if isinstance(plugin, str) else self.pm.get_name(plugin)
            if name not in self._infos:
                raise UnknownNameError("plugin", str(plugin), self._infos)
            if self.pm.get_plugin(name) is not None:
                self.pm.unregister(name=name)
            del self._infos[name]
            self._invalidate()

    def _add(self, plugin: object, name: str, source: Source, version: str | None) -> None:
        self.pm.register(plugin, name=name)
        self._check_hooks(name)
        self._infos[name] = PluginInfo(name=name, version=version, source=source, status="ok")

    def _check_hooks(self, name: str) -> None:
        # pluggy only complains about unknown hooks in check_pending(), for all plugins at once
        plugin = self.pm.get_plugin(name)
        unknown = [c.name for c in self.pm.get_hookcallers(plugin) or [] if not c.has_spec()]
        if unknown:
            self.pm.unregister(name=name)
            raise pluggy.PluginValidationError(
                plugin, f"plugin {name!r} implements unknown hook(s) {unknown}; known: {sorted(KINDS_BY_HOOK)}")

    def _ensure_entry_points(self) -> None:
        if not self._load_entry_points:
            return
        self._load_entry_points = False
        allow, deny = _env_list("POLYDIFF_PLUGINS"), _env_list("POLYDIFF_DISABLE_PLUGINS")
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
            version = ep.dist.version if ep.dist is not None else None
            key = ep.name
            if ep.name in self._infos:  # keep the first; list this one under a distinct key
                key = f"{ep.name} ({ep.dist.name if ep.dist is not None else ep.value})"
                status = (f"unavailable: another plugin named {ep.name!r} is already registered "
                          f"({self._infos[ep.name].source})")
            elif (allow and ep.name not in allow) or ep.name in deny or "*" in deny:
                status = "disabled"
            else:
                status = self._load_one(ep, version)
            if status != "ok":
                log.info("polydiff plugin %s: %s", ep.name, status)
                self._infos[key] = PluginInfo(name=key, version=version, source="entry point", status=status)

    def _load_one(self, ep: importlib.metadata.EntryPoint, version: str | None) -> str:
        try:
            plugin = ep.load()
        except Exception as e:  # a missing extra, or any bug at import: never crash the host
            return f"unavailable: {type(e).__name__}: {e}. Install it with: {_install_hint(ep)}"
        try:
            self._add(plugin, ep.name, "entry point", version)
        except Exception as e:  # bad hook signatures, unknown hooks
            return f"unavailable: {type(e).__name__}: {e}"
        return "ok"

    def _invalidate(self) -> None:
        self._contrib = None
        self._registries = {}

    # -- collecting contributions -----------------------------------------------------------
    def _contributions(self) -> dict[str, dict[str, list[Any]]]:
        """Per plugin, per kind, the specs its hooks return; a failing plugin becomes unavailable."""
        with self._lock:
            self._ensure_entry_points()
            if self._contrib is not None:
                return self._contrib
            contrib: dict[str, dict[str, list[Any]]] = {}
            for name, info in list(self._infos.items()):
                if self.pm.get_plugin(name) is None:  # failed to import, or disabled
                    continue
                try:
                    contrib[name] = self._call_hooks(name)
                except Exception as e:
                    self._infos[name] = PluginInfo(name=name, version=info.version, source=info.source,
                                                   status=f"unavailable: {e}")
                    continue
                self._infos[name] = PluginInfo(name=name, version=info.version, source=info.source, status="ok",
                                               provides={k: sorted(_label(s) for s in v)
                                                         for k, v in contrib[name].items() if v})
            self._contrib = contrib
            return contrib

    def _call_hooks(self, name: str) -> dict[str, list[Any]]:
        plugin = self.pm.get_plugin(name)
        out: dict[str, list[Any]] = {}
        for kind, (hook, cls, _) in KINDS.items():
            caller = getattr(self.pm.hook, hook)
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin or impl.hookwrapper or impl.wrapper:
                    continue
                try:
                    result = impl.function()  # every register_* hook takes no arguments (yet)
                except Exception as e:
                    raise RuntimeError(f"hook {hook} raised {type(e).__name__}: {e}") from e
                if result is None:
                    continue
                if not isinstance(result, list | tuple) or not all(isinstance(s, cls) for s in result):
                    raise RuntimeError(f"hook {hook} must return a list of {cls.__name__}, got {result!r:.200}")
                out.setdefault(kind, []).extend(result)
        return out

    def registry(self, kind: str) -> Registry[Any]:
        """The registry of ``kind`` (one of :data:`KINDS`), built on first use and cached."""
        if kind not in KINDS:
            raise UnknownNameError("registry", kind, KINDS)
        with self._lock:
            contrib = self._contributions()
            if kind not in self._registries:
                reg: Registry[Any] = Registry(kind, by_modality=KINDS[kind][2])
                for plugin in sorted(contrib):  # a fixed order keeps duplicate messages stable
                    for spec in contrib[plugin].get(kind, []):
                        reg.add(spec, plugin=plugin)
                self._registries[kind] = reg
            return self._registries[kind]

    def plugins(self) -> list[PluginInfo]:
        """Every known plugin (built-in first, then by name) with its status and contributions."""
        self._contributions()
        infos = list(self._infos.values())
        return sorted(infos, key=lambda i: (i.source != "builtin", i.name))

    # -- typed lookups -----------------------------------------------------------------------
    def get_modality(self, name: str) -> ModalitySpec:
        return self.registry("modalities").get(name)

    def get_dataset(self, modality: str, name: str) -> DatasetSpec:
        return self.registry("datasets").get(name, modality=modality)

    def get_backbone(self, name: str) -> BackboneSpec:
        return self.registry("backbones").get(name)

    def get_schedule(self, name: str) -> ScheduleSpec:
        return self.registry("schedules").get(name)

    def get_sampler(self, name: str) -> SamplerSpec:
        return self.registry("samplers").get(name)

    def get_metric(self, name: str) -> MetricSpec:
        return self.registry("metrics").get(name)

    def get_mask_strategy(self, name: str) -> MaskStrategySpec:
        return self.registry("mask_strategies").get(name)

    def modalities(self) -> list[ModalitySpec]:
        return list(self.registry("modalities"))

    def datasets(self, modality: str | None = None) -> list[DatasetSpec]:
        return [d for d in self.registry("datasets") if modality is None or d.modality == modality]

    def backbones(self, modality: str | None = None) -> list[BackboneSpec]:
        """Backbones for ``modality``, generic ones (``modality=None``) included; all when not given."""
        return [b for b in self.registry("backbones") if modality is None or b.modality in (None, modality)]

    def schedules(self) -> list[ScheduleSpec]:
        return list(self.registry("schedules"))

    def samplers(self) -> list[SamplerSpec]:
        return list(self.registry("samplers"))

    def metrics(self, modality: str | None = None) -> list[MetricSpec]:
        """Metrics for ``modality``, generic ones included; all when not given."""
        return [m for m in self.registry("metrics") if modality is None or m.modality in (None, modality)]

    def mask_strategies(self) -> list[MaskStrategySpec]:
        return list(self.registry("mask_strategies"))

    def __repr__(self) -> str:
        return f"PluginHost({', '.join(f'{i.name}: {i.status}' for i in self._infos.values())})"


KINDS_BY_HOOK = {hook: kind for kind, (hook, _, _) in KINDS.items()}


def _label(spec: Any) -> str:
    return f"{spec.modality}/{spec.name}" if isinstance(spec, DatasetSpec) else spec.name


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# -- the default host and module-level shortcuts ----------------------------------------------
_default: PluginHost | None = None
_default_lock = threading.Lock()


def host() -> PluginHost:
    """The process-wide host (created on first use; entry points load on first registry access)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = PluginHost()
        return _default


def reset() -> None:
    """Forget the default host: programmatic registrations and loaded entry points (for tests, or
    after changing ``POLYDIFF_PLUGINS``)."""
    global _default
    with _default_lock:
        _default = None


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin module or object with the default host; see :meth:`PluginHost.register`."""
    return host().register(plugin, name)


def unregister(plugin: object | str) -> None:
    host().unregister(plugin)



def plugins() -> list[PluginInfo]:
    return host().plugins()


def get_modality(name: str) -> ModalitySpec:
    return host().get_modality(name)


def get_dataset(modality: str, name: str) -> DatasetSpec:
    return host().get_dataset(modality, name)


def get_backbone(name: str) -> BackboneSpec:
    return host().get_backbone(name)


def get_schedule(name: str) -> ScheduleSpec:
    return host().get_schedule(name)


def get_sampler(name: str) -> SamplerSpec:
    return host().get_sampler(name)


def get_metric(name: str) -> MetricSpec:
    return host().get_metric(name)


def get_mask_strategy(name: str) -> MaskStrategySpec:
    return host().get_mask_strategy(name)


def modalities() -> list[ModalitySpec]:
    return host().modalities()


def datasets(modality: str | None = None) -> list[DatasetSpec]:
    return host().datasets(modality)


def backbones(modality: str | None = None) -> list[BackboneSpec]:
    return host().backbones(modality)


def schedules() -> list[ScheduleSpec]:
    return host().schedules()


def samplers() -> list[SamplerSpec]:
    return host().samplers()


def metrics(modality: str | None = None) -> list[MetricSpec]:
    return host().metrics(modality)


def mask_strategies() -> list[MaskStrategySpec]:
    return host().mask_strategies()


__all__ = ["DuplicateNameError", "PluginHost", "PluginInfo", "Registry", "UnknownNameError", "backbones",
           "datasets", "get_backbone", "get_dataset", "get_mask_strategy", "get_metric", "get_modality",
           "get_sampler", "get_schedule", "host", "mask_strategies", "metrics", "modalities", "plugins",
           "register", "reset", "samplers", "schedules", "unregister"]
