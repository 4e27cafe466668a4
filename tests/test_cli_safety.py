"""Issue 17, groups 1, 2, 4 and 9: polydiff never deletes what it did not create, a failed start does not
poison --out, and no zero or negative number silently becomes a default."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from polydiff.app.cli import main
from polydiff.app.runs import MARKER

TINY = ["train.steps=4", "train.batch_size=32", "train.checkpoint_every=4", "data.n=256", "model.width=16",
        "model.depth=1", "sample.n=50", "sample.steps=4", "--quiet"]


def run_cli(args, capsys):
    code = main(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out, captured.err


def test_quickstart_never_deletes_the_working_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.json").write_text("{}")  # a user's files, with a config.json among them
    (tmp_path / "thesis.tex").write_text("years of work")
    for extra in ([], ["--overwrite"]):
        code, _, err = run_cli(["quickstart", "--out", ".", "--steps", "2", "--quiet", *extra], capsys)
        assert code == 2 and "polydiff" in err
        assert (tmp_path / "thesis.tex").read_text() == "years of work" and (tmp_path / "config.json").exists()


def test_a_directory_polydiff_did_not_create_is_never_deleted(tmp_path, capsys):
    mine = tmp_path / "results"
    mine.mkdir()
    (mine / "config.json").write_text('{"my": "settings"}')
    (mine / "data.csv").write_text("1,2,3\n")
    code, _, err = run_cli(["quickstart", "--out", str(mine), "--steps", "2", "--overwrite", "--quiet"], capsys)
    assert code == 2 and MARKER in err and "never deletes" in err
    assert sorted(p.name for p in mine.iterdir()) == ["config.json", "data.csv"]
    code, _, err = run_cli(["train", "points", "--out", str(mine), *TINY], capsys)
    assert code == 2 and (mine / "data.csv").exists()


def test_a_finished_run_is_replaced_only_with_overwrite(tmp_path, capsys):
    out = tmp_path / "ring"
    assert run_cli(["train", "points", "--out", str(out), *TINY], capsys)[0] == 0
    first_id = json.loads((out / MARKER).read_text())["run_id"]
    code, _, err = run_cli(["train", "points", "--out", str(out), *TINY], capsys)
    assert code == 2 and "--overwrite" in err and "--resume" in err
    assert json.loads((out / MARKER).read_text())["run_id"] == first_id
    assert run_cli(["train", "points", "--out", str(out), *TINY, "--overwrite"], capsys)[0] == 0
    assert json.loads((out / MARKER).read_text())["run_id"] != first_id


def test_overwrite_refuses_the_working_directory_even_when_it_is_a_run(tmp_path, monkeypatch, capsys):
    out = tmp_path / "ring"
    assert run_cli(["train", "points", "--out", str(out), *TINY], capsys)[0] == 0
    monkeypatch.chdir(out)
    code, _, err = run_cli(["train", "points", "--out", ".", *TINY, "--overwrite"], capsys)
    assert code == 2 and "working directory" in err
    monkeypatch.chdir(out / "checkpoints")  # a parent of the working directory
    code, _, err = run_cli(["train", "points", "--out", "..", *TINY, "--overwrite"], capsys)
    assert code == 2 and (out / "checkpoints").is_dir()


@pytest.mark.parametrize("bad", [["train.device=cuda"] if not __import__("torch").cuda.is_available() else
                                 ["train.precision=fp16", "train.device=cpu"],
                                 ["data.holdout=0.001"],  # 256 items: nothing held out
                                 ["model.sigma_data=-1x"], ["train.mask_strategy=nope", "train.conditional=true"],
                                 ["sample.sampler=nope"], ["sample.options.s_churn=fast"],
                                 ["weighting.gamma=-1"], ["noise_levels.p_std=0"], ["data.n=-1"]])
def test_a_start_that_fails_leaves_no_run_directory(tmp_path, capsys, bad):
    out = tmp_path / "run"
    code, _, err = run_cli(["train", "points", "--out", str(out), *TINY, *bad], capsys)
    assert code == 2 and err.startswith("polydiff: error:") and len(err.strip().splitlines()) == 1
    assert not out.exists()
    assert run_cli(["train", "points", "--out", str(out), *TINY], capsys)[0] == 0  # the same --out still works


def test_a_start_that_fails_after_writing_is_reused_by_the_same_command(tmp_path, capsys):
    out = tmp_path / "run"
    nan = ["train.lr=1e30", "train.grad_clip=0", "train.warmup_steps=0", "train.log_every=2"]
    code, _, err = run_cli(["train", "points", "--out", str(out), *TINY, *nan], capsys)
    assert code == 2 and "nan" in err.lower()
    assert (out / MARKER).is_file() and not (out / "checkpoints").exists()
    assert run_cli(["train", "points", "--out", str(out), *TINY], capsys)[0] == 0
    assert json.loads((out / "config.json").read_text())["train"]["lr"] != 1e30
    assert (out / "checkpoints" / "latest").is_file()


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "ring"
    assert main(["train", "points", "--out", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("args", [["sample", "{run}", "--steps", "0"], ["sample", "{run}", "--n", "0"],
                                  ["sample", "{run}", "--n", "-5"], ["impute", "{run}", "--n", "0"],
                                  ["impute", "{run}", "--n-samples", "0"], ["impute", "{run}", "--steps", "0"],
                                  ["evaluate", "{run}", "--likelihood-n", "-1"],
                                  ["quickstart", "--steps", "0", "--out", "{run}/q"],
                                  ["train", "points", "--out", "{run}/z", "train.steps=0"]])
def test_zero_is_an_error_not_the_default(run_dir, capsys, args):
    code, _, err = run_cli([a.replace("{run}", str(run_dir)) for a in args], capsys)
    assert code == 2 and ("must be >= 1" in err or "must be >= 0" in err), err
    assert not (run_dir / "z").exists() and not (run_dir / "q").exists()


def test_a_huge_n_is_sampled_in_batches(run_dir, capsys, monkeypatch):
    from polydiff.app import workflows

    sizes = []
    real = workflows.load_denoiser

    def spy(*a, **k):
        d = real(*a, **k)
        d.register_forward_pre_hook(lambda m, inp: sizes.append(inp[0].shape[0]))
        return d

    monkeypatch.setattr(workflows, "DEFAULT_BATCH", 64)
    monkeypatch.setattr(workflows, "load_denoiser", spy)
    assert run_cli(["sample", str(run_dir), "--n", "300", "--steps", "2"], capsys)[0] == 0
    assert max(sizes) <= 64 and sum(s for s in sizes) >= 300


def test_overrides_anywhere_through_the_console_script(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [str(Path(sys.executable).with_name("polydiff")), "train", "points", "--out", str(tmp_path / "r"),
           "train.steps=3", "--quiet", "schedule.name=vp_cosine", "train.checkpoint_every=3", "data.n=64"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["schedule"]["name"] == "vp_cosine" and cfg["train"]["steps"] == 3
    bare = subprocess.run(cmd[:1], capture_output=True, text=True, env=env, timeout=120)
    assert bare.returncode == 0 and "usage: polydiff" in bare.stdout
    version = subprocess.run([*cmd[:1], "--version"], capture_output=True, text=True, env=env, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("polydiff ")


def test_impute_says_when_the_held_out_split_is_smaller_than_n(run_dir, capsys):
    code, _, err = run_cli(["impute", str(run_dir), "--n", "500", "--n-samples", "2", "--steps", "2"], capsys)
    assert code == 0 and "fewer than --n 500" in err and "data.holdout" in err
