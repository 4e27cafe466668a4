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

    def split(path, holdout):
        config = resolve_config({"modality": "video", "data": {"dataset": "files", "path": str(path), "frames": 6,
                                                                "size": 16, "stride": 2, "holdout": holdout}})
        train, held = load_data(config)
        seen = set().union(*_frame_numbers(train.dataset, train.indices))
        scored = _frame_numbers(train.dataset, held.indices)
        assert not seen & set().union(*scored), "a held-out frame is a training frame"
        assert sum(map(len, scored)) == len(set().union(*scored)), "two held-out clips share a frame"
        return train, held, seen, set().union(*scored)

    _frame_folder(tmp_path / "street", 60, 0)
    train, held, seen, scored = split(tmp_path / "street", 0.25)
    assert "the clips overlap, so the held-out ones are clips tiling the last 20% of the 60 frames" in (
        capsys.readouterr().err)
    assert len(held) == 2 and max(seen) < min(scored) and max(scored) == 59  # tiled back from the last frame
    _frame_folder(tmp_path / "more" / "a", 30, 0)
    _frame_folder(tmp_path / "more" / "b", 30, 60)
    train, held, seen, scored = split(tmp_path / "more", 0.5)  # two videos, half: one of them, tiled
    sources = train.dataset.sources
    assert len(sources[held.indices].unique()) == 1 and len(held) == 5
    assert not set(sources[held.indices].tolist()) & set(sources[train.indices].tolist())
    train, held, seen, scored = split(tmp_path / "more", 0.2)  # under one video: the end of each
    assert "clips tiling the last 20% of the frames of each of the 2 sources" in capsys.readouterr().err
    assert len(held) == 2 and {29, 89} <= scored  # the ends of a (frames 0-29) and b (60-89)
