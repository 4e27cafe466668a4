"""The plugin host, through REAL entry points: *.dist-info directories on sys.path."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pluggy
import pytest

from polydiff import plugins
from polydiff.plugins import DuplicateNameError, PluginHost, Registry, UnknownNameError
from polydiff.plugins.hookspecs import hookimpl
from polydiff.plugins.specs import DatasetSpec, SamplerSpec
from polydiff.testing._modality import check_modality

GOOD = '''
import torch
from polydiff.diffusion.data import ArrayDataset
from polydiff.plugins.hookspecs import hookimpl
from polydiff.evaluation.metrics import sliced_w2
from polydiff.nn.layers import build_mlp
from polydiff.plugins.specs import BackboneSpec, DatasetSpec, MetricSpec, ModalitySpec, SamplerSpec
from polydiff.diffusion.state import Field, StateSpec

def load_tiny(*, n=16, seed=0):
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    return ArrayDataset(StateSpec((Field("x", (3,)),)), x)

def jitter(denoiser, x, sigmas, *, noise=None, callback=None):
    return denoiser(x, sigmas[0].expand(len(x)))

@hookimpl
def polydiff_register_modalities():
    return [ModalitySpec(name="blobs", description="3-D blobs", default_dataset="tiny",
                         default_backbone="blob_mlp", primary_metric="sliced_w2")]

@hookimpl
def polydiff_register_datasets():
    return [DatasetSpec(name="tiny", modality="blobs", description="16 points", build=load_tiny,
                        options={"n": 16, "seed": 0}),
            DatasetSpec(name="ring", modality="blobs", description="same name as points/ring", build=load_tiny)]

@hookimpl
def polydiff_register_backbones():
    return [BackboneSpec(name="blob_mlp", modality="blobs", description="small mlp", build=build_mlp,
                         options={"width": 16})]

@hookimpl
def polydiff_register_samplers():
    return [SamplerSpec(name="jitter", fn=jitter, description="one denoiser call")]

@hookimpl
def polydiff_register_metrics():
    return [MetricSpec(name="ghost_metric", modality="ghost", fn=sliced_w2, description="unregistered modality")]
'''
HOOKFAIL = '''
from polydiff.plugins.hookspecs import hookimpl
from polydiff.plugins.specs import ModalitySpec

@hookimpl
def polydiff_register_modalities():
    return [ModalitySpec(name="hookfail_mod", description="-", default_dataset="-", default_backbone="-")]

@hookimpl
def polydiff_register_datasets():
    raise RuntimeError("boom in a hook")
'''
# name -> (module source, declares an extra named like its entry point)
DISTS = {
    "good": (GOOD, False),
    "broken": ("import pdtest_heavy_dependency_that_is_missing\n", True),
    "crash": ("raise RuntimeError('bug at import time')\n", False),
    "hookfail": (HOOKFAIL, False),
}


def make_dist(site: Path, ep_name: str, source: str, *, extra: bool, version: str = "1.2.3") -> None:
    module = f"pdtest_{ep_name}"
    (site / module).mkdir()
    (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-{version}.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: pdtest-{ep_name}\nVersion: {version}\n"
    (info / "METADATA").write_text(meta + (f"Provides-Extra: {ep_name}\n" if extra else ""))
    (info / "entry_points.txt").write_text(f"[polydiff]\n{ep_name} = {module}\n")


@pytest.fixture
def site(tmp_path, monkeypatch):
    for name, (source, extra) in DISTS.items():
        make_dist(tmp_path, name, source, extra=extra)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("POLYDIFF_PLUGINS", raising=False)
    monkeypatch.delenv("POLYDIFF_DISABLE_PLUGINS", raising=False)
    plugins.reset()
    yield tmp_path
    plugins.reset()
    for m in [m for m in sys.modules if m.startswith("pdtest_")]:
        del sys.modules[m]


def status(host: PluginHost, name: str) -> str:
    return {i.name: i.status for i in host.plugins()}[name]


def test_importlib_metadata_discovers_the_test_dists(site):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group="polydiff")}
    assert {"good", "broken", "crash", "hookfail"} <= set(eps)
    assert eps["good"].dist is not None and eps["good"].dist.version == "1.2.3"


def test_good_third_party_plugin_provides_everything(site):
    host = PluginHost()
    assert host.get_modality("blobs").default_backbone == "blob_mlp"
    assert host.get_dataset("blobs", "tiny").modality == "blobs"
    assert host.get_dataset("blobs", "ring") is not host.get_dataset("points", "ring")  # namespaced per modality
    assert host.get_backbone("blob_mlp").options == {"width": 16}
    assert "jitter" in [s.name for s in host.samplers()]
    generate = [m.name for m in host.metrics("ghost") if m.task == "generate"]
    assert generate == ["ghost_metric", "sliced_w2"]  # no over-validation
    assert "ghost_metric" not in [m.name for m in host.metrics("points")]
    info = {i.name: i for i in host.plugins()}["good"]
    assert (info.version, info.source, info.status) == ("1.2.3", "entry point", "ok")
    assert info.provides["datasets"] == ["blobs/ring", "blobs/tiny"] and info.provides["samplers"] == ["jitter"]
    report = check_modality("blobs", plugin_host=host, dataset_options={"n": 16})
    assert report["batch_shape"] == [4, 3]


def test_failing_plugins_are_unavailable_and_never_crash(site):
    host = PluginHost()
    assert status(host, "broken") == ("unavailable: ModuleNotFoundError: No module named "
                                      "'pdtest_heavy_dependency_that_is_missing'. "
                                      "Install it with: pip install 'pdtest-broken[broken]'")
    assert status(host, "crash") == "unavailable: RuntimeError: bug at import time"  # a bug: no install hint
    assert status(host, "hookfail").startswith("broken: hook polydiff_register_datasets raised RuntimeError")
    # the failing plugin's other contributions are dropped; everything else works
    with pytest.raises(UnknownNameError):
        host.get_modality("hookfail_mod")
    assert {m.name for m in host.modalities()} >= {"points", "blobs"}
    assert all(len(host.registry(k)) for k in ("samplers", "schedules", "datasets"))
    assert "pdtest_broken" not in sys.modules


def test_allow_list_loads_only_named_entry_points(site, monkeypatch):
    monkeypatch.setenv("POLYDIFF_PLUGINS", "good, hookfail")
    host = PluginHost()
    assert status(host, "good") == "ok" and status(host, "broken") == "disabled" and status(host, "image") == "disabled"
    assert status(host, "hookfail").startswith("broken")
    assert "pdtest_crash" not in sys.modules and "pdtest_good" in sys.modules
    assert host.get_modality("points")  # built-ins are not entry points: never filtered


def test_deny_list_disables_entry_points(site, monkeypatch):
    monkeypatch.setenv("POLYDIFF_DISABLE_PLUGINS", "good,broken")
    host = PluginHost()
    assert status(host, "good") == "disabled" and status(host, "broken") == "disabled"
    assert status(host, "crash").startswith("unavailable")
    assert "pdtest_good" not in sys.modules
    with pytest.raises(UnknownNameError, match=r"unknown modality 'blobs'; valid: .*points"):
        host.get_modality("blobs")
    monkeypatch.setenv("POLYDIFF_DISABLE_PLUGINS", "*")
    assert {i.status for i in PluginHost().plugins() if i.source == "entry point"} == {"disabled"}


def test_entry_point_named_like_a_registered_plugin_is_reported_not_swapped(site):
    make_dist(site, "polydiff", GOOD.replace('"blobs"', '"other"'), extra=False)
    host = PluginHost()
    assert status(host, "polydiff (pdtest-polydiff)").startswith("unavailable: another plugin named 'polydiff'")
    assert status(host, "polydiff") == "ok" and host.get_modality("points")
    assert "pdtest_polydiff" not in sys.modules


def test_loading_is_lazy(site):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    code = ("import sys, polydiff.plugins as p; p.host(); "
            "print(sorted(m for m in sys.modules if m.startswith(('pdtest_', 'polydiff_'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "[]"
    host = PluginHost()
    assert "pdtest_good" not in sys.modules
    host.samplers()  # first registry access loads entry points
    assert "pdtest_good" in sys.modules and "pdtest_broken" not in sys.modules  # its import failed


def test_duplicates_disable_the_later_entry_naming_both_plugins(site, capsys):
    host = PluginHost()

    class Clash:
        @hookimpl
        def polydiff_register_samplers(self):
            return [SamplerSpec(name="euler", fn=lambda *a, **k: a[1], description="again")]

        @hookimpl
        def polydiff_register_datasets(self):
            return [DatasetSpec(name="ring", modality="points", description="again", build=dict)]

    host.register(Clash(), name="clash")
    assert host.get_sampler("euler").description != "again"  # the built-in wins
    assert host.get_dataset("points", "ring").build is not dict
    assert status(host, "clash") == ("conflict: disabled dataset 'points/ring' (plugin 'polydiff' has it), "
                                     "sampler 'euler' (plugin 'polydiff' has it); rename them")
    assert "plugin 'clash': disabled its sampler 'euler'" in capsys.readouterr().err
    host.unregister("clash")
    assert len(host.samplers()) >= 7


def test_unknown_names_list_valid_names(site):
    host = PluginHost()
    with pytest.raises(UnknownNameError) as e:
        host.get_sampler("eulr")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ValueError)
    assert "valid: ddim, ddpm, deis" in str(e.value) and "did you mean 'euler'?" in str(e.value)
    assert e.value.suggestion == "euler" and "jitter" in e.value.valid
    with pytest.raises(UnknownNameError, match="unknown dataset 'rnig' for modality 'points'; "
                                               "valid: file, mixture, ring; did you mean 'ring'"):
        host.get_dataset("points", "rnig")
    with pytest.raises(UnknownNameError, match="no datasets registered for modality 'nosuchmodality'"):
        host.get_dataset("nosuchmodality", "x")
    with pytest.raises(UnknownNameError, match="unknown mask strategy 'blocks'; valid: .*random_ratio"):
        host.get_mask_strategy("blocks")


def test_builtins_come_through_the_same_hooks(site):
    host = PluginHost()
    builtin = host.pm.get_plugin("polydiff")
    assert builtin is sys.modules["polydiff.plugins.builtin"].polydiff_plugin  # its declared SpecPlugin
    for hook in plugins.KINDS_BY_HOOK:
        assert builtin in [impl.plugin for impl in getattr(host.pm.hook, hook).get_hookimpls()]
    info = host.plugins()[0]
    assert (info.name, info.source, info.provides["modalities"]) == ("polydiff", "builtin", ["points"])
    assert host.get_schedule("edm").build.name == "edm" and host.get_mask_strategy("random_ratio")
    host.unregister("polydiff")
    assert host.samplers() == [s for s in host.samplers() if s.name == "jitter"]
    with pytest.raises(UnknownNameError):
        host.get_modality("points")


def test_register_module_and_object_invalidates_caches(site):
    host = PluginHost()
    assert "mine" not in [s.name for s in host.samplers()]
    mod = types.ModuleType("my_notebook_plugin")
    mod.polydiff_register_samplers = hookimpl(lambda: [SamplerSpec(name="mine", fn=print, description="m")])
    assert host.register(mod) == "my_notebook_plugin"
    assert host.get_sampler("mine").description == "m"
    info = {i.name: i for i in host.plugins()}["my_notebook_plugin"]
    assert (info.source, info.provides) == ("programmatic", {"samplers": ["mine"]})
    with pytest.raises(ValueError, match="already registered"):
        host.register(mod)
    host.unregister(mod)
    with pytest.raises(UnknownNameError, match="unknown sampler 'mine'"):
        host.get_sampler("mine")
    with pytest.raises(UnknownNameError, match="unknown plugin"):
        host.unregister("my_notebook_plugin")


def test_invalid_hook_implementations(site):
    host = PluginHost()
    typo = types.ModuleType("typo")
    typo.polydiff_register_sampler = hookimpl(lambda: [])
    with pytest.raises(pluggy.PluginValidationError, match="unknown hook"):
        host.register(typo)
    assert "typo" not in {i.name for i in host.plugins()}
    wrong = types.ModuleType("wrong")
    wrong.polydiff_register_samplers = hookimpl(lambda: ["euler"])
    host.register(wrong)
    assert status(host, "wrong").startswith("broken: hook polydiff_register_samplers must return a list of "
                                            "SamplerSpec")
    assert len(host.samplers()) >= 7


def test_results_do_not_depend_on_registration_order(site):
    def plugin(name: str) -> types.ModuleType:
        mod = types.ModuleType(name)
        mod.polydiff_register_samplers = hookimpl(lambda: [SamplerSpec(name=f"s_{name}", fn=print, description=name)])
        return mod

    hosts = [PluginHost(entry_points=False), PluginHost(entry_points=False)]
    for p in ("b", "a"):
        hosts[0].register(plugin(p))
    for p in ("a", "b"):
        hosts[1].register(plugin(p))
    names = [[s.name for s in h.samplers()] for h in hosts]
    assert names[0] == names[1] == sorted(names[0])
    assert [i.name for i in hosts[0].plugins()] == [i.name for i in hosts[1].plugins()] == ["polydiff", "a", "b"]


def test_module_level_functions_use_a_resettable_default_host(site):
    assert plugins.get_modality("blobs").name == "blobs"
    assert "mlp" in [b.name for b in plugins.backbones("blobs")]  # generic backbones are listed per modality
    assert [b.name for b in plugins.backbones("points")] == ["mlp"]
    assert [d.name for d in plugins.datasets("points")] == ["file", "mixture", "ring"]
    assert plugins.get_dataset("points", "ring").build is not None and plugins.get_metric("true_nll")
    plugins.register(types.SimpleNamespace(polydiff_register_samplers=hookimpl(
        lambda: [SamplerSpec(name="nb", fn=print, description="notebook")])), name="nb")
    assert plugins.get_sampler("nb").name == "nb"
    plugins.reset()
    assert "nb" not in [s.name for s in plugins.samplers()]
    assert {s.name for s in plugins.schedules()} >= {"edm", "ve", "vp_linear", "flow", "ddpm"}
    assert "random_ratio" in [m.name for m in plugins.mask_strategies()] and plugins.modalities()


@pytest.mark.parametrize("name,deps", [("image", ["sklearn"]), ("video", ["imageio", "sklearn"]),
                                       ("audio", ["soundfile", "soxr"]), ("molecule", ["e3nn", "rdkit"]),
                                       ("timeseries", ["pandas", "statsmodels"])])
def test_first_party_shells_report_their_extra(site, name, deps):
    st = status(PluginHost(), name)
    missing = [d for d in deps if importlib.util.find_spec(d) is None]
    if missing:
        assert st.startswith("unavailable: ") and st.endswith(f"Install it with: pip install 'polydiff[{name}]'")
        assert any(f"No module named '{m}'" in st for m in missing)
    else:
        assert st == "ok"


def test_registry_is_sorted_and_readable():
    reg: Registry[SamplerSpec] = Registry("samplers")
    for n in ("heun", "ddim", "euler"):
        reg.add(SamplerSpec(name=n, fn=print, description=n), plugin=f"p_{n}")
    assert [s.name for s in reg] == ["ddim", "euler", "heun"] and len(reg) == 3 and "heun" in reg
    assert repr(reg) == "Registry('samplers', 3 entries: ddim, euler, heun)"
    assert reg.provider("euler") == "p_euler"
    with pytest.raises(DuplicateNameError, match="sampler 'euler' is registered by both plugin 'p_euler' and "
                                                 "plugin 'other'"):
        reg.add(SamplerSpec(name="euler", fn=print, description="again"), plugin="other")
    by_mod: Registry[DatasetSpec] = Registry("datasets", by_modality=True)
    with pytest.raises(TypeError, match="per modality"):
        by_mod.get("ring")
