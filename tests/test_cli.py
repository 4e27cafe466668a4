"""The command line end to end on tiny runs, through the installed console script where it matters."""

import json
import shutil
import subprocess
import sys

import pytest

from polydiff.app.cli import main

TINY = ["train.steps=40", "train.log_every=10", "train.batch_size=64", "train.checkpoint_every=20", "data.n=512",
        "model.width=32", "model.depth=1", "sample.n=200", "sample.steps=6"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert main(["train", "points", *TINY, "--out", str(out), "--quiet"]) == 0
    return out


def test_train_writes_a_run_directory(tiny_run):
    cfg = json.loads((tiny_run / "config.json").read_text())
    assert cfg["modality"] == "points" and cfg["data"]["dataset"] == "ring"
    assert cfg["model"]["width"] == 32 and cfg["model"]["sigma_data"] > 0  # resolved, not left to defaults
    rows = [json.loads(line) for line in (tiny_run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r][-1] == 40 and all(r["loss"] > 0 for r in rows if "loss" in r)
    assert any((tiny_run / "checkpoints").iterdir())


def test_sample_then_evaluate(tiny_run, capsys):
    assert main(["sample", str(tiny_run), "--sampler", "dpmpp_2m", "--steps", "5", "--n", "100", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "NFE 5" in out and ".png" in out
    pngs = list((tiny_run / "samples").glob("*.png"))
    assert pngs and all(p.stat().st_size > 1000 for p in pngs)
    assert main(["evaluate", str(tiny_run), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n"] == 100 and res["sliced_w2"] > 0
    # a 40-step model is poor but its likelihood is a real number in a sane range (the data: ~0.16)
    assert -1.0 < res["nll_nats_per_dim"] < 5.0
    assert (tiny_run / "eval.json").is_file()


def test_unknown_key_fails_with_the_valid_options(tmp_path, capsys):
    assert main(["train", "points", "train.stpes=3", "--out", str(tmp_path / "x"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "train.stpes" in err and "did you mean 'steps'" in err
    assert main(["train", "points", "model.parameterization=epsilon", "--out", str(tmp_path / "y")]) == 2
    assert "choose one of: edm, eps, x0, v, score, flow" in capsys.readouterr().err
    assert main(["train", "pointz", "--out", str(tmp_path / "z")]) == 2
    assert "points" in capsys.readouterr().err


def test_sample_unknown_sampler_lists_valid_names(tiny_run, capsys):
    assert main(["sample", str(tiny_run), "--sampler", "eulr", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "euler" in err and "heun" in err


def test_sampler_options_from_the_command_line(tiny_run, capsys):
    from safetensors import safe_open

    args = ["sample", str(tiny_run), "--sampler", "restart", "--steps", "5", "--n", "50", "--quiet"]
    opts = ["--sampler-option", "solver=ddpm", "--sampler-option", "sigma_restart=0.5", "--sampler-option",
            "restarts=2"]
    assert main([*args, *opts]) == 0
    out = capsys.readouterr().out
    nfe = int(out.split("NFE ")[1].split(",")[0])
    assert nfe > 5  # the restarts' steps come on top of the grid's
    path = out.split("samples: ")[1].split()[0]
    with safe_open(path, "pt") as f:
        assert json.loads(f.metadata()["options"]) == {"solver": "ddpm", "sigma_restart": 0.5, "restarts": 2}
    assert main([*args, "--sampler-option", "sigma=0.5"]) == 2
    assert "unknown key --sampler-option.sigma" in (err := capsys.readouterr().err) and "sigma_restart" in err
    assert main([*args, "--sampler-option", "sigma_restart"]) == 2
    assert "--sampler-option takes KEY=VALUE" in capsys.readouterr().err


def test_config_sampler_options_belong_to_the_config_sampler():
    from polydiff.app.config import SampleConfig
    from polydiff.app.workflows import sampler_options

    cfg = SampleConfig(sampler="restart", options={"sigma_restart": 0.2})
    assert sampler_options(cfg, None, None) == sampler_options(cfg, "restart", None) == {"sigma_restart": 0.2}
    assert sampler_options(cfg, "heun", None) == {}  # another sampler: the config's options are not its
    assert sampler_options(cfg, "heun", {"s_churn": 1.0}) == {"s_churn": 1.0}
    from polydiff.app.runs import resolve_config

    run = resolve_config({"modality": "points", "sample": {"sampler": "restart", "options": {"restarts": 2}}})
    again = resolve_config(json.loads(json.dumps(run.to_dict())))  # config.json round trip
    assert again.sample.options == {"restarts": 2} and again == run


def test_not_a_run_directory(tmp_path, capsys):
    assert main(["sample", str(tmp_path)]) == 2
    assert "not a polydiff run directory" in capsys.readouterr().err


def test_list_and_plugins_through_the_console_script():
    exe = shutil.which("polydiff")
    cmd = [exe] if exe else [sys.executable, "-m", "polydiff.app.cli"]
    out = subprocess.run([*cmd, "list", "samplers", "--json"], capture_output=True, text=True, check=True).stdout
    names = {row["name"] for row in json.loads(out)}
    assert {"ddpm", "ddim", "euler", "heun", "dpmpp_2m", "deis", "euler_maruyama"} <= names
    out = subprocess.run([*cmd, "plugins", "--json"], capture_output=True, text=True, check=True).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows and any("points" in json.dumps(r) for r in rows.values())


def test_quickstart_tiny(tmp_path, capsys):
    assert main(["quickstart", "--out", str(tmp_path / "qs"), "--steps", "60", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "sliced_w2" in out and "trajectory.png" in out
    line = next(ln for ln in out.splitlines() if "<- fresh data" in ln and "sliced_w2" in ln)
    assert "mean of 8 draws of" in line and " sd " in line  # the data's score is a spread, not one lucky draw


def test_train_under_torchrun_matches_one_process(tmp_path):
    """`torchrun -m polydiff.app.cli train` (2 gloo processes on the CPU) gives the 1-process run's weights."""
    import os
    import socket

    import torch

    from polydiff.training.checkpoint import latest_checkpoint, read_checkpoint

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["POLYDIFF_DISABLE_PLUGINS"] = "*"  # the points toy needs no plugin; importing them all costs each rank seconds
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(port), "-m", "polydiff.app.cli", "train", "points", *TINY, "train.device=cpu",
           "--out", str(out), "--quiet"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["train", "points", *TINY, "train.device=cpu", "--out", str(tmp_path / "one"), "--quiet"]) == 0
    one = read_checkpoint(latest_checkpoint(tmp_path / "one")).model
    two = read_checkpoint(latest_checkpoint(out)).model
    assert one.keys() == two.keys()
    for key in one:
        torch.testing.assert_close(two[key], one[key], atol=1e-6, rtol=1e-5, msg=key)


def test_inconsistent_conditioning_options_fail(tiny_run, tmp_path, capsys):
    assert main(["train", "points", "train.conditional=true", "--out", str(tmp_path / "c")]) == 2
    assert "model.conditional = false" in capsys.readouterr().err
    assert main(["sample", str(tiny_run), "--cfg-scale", "2", "--quiet"]) == 2
    assert "model.class_cond = false" in capsys.readouterr().err


def test_held_out_split_does_not_depend_on_the_training_seed():
    from polydiff.app.runs import load_data, resolve_config

    a = load_data(resolve_config({"modality": "points", "data": {"n": 200}, "train": {"seed": 1}}))[1]
    b = load_data(resolve_config({"modality": "points", "data": {"n": 200}, "train": {"seed": 2}}))[1]
    c = load_data(resolve_config({"modality": "points", "data": {"n": 200, "split_seed": 3}}))[1]
    assert a.indices.tolist() == b.indices.tolist() != c.indices.tolist()


def test_config_file_with_overrides_and_no_modality(tmp_path):
    from pathlib import Path

    example = Path(__file__).parents[1] / "examples" / "points.toml"
    out = tmp_path / "ex"
    assert main(["train", "--config", str(example), "train.steps=20", "train.log_every=10", "data.n=256",
                 "model.width=16", "--out", str(out), "--quiet"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["train"]["steps"] == 20 and cfg["schedule"]["name"] == "vp_cosine" and cfg["model"]["width"] == 16
    assert cfg["model"]["parameterization"] == "v" and cfg["weighting"]["kind"] == "min_snr"


def test_sample_animates_the_denoising(tiny_run, capsys):
    from PIL import Image

    assert main(["sample", str(tiny_run), "--steps", "6", "--n", "50", "--animate", "--quiet"]) == 0
    gif = next(line.split(": ", 1)[1] for line in capsys.readouterr().out.splitlines() if line.endswith(".gif"))
    with Image.open(gif) as im:
        assert im.n_frames == 7  # every level of a 6-step grid: noise, 5 intermediate, data
        im.seek(0)
        first = im.convert("L").histogram()
        im.seek(im.n_frames - 1)
        assert im.convert("L").histogram() != first  # noise and data look different
