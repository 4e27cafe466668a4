"""benchmarks/video.py on footage: the tuning split (``--validate``) scores clips carved from the training
part and never reads a held-out frame; residual models get EDM's schedule and training levels scaled by
their sigma_data, and sample with the schedule they were trained with."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from polydiff import NoiseLevels

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "video.py"


@pytest.fixture(scope="module")
def bench(load_script) -> ModuleType:
    return load_script(BENCH, "bench_video")


@pytest.mark.parametrize(("frames", "holdout", "validate"), [(398, 0.15, 0.2), (100, 0.3, 0.5), (60, 0.15, 0.1)])
def test_validation_part_lies_inside_the_training_part(bench: ModuleType, frames: int, holdout: float,
                                                       validate: float) -> None:
    fit, held = bench.split_in_time(frames, holdout)
    tune_fit, val = bench.split_in_time(frames, holdout, validate)
    assert set(fit) | set(held) == set(range(frames)) and not set(fit) & set(held)
    assert len(val) > 0 and len(tune_fit) > 0
    assert set(tune_fit) | set(val) == set(fit), "tuning must use the training part, all of it"
    assert not set(val) & set(held) and not set(tune_fit) & set(held), "tuning read a held-out frame"
    assert max(tune_fit) < min(val)


def _frames_folder(tmp: Path, n: int) -> Path:
    """``n`` flat grey frames whose level encodes their index (4 * i), as PNG files read in name order."""
    for i in range(n):
        Image.fromarray(np.full((20, 24), 4 * i, dtype=np.uint8)).save(tmp / f"f{i:03d}.png")
    return tmp


def _indices(ds: Any) -> set[int]:
    """Original frame indices (before every 2nd frame is kept) of every frame in every clip."""
    x = ds.get_batch(torch.arange(len(ds))).x
    level = (x.mean((2, 3, 4)) + 1) / 2 * 255  # [-1, 1] back to 0-255
    return set(np.rint(level.numpy() / 4).astype(int).ravel().tolist())


def test_load_footage_validate_never_reads_held_out_frames(bench: ModuleType, tmp_path: Path) -> None:
    folder = _frames_folder(tmp_path, 60)  # 30 frames kept (every 2nd), 0, 2, ..., 58
    train, test = bench.load_footage(str(folder), 0.2)
    fit, val = bench.load_footage(str(folder), 0.2, validate=0.25)
    held = _indices(test)
    assert held and min(held) > max(_indices(train))
    assert _indices(fit) | _indices(val) <= _indices(train)
    assert not (_indices(fit) | _indices(val)) & held
    assert max(_indices(fit)) < min(_indices(val))
    assert val.options["part"] == "validation" and test.options["part"] == "test"


def test_validation_without_a_whole_clip_is_a_clear_error(bench: ModuleType, tmp_path: Path) -> None:
    folder = _frames_folder(tmp_path, 60)
    with pytest.raises(ValueError, match="holds no clip"):
        bench.load_footage(str(folder), 0.2, validate=0.05)


def test_scaled_schedule_follows_sigma_data(bench: ModuleType) -> None:
    levels = NoiseLevels(kind="lognormal", p_mean=-2.6, p_std=1.2)
    schedule, scaled = bench.scaled(0.1, levels, True)
    assert schedule.sigma_hi == pytest.approx(16.0) and schedule.sigma_lo == pytest.approx(0.0004)
    assert scaled.p_mean == pytest.approx(-2.6 + math.log(0.2)) and scaled.p_std == 1.2
    schedule, same = bench.scaled(0.1, levels, False)
    assert (schedule.sigma_lo, schedule.sigma_hi) == (0.002, 80.0) and same == levels


def test_residual_model_trains_and_samples_at_its_scaled_levels(bench: ModuleType, tmp_path: Path) -> None:
    folder = _frames_folder(tmp_path, 60)
    train, _ = bench.load_footage(str(folder), 0.2)
    levels = NoiseLevels(kind="lognormal", p_mean=-2.6, p_std=1.2)
    torch.set_num_threads(1)
    _, info = bench.train(train, 0.0, 0, 2, 2, 2, levels, prior_fill="residual", cpu_seconds=0.5, scale_noise=True)
    k = info["sigma_data"] / 0.5
    assert info["prior_fill"] == "residual" and info["steps"] >= 1
    assert info["schedule"]["sigma_hi"] == pytest.approx(80.0 * k)
    assert info["levels"]["p_mean"] == pytest.approx(-2.6 + math.log(k))


def test_model_flag_sets_video_unet_options_over_the_defaults(bench: ModuleType, tmp_path: Path) -> None:
    # the small unpatched footage net of docs/plugins/video.md: one level at full resolution
    args = bench.argparse.Namespace(channels=16, dropout=0.0, model=["patch=1", "channel_mult=1",
                                                                     "attention_resolution=0"])
    options = bench.model_options(args)
    assert options == {"channels": 16, "dropout": 0.0, "patch": 1, "channel_mult": 1, "attention_resolution": 0}
    train, _ = bench.load_footage(str(_frames_folder(tmp_path, 60)), 0.2)
    torch.set_num_threads(1)
    _, info = bench.train(train, 0.0, 0, 2, 2, 2, NoiseLevels(kind="lognormal"), prior_fill="residual",
                          cpu_seconds=0.5, scale_noise=True, model=options, norm="l1")
    assert info["model"]["patch"] == 1 and info["model"]["channel_mult"] == 1 and info["norm"] == "l1"
    assert info["parameters"] < 100_000  # the default net has 877k
    bad = bench.argparse.Namespace(channels=16, dropout=0.0, model=["patch"])
    with pytest.raises(ValueError, match="--model takes KEY=VALUE"):
        bench.model_options(bad)
    with pytest.raises(ValueError, match="unknown video_unet option.s. context, patches; valid: "):
        bench.model_options(bench.argparse.Namespace(channels=16, dropout=0.0, model=["patches=1", "context=3"]))


def test_warp_model_trains_with_x0_and_the_flags_are_checked(bench: ModuleType, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    train, _ = bench.load_footage(str(_frames_folder(tmp_path, 60)), 0.2)
    torch.set_num_threads(1)
    _, info = bench.train(train, 0.0, 0, 2, 2, 2, NoiseLevels(kind="lognormal"), cpu_seconds=0.5,
                          model={"patch": 1, "channel_mult": 1, "warp": 2}, parameterization="x0")
    assert info["parameterization"] == "x0" and info["model"]["warp"] == 2 and info["steps"] >= 1
    for flags, why in ((["--model", "warp=2"], "add --parameterization x0"),
                       (["--model", "warp=2", "--parameterization", "x0", "--prior-fill", "residual"],
                        "not the residual")):
        monkeypatch.setattr("sys.argv", ["video.py", *flags])
        with pytest.raises(SystemExit):
            bench.main()
        assert why in capsys.readouterr().err
