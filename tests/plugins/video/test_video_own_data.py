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
