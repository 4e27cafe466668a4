"""A plugin stated as data: :class:`SpecPlugin` says what a plugin provides, and implements the hooks.

A plugin module assigns one to ``polydiff_plugin``; the host registers it in the module's place (same
name, version and source), so a plugin's ``__init__.py`` needs no hook functions::

    polydiff_plugin = SpecPlugin(registry="polydiff_image.registry")

reads, on first use, the registry module's ``MODALITIES``, ``DATASETS``, ``BACKBONES``, ``SCHEDULES``,
``SAMPLERS``, ``METRICS`` and ``MASK_STRATEGIES`` (each optional). A kind may also be given on its own,
as a sequence of specs, a zero-argument function returning them, or a ``"module:ATTR"`` reference.
Everything is imported late, so a registry that fails to import shows up as the plugin's ``broken: ...``
status instead of failing ``import polydiff_image``. Raw pluggy hooks
(:data:`~polydiff.plugins.hookspecs.hookimpl` functions) stay available for anything dynamic.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from .hookspecs import hookimpl
from .specs import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec, SamplerSpec, ScheduleSpec

Provided = str | Sequence[Any] | Callable[[], Sequence[Any]]
"""What a kind may be given as: specs, a function returning them, or ``"module:ATTR"``."""

ATTRIBUTE = "polydiff_plugin"
"""The module attribute the host reads."""


class SpecPlugin:
    """What a plugin provides, per kind (see the module docstring for the forms each may take)."""

    def __init__(self, *, registry: str | None = None, modalities: Provided | None = None,
                 datasets: Provided | None = None, backbones: Provided | None = None,
                 schedules: Provided | None = None, samplers: Provided | None = None, metrics: Provided | None = None,
                 mask_strategies: Provided | None = None) -> None:
        given = {"modalities": modalities, "datasets": datasets, "backbones": backbones, "schedules": schedules,
                 "samplers": samplers, "metrics": metrics, "mask_strategies": mask_strategies}
        self.registry = registry
        self.provided: dict[str, Provided] = {k: v for k, v in given.items() if v is not None}
        for kind, value in self.provided.items():
            if isinstance(value, str) and value.count(":") != 1:
                raise ValueError(f"SpecPlugin({kind}={value!r}): a reference is 'module:ATTR', e.g. "
                                 f"'my_plugin.registry:{kind.upper()}'")

    def specs(self, kind: str) -> list[Any]:
        """The specs of ``kind``, importing a reference or calling a function now."""
        value: Any = self.provided.get(kind)
        if value is None:
            if self.registry is None:
                return []
            value = getattr(importlib.import_module(self.registry), kind.upper(), ())
        elif isinstance(value, str):
            module, attr = value.split(":")
            value = getattr(importlib.import_module(module), attr)
        if callable(value):
            value = value()
        return list(value)

    def __repr__(self) -> str:
        given = [f"registry={self.registry!r}"] if self.registry else []
        return f"SpecPlugin({', '.join(given + [f'{k}={v!r}' for k, v in self.provided.items()])})"

    @hookimpl
    def polydiff_register_modalities(self) -> list[ModalitySpec]:
        return self.specs("modalities")

    @hookimpl
    def polydiff_register_datasets(self) -> list[DatasetSpec]:
        return self.specs("datasets")

    @hookimpl
    def polydiff_register_backbones(self) -> list[BackboneSpec]:
        return self.specs("backbones")

    @hookimpl
    def polydiff_register_schedules(self) -> list[ScheduleSpec]:
        return self.specs("schedules")

    @hookimpl
    def polydiff_register_samplers(self) -> list[SamplerSpec]:
        return self.specs("samplers")

    @hookimpl
    def polydiff_register_metrics(self) -> list[MetricSpec]:
        return self.specs("metrics")

    @hookimpl
    def polydiff_register_mask_strategies(self) -> list[MaskStrategySpec]:
        return self.specs("mask_strategies")


def declared(plugin: object) -> object:
    """What the host registers for ``plugin``: its ``polydiff_plugin`` :class:`SpecPlugin` when it has
    one, else the plugin itself (a module or object with hook functions)."""
    found = getattr(plugin, ATTRIBUTE, None)
    if found is None or isinstance(plugin, SpecPlugin):
        return plugin
    if not isinstance(found, SpecPlugin):
        raise TypeError(f"{ATTRIBUTE} must be a polydiff.plugins.SpecPlugin, got {type(found).__name__}")
    return found


__all__ = ["ATTRIBUTE", "Provided", "SpecPlugin", "declared"]
