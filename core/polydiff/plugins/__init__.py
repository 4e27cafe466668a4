"""Plugin loading: the host that builds the core's registries from every plugin's hooks.

Plugins are found through the entry-point group ``polydiff`` and loaded explicitly, lazily (on the
first registry access, never at import) and one at a time. The core's own schedules, samplers, mask
strategies and ``points`` modality come from :mod:`polydiff.plugins.builtin` through the same hooks.

Environment variables, read when entry points are first loaded (call :func:`reset` after changing them):

* ``POLYDIFF_PLUGINS=image,audio``: load only these entry points (allow-list);
* ``POLYDIFF_DISABLE_PLUGINS=video``: never load these (deny-list; ``*`` disables every entry point);
* ``POLYDIFF_PLUGIN_MODULES=my_plugin,pkg.plugin``: import these modules (the working directory is
  searched too) and register them, as :func:`load_plugin_modules` (``polydiff -p MODULE``) does; one
  that fails raises :class:`~polydiff.app.config.ConfigError`.

Built-ins, plugin modules and programmatically registered plugins are not affected by the lists.

A plugin never takes the host down (see ``docs/tutorial-plugin.md``, "When a plugin misbehaves"):

* whatever its import raises, ``SystemExit`` and ``KeyboardInterrupt`` included, makes it
  ``unavailable: <reason>``; a hook that raises, or returns specs that fail
  :func:`polydiff.plugins.specs.spec_problems`, makes it ``broken: <reason>`` (nothing of it is registered). A
  Ctrl-C from the user still stops the program: the rule is in :mod:`polydiff.plugins.guard`;
* ``Install it with: pip install ...`` is added only when the import failed on a missing module that is
  not the plugin's own;
* a name two plugins register goes to the first in priority order (:data:`~polydiff.plugins.registry.RANK`:
  built-ins, then entry points by name, then plugin modules, then programmatic registrations, each in
  registration order); the later plugin's entry is disabled, its status says ``conflict: ...`` and a
  ``polydiff:`` line on stderr reports it, while all its other names work;
* looking up a modality (or a dataset of it) whose plugin is unusable raises
  :class:`~polydiff.plugins.registry.UnavailablePluginError` naming the plugin, the reason and the fix. The host
  cannot call an unusable plugin's hooks, so it relies on the convention that a modality plugin's
  entry-point name is its modality's name (``audio = "polydiff_audio"`` provides ``audio``); for other
  names the error lists the unusable plugins that might provide them.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from polydiff.diffusion.contracts import use_registry

from .declare import SpecPlugin
from .hookspecs import hookimpl
from .host import BUILTIN_NAME, GROUP, KINDS, KINDS_BY_HOOK, PluginHost
from .registry import DuplicateNameError, PluginInfo, Registry, UnavailablePluginError, UnknownNameError
from .specs import (
    BackboneSpec,
    BaselineSpec,
    ClassifierInfo,
    DatasetSpec,
    MaskStrategySpec,
    MetricSpec,
    ModalitySpec,
    NotApplicable,
    SamplerSpec,
    ScheduleSpec,
    signature_options,
)

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
    """Forget the default host: programmatic registrations, plugin modules and loaded entry points (for
    tests, or after changing ``POLYDIFF_PLUGINS``, ``POLYDIFF_DISABLE_PLUGINS`` or
    ``POLYDIFF_PLUGIN_MODULES``). Imported modules stay in ``sys.modules``."""
    global _default
    with _default_lock:
        _default = None


def register(plugin: object, name: str | None = None) -> str:
    """Register a plugin module or object with the default host; see :meth:`PluginHost.register`."""
    return host().register(plugin, name)


def unregister(plugin: object | str) -> None:
    host().unregister(plugin)


def load_plugin_modules(names: Sequence[str]) -> None:
    """Import plugin modules by name (searching the working directory too) and register them with the
    default host; any failure raises :class:`~polydiff.app.config.ConfigError` naming the module. See
    :meth:`PluginHost.load_modules`."""
    host().load_modules(names)


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


def scoring(modality: str) -> dict[str, Any]:
    """What :func:`polydiff.evaluation.score_samples` / ``score_imputation`` need for ``modality``: its
    ``metrics`` (the any-modality ones included) and its declared ``baselines``."""
    return {"metrics": metrics(modality), "baselines": get_modality(modality).baselines}


def mask_strategies() -> list[MaskStrategySpec]:
    return host().mask_strategies()



use_registry("sampler", get_sampler)
use_registry("mask_strategy", get_mask_strategy)

__all__ = [
    "BUILTIN_NAME",
    "GROUP",
    "KINDS",
    "KINDS_BY_HOOK",
    "BackboneSpec",
    "BaselineSpec",
    "ClassifierInfo",
    "DatasetSpec",
    "DuplicateNameError",
    "MaskStrategySpec",
    "MetricSpec",
    "ModalitySpec",
    "NotApplicable",
    "PluginHost",
    "PluginInfo",
    "Registry",
    "SamplerSpec",
    "ScheduleSpec",
    "SpecPlugin",
    "UnavailablePluginError",
    "UnknownNameError",
    "backbones",
    "datasets",
    "get_backbone",
    "get_dataset",
    "get_mask_strategy",
    "get_metric",
    "get_modality",
    "get_sampler",
    "get_schedule",
    "hookimpl",
    "host",
    "load_plugin_modules",
    "mask_strategies",
    "metrics",
    "modalities",
    "plugins",
    "register",
    "reset",
    "samplers",
    "schedules",
    "scoring",
    "signature_options",
    "unregister",
]
