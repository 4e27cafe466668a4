"""The plugin host: loading plugins one at a time, collecting their specs, resolving name conflicts.

The public face, and the rules it follows, are in :mod:`polydiff.plugins`.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import itertools
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import pluggy

from polydiff.reporting import report

from . import hookspecs
from .declare import declared
from .guard import PluginCodeError, check_module_name, guarded, import_failure
from .registry import RANK, PluginInfo, Registry, Source, UnavailablePluginError, UnknownNameError, _singular, resolve
from .specs import (
    BackboneSpec,
    DatasetSpec,
    MaskStrategySpec,
    MetricSpec,
    ModalitySpec,
    SamplerSpec,
    ScheduleSpec,
    spec_problems,
)

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
UNUSABLE = ("unavailable", "broken", "disabled")


def _env_names(var: str) -> list[str]:
    """The comma-separated names in ``var``, in order, without blanks or repeats."""
    return list(dict.fromkeys(s.strip() for s in os.environ.get(var, "").split(",") if s.strip()))


def _failed(name: str, version: str | None, source: Source, state: str, reason: str,
            install: str | None = None) -> PluginInfo:
    status = f"{state}: {reason}" + (f". Install it with: {install}" if install else "")
    return PluginInfo(name=name, version=version, source=source, status=status, reason=reason, install=install)


class _Broken(Exception):
    """A plugin's hooks failed; the message is the reason shown in its status."""


def _short_repr(value: object) -> str:
    try:
        return guarded(lambda: f"{value!r:.200}")
    except PluginCodeError:
        return f"<{type(value).__name__}>"


def _key(kind: str, spec: Any) -> tuple[str, ...]:
    return (str(spec.modality), spec.name) if KINDS[kind][2] else (spec.name,)


class PluginHost:
    """A :class:`pluggy.PluginManager` plus the registries built from its plugins' hooks.

    Args:
        entry_points: discover plugins of the ``polydiff`` entry-point group (on first use), and the
            modules named by ``POLYDIFF_PLUGIN_MODULES``.
        builtins: register :mod:`polydiff.plugins.builtin` (the core's own contributions).
    """

    def __init__(self, *, entry_points: bool = True, builtins: bool = True) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self._lock = threading.RLock()
        self._load_entry_points = entry_points
        self._eps_done: set[tuple[str, str]] = set()  # entry points already tried (a Ctrl-C may stop the loop)
        self._infos: dict[str, PluginInfo] = {}  # name -> info, in registration order
        self._seq: dict[str, int] = {}  # name -> registration number (ties in RANK)
        self._counter = itertools.count()
        self._collected: dict[str, dict[str, list[Any]] | str] = {}  # hook results, or why they failed
        self._reported: set[tuple[str, str]] = set()
        self._contrib: dict[str, dict[str, list[Any]]] | None = None
        self._registries: dict[str, Registry[Any]] = {}
        if builtins:
            from . import builtin

            self._add(builtin, BUILTIN_NAME, "builtin", _version("polydiff"))

    # -- registration -----------------------------------------------------------------------
    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a module or object with :data:`~polydiff.plugins.hookspecs.hookimpl` functions (from a
        script, notebook or test); returns its name. Invalid hook implementations raise here."""
        with self._lock:
            name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
            if name in self._infos:
                raise ValueError(f"a plugin named {name!r} is already registered ({self._infos[name].source}); "
                                 "pass another name= or unregister it first")
            self._add(plugin, name, "programmatic", getattr(plugin, "__version__", None))
            self._invalidate()
            return name

    def unregister(self, plugin: object | str) -> None:
        """Remove a plugin given by name or object (built-ins included, e.g. in tests)."""
        with self._lock:
            self._ensure_entry_points()
            name = plugin if isinstance(plugin, str) else self.pm.get_name(declared(plugin))
            if name not in self._infos:
                raise UnknownNameError("plugin", str(plugin), self._infos)
            self._remove(name)

    def load_modules(self, names: Sequence[str], *, origin: str = "plugin modules") -> list[str]:
        """Import each module (the working directory is searched too, after the rest of ``sys.path``)
        and register it as a plugin (source ``"module"``), calling its hooks at once. The user asked
        for these by name, so every failure raises :class:`~polydiff.app.config.ConfigError` naming the
        module; a module already registered is skipped. Returns the names."""
        from polydiff.exceptions import ConfigError

        with self._lock:
            if names and os.getcwd() not in sys.path:
                sys.path.append(os.getcwd())
            for name in (n.strip() for n in names):
                problem = check_module_name(name)
                if problem:
                    raise ConfigError(f"{origin}: {problem}")
                try:
                    module = guarded(lambda: importlib.import_module(name))  # noqa: B023 (called at once)
                except PluginCodeError as e:
                    raise ConfigError(f"{origin}: plugin module {name!r} failed to import: {e}") from e.exc
                if name in self._infos:
                    if self.pm.get_plugin(name) is declared(module):
                        continue
                    raise ConfigError(f"{origin}: a plugin named {name!r} is already registered "
                                      f"({self._infos[name].source}); rename the module")
                try:
                    guarded(lambda: self._add(module, name, "module",  # noqa: B023
                                              getattr(module, "__version__", None)))  # noqa: B023
                except PluginCodeError as e:
                    raise ConfigError(f"{origin}: plugin module {name!r} could not be registered: {e}") from e.exc
                self._invalidate()
                result = self._collect(name)
                if isinstance(result, str) or not self.pm.get_hookcallers(self.pm.get_plugin(name)):
                    self._remove(name)
                    why = result if isinstance(result, str) else (
                        "it declares no polydiff_plugin = polydiff.plugins.SpecPlugin(...) and implements no "
                        f"polydiff hook (functions decorated with polydiff.hookimpl, named one of "
                        f"{', '.join(sorted(KINDS_BY_HOOK))})")
                    raise ConfigError(f"{origin}: plugin module {name!r} is broken: {why}")
            return [n.strip() for n in names]

    def _add(self, plugin: object, name: str, source: Source, version: str | None) -> None:
        self.pm.register(declared(plugin), name=name)  # a module's polydiff_plugin, else the module
        self._check_hooks(name)
        self._infos[name] = PluginInfo(name=name, version=version, source=source, status="ok")
        self._seq[name] = next(self._counter)

    def _remove(self, name: str) -> None:
        if self.pm.get_plugin(name) is not None:
            self.pm.unregister(name=name)
        del self._infos[name]
        self._collected.pop(name, None)
        self._invalidate()

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
        self.load_modules(_env_names("POLYDIFF_PLUGIN_MODULES"), origin="POLYDIFF_PLUGIN_MODULES")
        allow, deny = set(_env_names("POLYDIFF_PLUGINS")), set(_env_names("POLYDIFF_DISABLE_PLUGINS"))
        for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
            if (ep.name, ep.value) in self._eps_done:  # loaded before a Ctrl-C stopped the last attempt
                continue
            version = ep.dist.version if ep.dist is not None else None
            if ep.name in self._infos:  # keep the first; list this one under a distinct key
                key = f"{ep.name} ({ep.dist.name if ep.dist is not None else ep.value})"
                info: PluginInfo | None = _failed(key, version, "entry point", "unavailable",
                                                  f"another plugin named {ep.name!r} is already registered "
                                                  f"({self._infos[ep.name].source})")
            elif (allow and ep.name not in allow) or ep.name in deny or "*" in deny:
                why = "POLYDIFF_DISABLE_PLUGINS lists it" if ep.name in deny or "*" in deny else (
                    "POLYDIFF_PLUGINS does not list it")
                info = PluginInfo(name=ep.name, version=version, source="entry point", status="disabled", reason=why)
            else:
                info = self._load_one(ep, version)
            if info is not None:
                log.info("polydiff plugin %s: %s", info.name, info.status)
                self._infos[info.name] = info
            self._eps_done.add((ep.name, ep.value))
        self._load_entry_points = False

    def _load_one(self, ep: importlib.metadata.EntryPoint, version: str | None) -> PluginInfo | None:
        """Import and register one entry point; its failure, or None when it loaded."""
        try:
            plugin = guarded(ep.load)
        except PluginCodeError as e:  # a missing extra, any bug at import, even sys.exit(): never crash the host
            reason, install = import_failure(e.exc, ep.module, ep.dist, ep.name)
            return _failed(ep.name, version, "entry point", "unavailable", reason, install)
        try:
            guarded(lambda: self._add(plugin, ep.name, "entry point", version))
        except PluginCodeError as e:  # bad hook signatures, unknown hooks
            return _failed(ep.name, version, "entry point", "broken", str(e))
        return None

    def _invalidate(self) -> None:
        self._contrib = None
        self._registries = {}

    # -- collecting contributions -----------------------------------------------------------
    def _collect(self, name: str) -> dict[str, list[Any]] | str:
        """The specs of plugin ``name``'s hooks per kind (cached), or why they failed."""
        if name not in self._collected:
            try:
                self._collected[name] = self._call_hooks(name)
            except _Broken as e:
                self._collected[name] = str(e)
        return self._collected[name]

    def _contributions(self) -> dict[str, dict[str, list[Any]]]:
        """Per loaded plugin, per kind, the specs it registers (a name already taken is dropped)."""
        with self._lock:
            self._ensure_entry_points()
            if self._contrib is not None:
                return self._contrib
            good: dict[str, dict[str, list[Any]]] = {}
            loaded = [n for n in self._infos if self.pm.get_plugin(n) is not None]
            for name in sorted(loaded, key=lambda n: (RANK[self._infos[n].source], self._seq[n])):
                result = self._collect(name)
                if isinstance(result, str):
                    self._infos[name] = _failed(name, self._infos[name].version, self._infos[name].source,
                                                "broken", result)
                else:
                    good[name] = result
            kept, problems = resolve(good, _key)
            for name, kinds in kept.items():
                found = problems.get(name, [])
                reason = f"disabled {', '.join(found)}; rename them" if found else None
                self._infos[name] = replace(self._infos[name], status=f"conflict: {reason}" if reason else "ok",
                                            reason=reason, install=None,
                                            provides={k: sorted(_label(s) for s in v) for k, v in kinds.items()})
                for problem in found:
                    if (name, problem) not in self._reported:
                        self._reported.add((name, problem))
                        report(f"plugin {name!r}: disabled its {problem}; the first registration wins")
            self._contrib = kept
            return kept

    def _call_hooks(self, name: str) -> dict[str, list[Any]]:
        plugin = self.pm.get_plugin(name)
        out: dict[str, list[Any]] = {}
        for kind, (hook, cls, _) in KINDS.items():
            caller = getattr(self.pm.hook, hook)
            for impl in caller.get_hookimpls():
                if impl.plugin is not plugin or impl.hookwrapper or impl.wrapper:
                    continue
                try:
                    result = guarded(impl.function)  # every register_* hook takes no arguments (yet)
                except PluginCodeError as e:
                    raise _Broken(f"hook {hook} raised {e}") from e
                if result is None:
                    continue
                if not isinstance(result, list | tuple) or not all(isinstance(s, cls) for s in result):
                    raise _Broken(f"hook {hook} must return a list of {cls.__name__}, got {_short_repr(result)}")
                try:
                    problems = guarded(lambda: [f"{type(s).__name__} {s.name!r}: {p}"
                                                for s in result for p in spec_problems(s)])  # noqa: B023
                except PluginCodeError as e:
                    raise _Broken(f"hook {hook} returned specs that cannot be checked: {e}") from e
                if problems:
                    raise _Broken(f"hook {hook} returned invalid specs: {'; '.join(problems)}")
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
                for plugin in contrib:  # names are unique after resolve()
                    for spec in contrib[plugin].get(kind, []):
                        reg.add(spec, plugin=plugin)
                self._registries[kind] = reg
            return self._registries[kind]

    def plugins(self) -> list[PluginInfo]:
        """Every known plugin (built-in first, then by name) with its status and contributions."""
        self._contributions()
        infos = list(self._infos.values())
        return sorted(infos, key=lambda i: (i.source != "builtin", i.name))

    def _get(self, kind: str, name: str, modality: str | None = None) -> Any:
        try:
            return self.registry(kind).get(name, modality=modality)
        except UnknownNameError as e:
            raise self._explain(kind, name, modality, e) from None

    def _explain(self, kind: str, name: str, modality: str | None, error: UnknownNameError) -> UnknownNameError:
        """``error``, or why the name is missing when an unusable plugin would provide it."""
        unusable = {i.name: i for i in self._infos.values() if i.status.partition(":")[0] in UNUSABLE}
        wanted = name if kind == "modalities" else modality
        if wanted in unusable and wanted not in self.registry("modalities"):
            what = "" if kind == "modalities" else f"{_singular(kind)} {name!r} of modality {wanted!r}: "
            return UnavailablePluginError("modality", wanted, self.registry("modalities").names(),
                                          info=unusable[wanted], what=what)
        if unusable and error.suggestion is None:
            error.message += "; not loaded, and may provide it: " + "; ".join(
                f"plugin {i.name!r} ({i.status})" for i in unusable.values())
            error.args = (error.message,)
        return error

    # -- typed lookups -----------------------------------------------------------------------
    def get_modality(self, name: str) -> ModalitySpec:
        return self._get("modalities", name)

    def get_dataset(self, modality: str, name: str) -> DatasetSpec:
        return self._get("datasets", name, modality)

    def get_backbone(self, name: str) -> BackboneSpec:
        return self._get("backbones", name)

    def get_schedule(self, name: str) -> ScheduleSpec:
        return self._get("schedules", name)

    def get_sampler(self, name: str) -> SamplerSpec:
        return self._get("samplers", name)

    def get_metric(self, name: str) -> MetricSpec:
        return self._get("metrics", name)

    def get_mask_strategy(self, name: str) -> MaskStrategySpec:
        return self._get("mask_strategies", name)

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
