"""A plugin cannot take the host down (issue 17 item 7, issue 21 item 3), with REAL plugins: packages
written into tmp_path with a *.dist-info (a real entry point), or modules loaded by name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from polydiff import plugins
from polydiff.app.config import ConfigError
from polydiff.diffusion import samplers
from polydiff.plugins import PluginHost, UnavailablePluginError, UnknownNameError

HEADER = """
from polydiff.plugins.hookspecs import hookimpl
from polydiff.plugins.specs import ModalitySpec, SamplerSpec

def step(denoiser, x, sigmas, *, noise=None, callback=None):
    return x

def samplers(*names, desc="from {}"):
    return [SamplerSpec(name=n, fn=step, description=desc.format(__name__)) for n in names]
"""


def hooks(samplers_body: str = "return []", *, at_import: str = "", extra: str = "") -> str:
    return HEADER + at_import + extra + f"\n@hookimpl\ndef polydiff_register_samplers():\n    {samplers_body}\n"


def make_dist(site: Path, ep_name: str, source: str | None, *, extra: bool = False) -> str:
    """A distribution ``pdr-<ep_name>`` whose entry point ``ep_name`` names module ``pdr_<ep_name>``
    (not written when ``source`` is None)."""
    module = f"pdr_{ep_name}"
    if source is not None:
        (site / module).mkdir()
        (site / module / "__init__.py").write_text(textwrap.dedent(source))
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    meta = f"Metadata-Version: 2.1\nName: pdr-{ep_name}\nVersion: 1.0\n"
    (info / "METADATA").write_text(meta + (f"Provides-Extra: {ep_name}\n" if extra else ""))
    (info / "entry_points.txt").write_text(f"[polydiff]\n{ep_name} = {module}\n")
    return module


@pytest.fixture
def site(plugin_site):
    return plugin_site


def status(host: PluginHost, name: str) -> str:
    return {i.name: i.status for i in host.plugins()}[name]


def sampler_names(host: PluginHost) -> set[str]:
    return {s.name for s in host.samplers()}


BUILTIN_SAMPLERS = {"ddim", "ddpm", "deis", "dpmpp_2m", "euler", "euler_maruyama", "heun"}


# -- 1. SystemExit and KeyboardInterrupt ----------------------------------------------------------
def test_system_exit_and_keyboard_interrupt_at_import_make_the_plugin_unavailable(site):
    before = signal.getsignal(signal.SIGINT)
    make_dist(site, "exits", "import sys\nsys.exit(3)\n")
    make_dist(site, "quits", "raise SystemExit\n")
    make_dist(site, "kbd", "raise KeyboardInterrupt\n")
    make_dist(site, "fine", hooks("return samplers('fine_step')"))
    host = PluginHost()
    assert status(host, "exits") == "unavailable: SystemExit: 3"
    assert status(host, "quits") == "unavailable: SystemExit"
    assert status(host, "kbd") == "unavailable: KeyboardInterrupt: raised by the plugin's own code, not by a Ctrl-C"
    assert sampler_names(host) >= BUILTIN_SAMPLERS | {"fine_step"}
    assert signal.getsignal(signal.SIGINT) is before  # the host's handler is gone again


def test_system_exit_and_keyboard_interrupt_in_a_hook_make_the_plugin_broken(site):
    make_dist(site, "hookexit", hooks("raise SystemExit('bye')", extra=MODALITY.format(name="hookexit")))
    make_dist(site, "hookkbd", hooks("raise KeyboardInterrupt"))
    host = PluginHost()
    assert status(host, "hookexit") == "broken: hook polydiff_register_samplers raised SystemExit: bye"
    assert status(host, "hookkbd") == ("broken: hook polydiff_register_samplers raised KeyboardInterrupt: "
                                       "raised by the plugin's own code, not by a Ctrl-C")
    assert sampler_names(host) >= BUILTIN_SAMPLERS
    with pytest.raises(UnavailablePluginError, match="modality 'hookexit' is provided by plugin 'hookexit', which "
                                                     "is broken: hook polydiff_register_samplers raised SystemExit"):
        host.get_modality("hookexit")


CTRL_C = "import signal, time; signal.raise_signal(signal.SIGINT); time.sleep(0.5)"  # what a Ctrl-C does


def test_a_real_ctrl_c_while_plugin_code_runs_still_stops_the_program(site, monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    make_dist(site, "slowimport", CTRL_C + "\n")
    make_dist(site, "slowhook", hooks(CTRL_C + "; return samplers('slow_step')"))
    make_dist(site, "zafter", hooks("return samplers('after_step')"))
    monkeypatch.setenv("POLYDIFF_PLUGINS", "slowimport,zafter")
    host = PluginHost()
    with pytest.raises(KeyboardInterrupt):
        host.samplers()
    assert signal.getsignal(signal.SIGINT) is before
    monkeypatch.setenv("POLYDIFF_PLUGINS", "zafter")  # the user tries again: loading resumes where it stopped
    assert "after_step" in sampler_names(host) and status(host, "slowimport") == "disabled"
    assert [i.name for i in host.plugins() if "(" in i.name] == []  # nothing loaded twice
    monkeypatch.setenv("POLYDIFF_PLUGINS", "slowhook")
    host = PluginHost()
    with pytest.raises(KeyboardInterrupt):
        host.samplers()
    assert signal.getsignal(signal.SIGINT) is before


def test_interrupt_main_counts_as_the_user_and_an_ignored_sigint_as_the_plugin(site, monkeypatch):
    make_dist(site, "intmain", hooks("import _thread, time; _thread.interrupt_main(); time.sleep(0.5)"))
    make_dist(site, "selfkbd", hooks("raise KeyboardInterrupt('mine')"))
    monkeypatch.setenv("POLYDIFF_PLUGINS", "intmain")
    with pytest.raises(KeyboardInterrupt):
        PluginHost().samplers()
    monkeypatch.setenv("POLYDIFF_PLUGINS", "selfkbd")
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # SIGINT ignored: a Ctrl-C never raises, so a KeyboardInterrupt must be the plugin's own
        assert status(PluginHost(), "selfkbd") == ("broken: hook polydiff_register_samplers raised "
                                                   "KeyboardInterrupt: mine")
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_keyboard_interrupt_in_another_thread_is_the_plugins(site):
    make_dist(site, "threadkbd", hooks("raise KeyboardInterrupt"))
    host, seen = PluginHost(), []
    worker = threading.Thread(target=lambda: seen.append(status(host, "threadkbd")))
    worker.start()
    worker.join()
    assert seen == ["broken: hook polydiff_register_samplers raised KeyboardInterrupt: raised by the plugin's own "
                    "code, not by a Ctrl-C"]


# -- 2. duplicate names -------------------------------------------------------------------------
def test_a_duplicate_name_disables_only_the_later_entry(site, capsys):
    make_dist(site, "alpha", hooks("return samplers('twin', 'alpha_only')"))
    make_dist(site, "beta", hooks("return samplers('twin', 'beta_only', 'heun')"))
    make_dist(site, "gamma", hooks("return samplers('gamma_only', 'gamma_only')"))
    host = PluginHost()
    assert host.get_sampler("twin").description == "from pdr_alpha"  # entry points rank by name
    assert host.get_sampler("heun").fn is samplers.heun  # built-ins always win
    assert sampler_names(host) >= BUILTIN_SAMPLERS | {"alpha_only", "beta_only", "gamma_only"}
    assert status(host, "alpha") == "ok"
    assert status(host, "beta") == ("conflict: disabled sampler 'twin' (plugin 'alpha' has it), sampler 'heun' "
                                    "(plugin 'polydiff' has it); rename them")
    assert status(host, "gamma") == "conflict: disabled sampler 'gamma_only' (this plugin registers it twice); " \
                                    "rename them"
    info = {i.name: i for i in host.plugins()}["beta"]
    assert info.provides == {"samplers": ["beta_only"]} and not info.ok
    err = capsys.readouterr().err
    assert err.count("polydiff: plugin 'beta': disabled its sampler 'twin' (plugin 'alpha' has it)") == 1
    host.samplers()
    assert "disabled" not in capsys.readouterr().err  # reported once, not at every rebuild


def test_who_wins_does_not_depend_on_when_a_plugin_was_registered(site):
    make_dist(site, "alpha", hooks("return samplers('twin')"))
    script = site / "pdr_script.py"
    script.write_text(hooks("return samplers('twin', 'script_only')"))
    import pdr_script

    early, late = PluginHost(), PluginHost()
    early.register(pdr_script)  # before entry points load (they load lazily)
    late.samplers()
    late.register(pdr_script)
    for host in (early, late):
        assert host.get_sampler("twin").description == "from pdr_alpha"
        assert host.get_sampler("script_only").description == "from pdr_script"
        assert status(host, "pdr_script").startswith("conflict: disabled sampler 'twin' (plugin 'alpha' has it)")


# -- 3. specs validated when registered ---------------------------------------------------------
INVALID = {
    "zero_steps": "SamplerSpec(name='z', fn=step, description='-', evals_per_step=0)",
    "not_callable": "SamplerSpec(name='z', fn='euler', description='-')",
    "bad_name": "SamplerSpec(name='My Sampler', fn=step, description='-')",
    "list_options": "SamplerSpec(name='z', fn=step, description='-', options=[('eta', 0.0)])",
    "option_key": "SamplerSpec(name='z', fn=step, description='-', options={'not valid': 1})",
    "flag": "SamplerSpec(name='z', fn=step, description='-', stochastic='yes')",
}
EXPECTED = {
    "zero_steps": "SamplerSpec 'z': evals_per_step must be a positive int, got 0",
    "not_callable": "SamplerSpec 'z': fn must be callable, got 'euler'",
    "bad_name": "SamplerSpec 'My Sampler': name must be a name of lower-case letters, digits, '_' or '-', "
                "got 'My Sampler'",
    "list_options": "SamplerSpec 'z': options must be a mapping of option name to default, got list",
    "option_key": "SamplerSpec 'z': option names must be Python identifiers, got ['not valid']",
    "flag": "SamplerSpec 'z': stochastic must be True or False, got 'yes'",
}
MODALITY = """
@hookimpl
def polydiff_register_modalities():
    return [ModalitySpec(name="{name}", description="-", default_dataset="ring", default_backbone="mlp")]
"""


@pytest.mark.parametrize("case", sorted(INVALID))
def test_an_invalid_spec_makes_its_plugin_broken_and_the_host_keeps_working(site, case):
    name = f"pdr_invalid_{case}"
    (site / f"{name}.py").write_text(hooks(f"return samplers('valid_one') + [{INVALID[case]}]",
                                           extra=MODALITY.format(name=case.replace("_", "-"))))
    host = PluginHost(entry_points=False)
    builtin = sampler_names(host)
    host.register(__import__(name))
    assert status(host, name) == f"broken: hook polydiff_register_samplers returned invalid specs: {EXPECTED[case]}"
    assert sampler_names(host) == builtin  # neither 'valid_one' nor the invalid one
    with pytest.raises(UnknownNameError):  # the plugin's other hooks are dropped too: all or nothing
        host.get_modality(case.replace("_", "-"))
    assert host.get_sampler("heun").fn is samplers.heun


def test_every_other_spec_field_is_checked():
    from polydiff.diffusion.schedules import EDM
    from polydiff.plugins.specs import DatasetSpec, MetricSpec, ModalitySpec, ScheduleSpec, spec_problems

    assert spec_problems(ModalitySpec(name="m", description="d", default_dataset="Ring!", default_backbone="mlp",
                                      plot_samples="no")) == [
        "default_dataset must be a name of lower-case letters, digits, '_' or '-', got 'Ring!'",
        "plot_samples must be callable, got 'no'"]
    assert spec_problems(DatasetSpec(name="d", modality="m", description=3, build=None)) == [
        "description must be a string, got int", "build must be callable, got None"]
    assert spec_problems(MetricSpec(name="x", modality=None, description="-", fn=len, direction="up")) == [
        "direction must be one of 'lower', 'higher', got 'up'"]
    assert spec_problems(ScheduleSpec(name="s", build=int, description="-")) == [
        "build must be a subclass of polydiff.diffusion.schedules.Schedule, got <class 'int'>"]
    assert spec_problems(ScheduleSpec(name="edm", build=EDM, description="-")) == []


def test_every_installed_spec_is_valid(site):
    host = PluginHost()
    assert [i.status for i in host.plugins() if i.status.startswith(("broken", "conflict"))] == []


# -- 4. the install hint only for a missing module ----------------------------------------------
def test_install_hint_only_when_a_dependency_is_missing(site):
    make_dist(site, "needsdep", "import pdr_dependency_that_is_missing\n", extra=True)
    make_dist(site, "ownbug", "import pdr_ownbug.nothere\n", extra=True)
    make_dist(site, "badname", "from os import no_such_name\n", extra=True)
    make_dist(site, "gone", None, extra=True)
    host = PluginHost()
    assert status(host, "needsdep") == ("unavailable: ModuleNotFoundError: No module named "
                                        "'pdr_dependency_that_is_missing'. Install it with: pip install "
                                        "'pdr-needsdep[needsdep]'")
    assert status(host, "ownbug") == "unavailable: ModuleNotFoundError: No module named 'pdr_ownbug.nothere'"
    assert status(host, "badname").startswith("unavailable: ImportError: cannot import name 'no_such_name' from 'os'")
    assert status(host, "gone") == ("unavailable: ModuleNotFoundError: No module named 'pdr_gone' (the entry point "
                                    "names a module that is not installed: reinstall pdr-gone 1.0)")
    assert all("Install it with" not in status(host, n) for n in ("ownbug", "badname", "gone"))


# -- 5. plugin modules by name (-p MODULE, POLYDIFF_PLUGIN_MODULES) ------------------------------
@pytest.fixture
def project(site, monkeypatch):
    """A working directory holding plugin modules, not on sys.path."""
    cwd = site / "project"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".", str(cwd))])
    (cwd / "pdr_mine.py").write_text(hooks("return samplers('mine_step')") + "__version__ = '0.3'\n")
    (cwd / "pdr_fails.py").write_text("import pdr_missing_lib\n")
    (cwd / "pdr_exits.py").write_text("raise SystemExit(4)\n")
    (cwd / "pdr_nohooks.py").write_text("X = 1\n")
    (cwd / "pdr_badhook.py").write_text(hooks("return ['euler']"))
    return cwd


def test_load_plugin_modules_imports_from_the_working_directory(project):
    plugins.load_plugin_modules(["pdr_mine"])
    assert plugins.get_sampler("mine_step").description == "from pdr_mine"
    info = {i.name: i for i in plugins.plugins()}["pdr_mine"]
    assert (info.source, info.version, info.status) == ("module", "0.3", "ok")
    plugins.load_plugin_modules(["pdr_mine"])  # again (e.g. -p and the environment): nothing changes
    assert [i.name for i in plugins.plugins()].count("pdr_mine") == 1


@pytest.mark.parametrize("name,message", [
    ("pdr_fails", "plugin modules: plugin module 'pdr_fails' failed to import: ModuleNotFoundError: No module named "
                  "'pdr_missing_lib'"),
    ("pdr_exits", "plugin module 'pdr_exits' failed to import: SystemExit: 4"),
    ("pdr_absent", "plugin module 'pdr_absent' failed to import: ModuleNotFoundError: No module named 'pdr_absent'"),
    ("pdr_mine.py", "'pdr_mine.py' is a file name; give the module name (e.g. 'pdr_mine')"),
    ("pdr-mine", "'pdr-mine' is not a module name"),
    ("pdr_nohooks", "plugin module 'pdr_nohooks' is broken: it declares no polydiff_plugin"),
    ("pdr_badhook", "plugin module 'pdr_badhook' is broken: hook polydiff_register_samplers must return a list of "
                    "SamplerSpec, got ['euler']"),
], ids=lambda v: v if v.startswith("pdr") and " " not in v else "")
def test_load_plugin_modules_fails_loudly_naming_the_module(project, name, message):
    with pytest.raises(ConfigError) as e:
        plugins.load_plugin_modules([name])
    assert message in str(e.value)
    assert name not in {i.name for i in plugins.plugins()} and plugins.get_sampler("heun")


def test_plugin_modules_from_the_environment_load_with_entry_points(project, monkeypatch):
    make_dist(project.parent, "alpha", hooks("return samplers('mine_step')"))
    monkeypatch.setenv("POLYDIFF_PLUGIN_MODULES", "pdr_mine")
    host = PluginHost()
    assert host.get_sampler("mine_step").description == "from pdr_alpha"  # entry points outrank modules
    assert status(host, "pdr_mine").startswith("conflict: disabled sampler 'mine_step' (plugin 'alpha' has it)")
    monkeypatch.setenv("POLYDIFF_PLUGIN_MODULES", "pdr_mine, pdr_fails")
    host = PluginHost()
    for _ in range(2):  # it stays an error: the user asked for the module
        with pytest.raises(ConfigError, match="POLYDIFF_PLUGIN_MODULES: plugin module 'pdr_fails' failed to import"):
            host.samplers()


# -- 6. names of an unusable plugin -------------------------------------------------------------
def test_a_name_of_an_unusable_plugin_says_why_and_how_to_fix_it(site, monkeypatch):
    make_dist(site, "wav", "import pdr_soundlib_missing\n", extra=True)
    monkeypatch.setenv("POLYDIFF_DISABLE_PLUGINS", "video")
    host = PluginHost()
    with pytest.raises(UnavailablePluginError) as e:
        host.get_modality("wav")
    assert str(e.value) == ("modality 'wav' is provided by plugin 'wav', which is unavailable: ModuleNotFoundError: "
                            "No module named 'pdr_soundlib_missing'; install it with: pip install 'pdr-wav[wav]'")
    assert isinstance(e.value, UnknownNameError) and e.value.plugin.name == "wav"
    with pytest.raises(UnavailablePluginError, match="^dataset 'tones' of modality 'wav': modality 'wav' is provided"):
        host.get_dataset("wav", "tones")
    with pytest.raises(UnavailablePluginError, match="^modality 'video' is provided by plugin 'video', which is "
                                                     "disabled: POLYDIFF_DISABLE_PLUGINS lists it$"):
        host.get_modality("video")
    with pytest.raises(UnknownNameError, match="unknown backbone 'wavenet'; valid: .*; not loaded, and may provide "
                                               "it: plugin 'video' \\(disabled\\); plugin 'wav' \\(unavailable: "
                                               "ModuleNotFoundError"):
        host.get_backbone("wavenet")
    with pytest.raises(UnknownNameError) as typo:
        host.get_sampler("eulr")
    assert str(typo.value).endswith("did you mean 'euler'?")  # a typo is not blamed on a plugin


def test_cli_names_the_plugin_and_lists_conflicts(site, tmp_path):
    make_dist(site, "wav", "import pdr_soundlib_missing\n", extra=True)
    make_dist(site, "alpha", hooks("return samplers('twin')"))
    (site / "pdr_local.py").write_text(hooks("return samplers('twin', 'local_step')"))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
           "POLYDIFF_PLUGIN_MODULES": "pdr_local", "POLYDIFF_DISABLE_PLUGINS": "image,video,audio,molecule,timeseries"}
    cmd = [sys.executable, "-m", "polydiff.app.cli"]
    out = subprocess.run([*cmd, "train", "wav", "--out", str(tmp_path / "run")], capture_output=True, text=True,
                         env=env, cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert ("modality 'wav' is provided by plugin 'wav', which is unavailable: ModuleNotFoundError: No module named "
            "'pdr_soundlib_missing'; install it with: pip install 'pdr-wav[wav]'") in out.stderr
    assert not (tmp_path / "run").exists()
    out = subprocess.run([*cmd, "plugins"], capture_output=True, text=True, env=env, cwd=tmp_path, check=True)
    row = next(line for line in out.stdout.splitlines() if line.startswith("pdr_local"))
    assert "module" in row and "conflict" in row
    out = subprocess.run([*cmd, "plugins", "--json"], capture_output=True, text=True, env=env, cwd=tmp_path)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["pdr_local"]["status"] == "conflict: disabled sampler 'twin' (plugin 'alpha' has it); rename them"
    assert rows["pdr_local"]["provides"] == {"samplers": ["local_step"]}
