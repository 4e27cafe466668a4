"""The video files loader says what it did: sources, sizes, the crop and resize, frames left over, files
that are not videos."""

import numpy as np
import pytest

pytest.importorskip("av")
import imageio.v3 as iio

from polydiff_video.data import load_files


def test_files_summary_names_sizes_conversion_and_skipped_files(tmp_path):
    frames = np.zeros((21, 48, 64, 3), np.uint8)
    for i in range(21):
        frames[i, 10:20, 2 + 2 * i:12 + 2 * i] = 255
    iio.imwrite(tmp_path / "a.mp4", frames, plugin="pyav", fps=10, codec="libx264")
    (tmp_path / "notes.txt").write_text("not a video")
    ds = load_files(path=str(tmp_path), frames=8, size=16, stride=4)
    assert len(ds) == 4  # clips start at 0, 4, 8, 12 of 21 frames
    s = ds.summary
    assert "1 source(s)" in s and "21 frames read" in s and "64x48" in s and "16x16" in s and "grey" in s
    assert "1 frame(s) at the ends" in s and "notes.txt" in s


def _frame_folder(folder, n: int, start: int) -> None:
    """PNG frames whose mean grey level is their own frame number (so a clip names its frames)."""
    folder.mkdir(parents=True)
    for i in range(n):
        iio.imwrite(folder / f"{i:03d}.png", np.full((16, 16), 2 * (start + i), np.uint8))


def _frame_numbers(ds, rows) -> list[set[int]]:
    levels = (ds.x[rows] + 1) / 2 * 255  # [n, T, C, H, W] back to grey levels
    return [set(np.rint(c.mean((1, 2, 3)).numpy() / 2).astype(int).tolist()) for c in levels]


def test_overlapping_clips_are_held_out_apart_from_the_training_clips(tmp_path, capsys):
    from polydiff.app.runs import load_data, resolve_config

    _frame_folder(tmp_path / "street", 60, 0)
    config = resolve_config({"modality": "video", "data": {"dataset": "files", "path": str(tmp_path / "street"),
                                                            "frames": 6, "size": 16, "stride": 2, "holdout": 0.25}})
    train, held = load_data(config)
    assert "the clips overlap, so the held-out ones are the last 25% of the 60 frames" in capsys.readouterr().err
    ds = train.dataset
    seen = set().union(*_frame_numbers(ds, train.indices))
    scored = _frame_numbers(ds, held.indices)
    assert len(scored) == 2 and not seen & set().union(*scored) and max(seen) < 45 <= min(min(c) for c in scored)
    # two videos: one is held out whole
    _frame_folder(tmp_path / "more" / "a", 30, 0)
    _frame_folder(tmp_path / "more" / "b", 30, 60)
    config = resolve_config({"modality": "video", "data": {"dataset": "files", "path": str(tmp_path / "more"),
                                                            "frames": 6, "size": 16, "stride": 2, "holdout": 0.5}})
    train, held = load_data(config)
    sources = train.dataset.sources
    assert len(sources[held.indices].unique()) == 1 and not set(sources[held.indices].tolist()) & set(
        sources[train.indices].tolist())
    # two videos and holdout 0.2: less than one video, so the end of each (the docs' default case)
    config = resolve_config({"modality": "video", "data": {"dataset": "files", "path": str(tmp_path / "more"),
                                                            "frames": 6, "size": 16, "stride": 2, "holdout": 0.2}})
    train, held = load_data(config)
    assert "the last 20% of each source's frames, tiled by clips" in capsys.readouterr().err
    seen = set().union(*_frame_numbers(train.dataset, train.indices))
    scored = set().union(*_frame_numbers(train.dataset, held.indices))
    assert len(held) == 2 and not seen & scored and {24, 84} <= scored  # the end of a (0-29) and of b (60-89)
