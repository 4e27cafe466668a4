"""Device choice without a GPU: what `train.device` resolves to, and the clear errors around it.

The CUDA paths themselves (training, sampling, grid fitting and imputation on a GPU) are checked by running
this whole suite on a GPU machine, where `train.device = auto` picks CUDA; CI has no GPU."""

from __future__ import annotations

import pytest
import torch

from polydiff.app.cli import main
from polydiff.training.distributed import resolve_device

TINY = ["train.steps=2", "train.batch_size=8", "train.checkpoint_every=2", "data.n=64", "model.width=16", "--quiet"]


def fake_gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_auto_is_the_cpu_without_cuda_and_the_local_rank_gpu_with_it(monkeypatch):
    fake_gpus(monkeypatch, 0)
    assert resolve_device("auto") == torch.device("cpu")
    fake_gpus(monkeypatch, 4)
    assert resolve_device("auto", local_rank=3, local_world=4) == torch.device("cuda", 3)
    assert resolve_device("cpu", local_rank=3, local_world=4) == torch.device("cpu")


def test_more_torchrun_processes_than_gpus_is_a_clear_error(monkeypatch):
    fake_gpus(monkeypatch, 1)
    for device in ("auto", "cuda"):
        with pytest.raises(ValueError, match=r"started 2 processes .* 1 CUDA device.*--nproc-per-node 1.*device=cpu"):
            resolve_device(device, local_rank=0, local_world=2)
    assert resolve_device("cpu", local_rank=1, local_world=2) == torch.device("cpu")


def test_the_cli_refuses_before_any_process_group_is_joined(monkeypatch, tmp_path, capsys):
    fake_gpus(monkeypatch, 1)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert main(["train", "points", *TINY, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "started 2 processes on this node but it has 1 CUDA device" in err and "Traceback" not in err
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").glob("checkpoints/*"))


def test_grid_calibration_noise_is_made_where_the_model_is():
    """A fitted grid's calibration noise follows ``device`` (it was once left on the CPU beside a CUDA
    model: `polydiff sample --grid optimized` failed on a GPU). The meta device stands in for CUDA."""
    from polydiff.diffusion.grids import _calibration_noise

    cpu, seeds = _calibration_noise(8, (3,), 0, None, None, torch.device("cpu"))
    meta, same = _calibration_noise(8, (3,), 0, None, None, torch.device("meta"))
    assert meta.device.type == "meta" and meta.shape == cpu.shape and seeds == same
    given, _ = _calibration_noise(cpu, (3,), 0, None, None, torch.device("meta"))
    assert given.device.type == "meta"


def test_an_imputation_moves_whole():
    from polydiff.diffusion.imputation import Imputation

    ones = torch.ones(2, 3)
    imp = Imputation(samples=torch.randn(2, 4, 3), truth=ones, given=ones, target=0 * ones, padding=ones,
                     cond={"label": torch.tensor([1, 2])}, nfe=7)
    moved = imp.to("meta")
    tensors = [moved.samples, moved.truth, moved.given, moved.target, moved.padding, moved.cond["label"]]
    assert all(t is not None and t.device.type == "meta" for t in tensors) and moved.nfe == 7
    assert imp.samples.device.type == "cpu"  # the original stays where it was
