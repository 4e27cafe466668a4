"""Checkpoints: round trip, atomicity, corruption errors, retention, and exact resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from polydiff.app.config import ConfigError
from polydiff.training.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
    remove_stale_temporaries,
    save_checkpoint,
)
from train_script import make_trainer, params

SCRIPT = Path(__file__).with_name("train_script.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    trainer = make_trainer("labels", run_dir=run, steps=12, checkpoint_every=4, keep_checkpoints=2)
    trainer.fit(progress=False)
    return run, trainer


def test_round_trip_and_layout(trained):
    run, trainer = trained
    path = latest_checkpoint(run)
    assert path == run / "checkpoints" / "step_00000012"
    assert sorted(p.name for p in path.iterdir()) == ["ema.safetensors", "model.safetensors",
                                                      "optimizer.safetensors", "state.json"]
    ckpt = read_checkpoint(path)
    assert ckpt.step == 12 and ckpt.state["config"]["batch_size"] == 16
    assert set(ckpt.state["versions"]) >= {"polydiff", "torch", "safetensors"}
    for k, v in trainer.model.state_dict().items():
        assert torch.equal(ckpt.model[k], v)
    for k, v in trainer.ema_state_dict().items():
        assert torch.equal(ckpt.ema[k], v)
    assert not all(torch.equal(ckpt.ema[k], ckpt.model[k]) for k in ckpt.model)  # EMA is not a copy
    fresh = torch.optim.AdamW(trainer.params)
    fresh.load_state_dict(ckpt.optimizer)
    want, got = trainer.optimizer.state_dict(), fresh.state_dict()
    assert got["param_groups"][0]["betas"] == list(want["param_groups"][0]["betas"])
    for pid, st in want["state"].items():
        assert all(torch.equal(got["state"][pid][k], v) for k, v in st.items())
    # keep_checkpoints = 2: step 4 was pruned
    assert [p.name for p in list_checkpoints(run)] == ["step_00000008", "step_00000012"]


def _copy_run(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_truncated_file_names_the_file_and_the_fix(trained, tmp_path):
    run = _copy_run(trained[0], tmp_path / "run")
    path = latest_checkpoint(run)
    victim = path / "ema.safetensors"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="ema.safetensors") as err:
        read_checkpoint(path)
    assert str(path) in str(err.value) and "delete" in str(err.value)
    # without hash checks the damaged safetensors header is still caught
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        read_checkpoint(path, verify=False)


def test_flipped_bytes_fail_the_hash(trained, tmp_path):
    run = _copy_run(trained[0], tmp_path / "run")
    path = latest_checkpoint(run)
    victim = path / "model.safetensors"
    data = bytearray(victim.read_bytes())
    data[-10] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"model\.safetensors is corrupt"):
        read_checkpoint(path)
    (path / "state.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="state.json"):
        read_checkpoint(path)


def test_deleting_a_bad_checkpoint_falls_back_to_the_previous_one(trained, tmp_path):
    run = _copy_run(trained[0], tmp_path / "run")
    import shutil

    shutil.rmtree(run / "checkpoints" / "step_00000012")  # what the error message tells the user to do
    assert latest_checkpoint(run) == run / "checkpoints" / "step_00000008"
    assert read_checkpoint(latest_checkpoint(run)).step == 8


def test_leftovers_of_a_crashed_write_are_ignored(tmp_path):
    t = {"w": torch.ones(3)}
    opt = {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}
    save_checkpoint(tmp_path, step=5, model=t, ema=t, optimizer=opt)
    root = tmp_path / "checkpoints"
    # a crash during the write of step 10: temp dir with partial files, never renamed
    (root / ".tmp-step_00000010-999").mkdir()
    (root / ".tmp-step_00000010-999" / "model.safetensors").write_bytes(b"partial")
    # a crash between rename and state.json is impossible by construction, but a stray dir is skipped too
    (root / "step_00000020").mkdir()
    assert latest_checkpoint(tmp_path) == root / "step_00000005"
    # a crash after the rename but before `latest` moved: the newer complete one wins
    save_checkpoint(tmp_path, step=7, model=t, ema=t, optimizer=opt)
    (root / "latest").write_text("step_00000005\n")
    assert latest_checkpoint(tmp_path) == root / "step_00000007"
    assert latest_checkpoint(tmp_path / "nothing-here") is None


def test_resuming_with_a_changed_config_names_the_key_both_values_and_the_fix(trained, tmp_path):
    run = _copy_run(trained[0], tmp_path / "run")  # trained with lr=3e-3, seed=7, batch_size=16 up to step 12
    with pytest.raises(ConfigError, match=r"train.lr = 0.003 in the checkpoint but 0.001 now; "
                                          r"train.betas = \[0.9, 0.999\] in the checkpoint but \(0.5, 0.9\) now\. "
                                          r".*start a new run with --out DIR.*or restore"):
        make_trainer("labels", run_dir=run, steps=16, lr=1e-3, betas=(0.5, 0.9)).fit(progress=False)
    for key, value in [("seed", 8), ("batch_size", 8), ("label_dropout", 0.0), ("ema_decay", 0.5),
                       ("precision", "bf16"), ("warmup_steps", 0), ("lr_decay_steps", 5), ("grad_clip", 0.0),
                       ("weight_decay", 0.1)]:
        with pytest.raises(ConfigError, match=f"train.{key} = "):
            make_trainer("labels", run_dir=run, steps=16, **{key: value}).resume()
    assert read_checkpoint(latest_checkpoint(run)).step == 12  # nothing was overwritten
    # what may change between sessions: the length of the run, checkpoint and log periods, the device
    summary = make_trainer("labels", run_dir=run, steps=14, checkpoint_every=1, keep_checkpoints=5,
                           log_every=1).fit(progress=False)
    assert summary["resumed_from"] == 12 and summary["step"] == 14


class Crash(BaseException):
    """Stands for the process dying at a chosen instruction."""


def test_a_crash_while_re_saving_a_step_keeps_its_only_copy(tmp_path, monkeypatch):
    opt = {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}

    def save(step: int, value: float) -> Path:
        w = {"w": torch.full((3,), value)}
        return save_checkpoint(tmp_path, step=step, model=w, ema=w, optimizer=opt)

    def value(path: Path) -> float:
        return float(read_checkpoint(path).model["w"][0])

    save(4, 4.0)
    save(7, 7.0)
    root, real_replace = tmp_path / "checkpoints", os.replace

    def dies_after_setting_the_old_copy_aside(src, dst):
        real_replace(src, dst)
        if Path(src).name == "step_00000007":
            raise Crash

    monkeypatch.setattr(os, "replace", dies_after_setting_the_old_copy_aside)
    with pytest.raises(Crash):
        save(7, 70.0)
    monkeypatch.undo()
    # the crash state: no step_00000007, the old copy set aside, the new one still a temporary
    assert not (root / "step_00000007").exists()
    assert sorted(p.name.rsplit("-", 1)[0] for p in root.iterdir() if p.name.startswith(".tmp-")) == [
        ".tmp-old-step_00000007", ".tmp-step_00000007"]
    found = latest_checkpoint(tmp_path)
    assert found is not None and found.name.startswith(".tmp-old-step_00000007") and value(found) == 7.0
    remove_stale_temporaries(tmp_path)  # what Trainer.fit does first: restores rather than deletes
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000004", "step_00000007"]
    assert latest_checkpoint(tmp_path) == root / "step_00000007" and value(root / "step_00000007") == 7.0
    # a re-save that completes replaces the copy and leaves nothing behind
    assert value(save(7, 70.0)) == 70.0
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step_00000004", "step_00000007"]


def test_resume_after_sigkill_matches_an_uninterrupted_run(tmp_path):
    steps, run = 60, tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    log = tmp_path / "stderr.txt"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, str(SCRIPT), "slow", str(run), str(steps)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 60
    while latest_checkpoint(run) is None:
        assert proc.poll() is None, log.read_text()[-2000:]
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = read_checkpoint(latest_checkpoint(run)).step
    assert 0 < killed_at < steps, "the run was not interrupted"

    resumed = make_trainer("masked", run_dir=run, steps=steps, checkpoint_every=10)
    summary = resumed.fit(progress=False)
    assert summary["resumed_from"] == killed_at and summary["step"] == steps
    uninterrupted = make_trainer("masked", run_dir=tmp_path / "full", steps=steps)
    uninterrupted.fit(progress=False)
    a, b = params(resumed), params(uninterrupted)
    for k in b:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=0, msg=k)
    # metrics past the checkpoint were dropped on resume, so every step is logged once
    logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == sorted(set(logged)) and logged[-1] == steps
    # and the lines equal the uninterrupted run's (the checkpoint carried the open logging window:
    # checkpoint_every 10 is not a multiple of log_every 4); only wall-clock seconds differ
    def lines(path):
        return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
                for line in (path / "metrics.jsonl").read_text().splitlines()]
    got, want = lines(run), lines(tmp_path / "full")
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for g, w in zip(got, want, strict=True):
        assert g.keys() == w.keys() and g["lr"] == w["lr"]
        assert g["loss"] == pytest.approx(w["loss"], rel=1e-6)
        assert g["grad_norm"] == pytest.approx(w["grad_norm"], rel=1e-5)


def test_a_checkpoint_from_before_a_new_option_resumes_when_the_option_is_off(tmp_path):
    """A run made before ``model.scale_noise`` existed has no such key; resolving its config now adds it
    as false (how the run was trained), which is not an edit; turning it on is."""
    from polydiff.training.resume import check_run_config

    saved = {"model": {"prior_fill": "residual"}, "train": {"lr": 0.001}}
    check_run_config(saved, {"model": {"prior_fill": "residual", "scale_noise": False}, "train": {"lr": 0.001}},
                     tmp_path)
    with pytest.raises(ConfigError, match="model.scale_noise = None in the checkpoint but True now"):
        check_run_config(saved, {"model": {"prior_fill": "residual", "scale_noise": True}, "train": {"lr": 0.001}},
                         tmp_path)
    with pytest.raises(ConfigError, match="model.prior_fill"):
        check_run_config(saved, {"model": {"prior_fill": "none"}, "train": {"lr": 0.001}}, tmp_path)
