"""Issue 21, CLI conventions: --version, `polydiff config`, -p/--plugin and POLYDIFF_PLUGIN_MODULES, tables
that fit the terminal."""

import json

import pytest

from polydiff import plugins
from polydiff.app.cli import main

PLUGIN = '''
import polydiff
from polydiff.plugins.specs import SamplerSpec


def halfway(denoiser, x, sigmas, *, noise=None, callback=None):
    for i in range(len(sigmas) - 1):
        s, s_next = sigmas[i], sigmas[i + 1]
        x = x + (s_next - s) * (x - denoiser(x, s.expand(x.shape[0]))) / s
    return x


@polydiff.hookimpl
def polydiff_register_samplers():
    return [SamplerSpec(name="project_euler", fn=halfway, description="a sampler from the user's project")]
'''


@pytest.fixture
def project(tmp_path, monkeypatch):
    (tmp_path / "my_samplers.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    plugins.reset()
    yield tmp_path
    plugins.reset()
    import sys

    sys.modules.pop("my_samplers", None)


def test_config_prints_the_resolved_config_without_writing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "points", "train.steps=7", "schedule.name=vp_cosine"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["train"]["steps"] == 7 and cfg["schedule"]["name"] == "vp_cosine"
    assert cfg["data"]["dataset"] == "ring" and cfg["model"]["backbone"] == "mlp"  # defaults filled in
    assert list(tmp_path.iterdir()) == []
    assert main(["config", "points", "train.stepz=7"]) == 2


def test_plugin_flag_loads_a_module_of_the_project_for_any_command(project, capsys):
    assert main(["-p", "my_samplers", "list", "samplers", "--json"]) == 0
    assert "project_euler" in {r["name"] for r in json.loads(capsys.readouterr().out)}
    plugins.reset()
    assert main(["list", "samplers", "-p", "my_samplers", "--json"]) == 0  # after the command too
    assert "project_euler" in {r["name"] for r in json.loads(capsys.readouterr().out)}
    assert main(["train", "points", "--out", "r", "train.steps=3", "train.checkpoint_every=3", "data.n=64",
                 "--quiet", "-p", "my_samplers"]) == 0
    assert main(["-p", "my_samplers", "sample", "r", "--sampler", "project_euler", "--steps", "3", "--n", "8",
                 "--quiet"]) == 0
    assert "NFE 3" in capsys.readouterr().out


def test_plugin_modules_from_the_environment(project, monkeypatch, capsys):
    monkeypatch.setenv("POLYDIFF_PLUGIN_MODULES", "my_samplers")
    assert main(["list", "samplers", "--json"]) == 0
    assert "project_euler" in {r["name"] for r in json.loads(capsys.readouterr().out)}


def test_a_missing_plugin_module_is_a_clear_error(project, capsys):
    assert main(["-p", "no_such_module", "plugins"]) == 2
    err = capsys.readouterr().err
    assert "no_such_module" in err and "Traceback" not in err


def test_tables_fit_the_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "100")
    for what in (["plugins"], ["list", "samplers"], ["list", "metrics"], ["list", "mask-strategies"]):
        assert main(what) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines and max(len(line) for line in lines) <= 100, what


def test_device_flag(tmp_path, capsys):
    import torch

    out = tmp_path / "r"
    assert main(["train", "points", "--out", str(out), "train.steps=3", "train.checkpoint_every=3", "data.n=64",
                 "--quiet"]) == 0
    assert main(["sample", str(out), "--n", "8", "--steps", "2", "--device", "cpu", "--quiet"]) == 0
    if not torch.cuda.is_available():
        capsys.readouterr()
        assert main(["sample", str(out), "--n", "8", "--steps", "2", "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err
