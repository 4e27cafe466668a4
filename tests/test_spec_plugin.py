"""A plugin stated as data (``polydiff_plugin = SpecPlugin(...)``), loaded through a real entry point."""

from __future__ import annotations

import sys
import types

import pytest

from polydiff import plugins
from polydiff.plugins import PluginHost, SamplerSpec, SpecPlugin
from polydiff.plugins.declare import declared
from test_plugins_robust import make_dist

REGISTRY = """
from polydiff.diffusion.samplers import euler
from polydiff.plugins import SamplerSpec
SAMPLERS = [SamplerSpec(name="{name}", fn=euler, description="euler under another name")]
"""


def test_an_entry_point_module_declares_its_specs_and_its_registry_loads_late(plugin_site):
    make_dist(plugin_site, "declared", "from polydiff.plugins import SpecPlugin\n"
                                "polydiff_plugin = SpecPlugin(registry='pdr_declared.registry')\n")
    (plugin_site / "pdr_declared" / "registry.py").write_text(REGISTRY.format(name="declared_step"))
    import pdr_declared  # noqa: F401  (importing the plugin does not import its registry)

    assert "pdr_declared.registry" not in sys.modules
    host = PluginHost()
    assert host.get_sampler("declared_step").fn.__name__ == "euler"
    info = {i.name: i for i in host.plugins()}["declared"]
    assert (info.source, info.version, info.status, info.provides["samplers"]) == (
        "entry point", "1.0", "ok", ["declared_step"])


def test_a_registry_that_fails_to_import_makes_the_plugin_broken_not_the_host(plugin_site):
    make_dist(plugin_site, "badreg", "from polydiff.plugins import SpecPlugin\n"
                              "polydiff_plugin = SpecPlugin(registry='pdr_badreg.registry')\n")
    (plugin_site / "pdr_badreg" / "registry.py").write_text("import pdr_not_installed\n")
    host = PluginHost()
    assert host.get_sampler("heun")  # the rest works
    status = {i.name: i.status for i in host.plugins()}["badreg"]
    assert status.startswith("broken") and "pdr_not_installed" in status


def test_kinds_given_directly_as_specs_functions_or_references(plugin_site):
    spec = SamplerSpec(name="direct_step", fn=lambda d, x, s, **k: x, description="-")
    (plugin_site / "pdr_ref.py").write_text(REGISTRY.format(name="ref_step"))
    calls = []

    def lazy() -> list[SamplerSpec]:
        calls.append(1)
        return [spec]

    host = PluginHost(entry_points=False)
    host.register(SpecPlugin(samplers=lazy), name="lazy")
    host.register(SpecPlugin(samplers="pdr_ref:SAMPLERS"), name="ref")
    assert not calls
    assert host.get_sampler("direct_step") is spec and calls == [1]
    assert host.get_sampler("ref_step").name == "ref_step"
    host.unregister("lazy")
    with pytest.raises(plugins.UnknownNameError):
        host.get_sampler("direct_step")


def test_a_module_with_polydiff_plugin_registers_it_and_can_be_unregistered_by_object(plugin_site):
    module = types.ModuleType("pdr_objmod")
    module.polydiff_plugin = SpecPlugin(samplers=[SamplerSpec(name="obj_step", fn=lambda *a, **k: a[1],
                                                              description="-")])  # type: ignore[attr-defined]
    host = PluginHost(entry_points=False)
    host.register(module)
    assert host.pm.get_plugin("pdr_objmod") is module.polydiff_plugin and host.get_sampler("obj_step")
    host.unregister(module)
    assert "pdr_objmod" not in {i.name for i in host.plugins()}


def test_bad_declarations_are_named():
    with pytest.raises(ValueError, match="'module:ATTR'"):
        SpecPlugin(datasets="my_plugin.registry")
    with pytest.raises(TypeError, match="polydiff_plugin must be a polydiff.plugins.SpecPlugin, got dict"):
        declared(types.SimpleNamespace(polydiff_plugin={"samplers": []}))
    assert "registry='x.y'" in repr(SpecPlugin(registry="x.y"))
