"""Distributed data parallel with real torchrun (gloo, 2 CPU processes) equals a 1-process run."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polydiff.training.distributed import DistInfo, shard
from train_script import make_trainer, params

SCRIPT = Path(__file__).with_name("train_script.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_process_run_equals_one_process_run(tmp_path):
    out = tmp_path / "ddp.safetensors"
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    env["POLYDIFF_DISABLE_PLUGINS"] = "*"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(SCRIPT), "ddp", str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = load_file(str(out))
    for kind in ("labels", "masked"):
        trainer = make_trainer(kind)
        before = params(trainer)
        trainer.fit(progress=False)
        one = params(trainer)
        assert len(one) > 10
        for key, value in one.items():
            torch.testing.assert_close(two[f"{kind}.{key}"], value, atol=1e-6, rtol=1e-5, msg=f"{kind}.{key}")
            if kind == "labels":  # 5 steps, then 7 more after the Trainer destroyed and re-created its group
                torch.testing.assert_close(two[f"twice.{key}"], value, atol=1e-6, rtol=1e-5, msg=f"twice.{key}")
        # the run really moved the weights (otherwise equality would prove nothing)
        assert any(not torch.allclose(before[k], one[k]) for k in one if k.startswith("model."))


def test_world_size_must_divide_the_global_batch():
    with pytest.raises(ValueError, match=r"batch_size = 10 .* not divisible by the 4 processes"):
        shard(10, DistInfo(rank=0, world_size=4))
    assert shard(12, DistInfo(rank=2, world_size=4)) == slice(6, 9)
