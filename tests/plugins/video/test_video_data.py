"""Video datasets and mask strategies: determinism, motion, loaders of real files, clear errors."""

import numpy as np
import pytest
import torch

from polydiff_video.data import (
    VTEST,
    VideoDataError,
    bounce,
    clips_of,
    load_files,
    load_moving_digits,
    load_opencv_sample,
    read_video,
)
from polydiff_video.masks import future_frames, middle_frames, mixed
from polydiff_video.plots import save_mp4


def test_moving_digits_are_seeded_labelled_and_move():
    a, b = load_moving_digits(n=6, frames=5, size=16, digit_size=8, seed=3), \
        load_moving_digits(n=6, frames=5, size=16, digit_size=8, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.x, load_moving_digits(n=6, frames=5, size=16, digit_size=8, seed=4).x)
    assert a.x.shape == (6, 5, 1, 16, 16) and a.x.min() >= -1 and a.x.max() <= 1 and a.num_classes == 10
    ink = ((a.x + 1) / 2).sum((2, 3, 4))  # the whole digit stays inside the canvas in every frame
    assert torch.allclose(ink, ink[:, :1].expand_as(ink), rtol=1e-5)
    assert ((a.x[:, 1:] - a.x[:, :-1]).abs().flatten(1).amax(1) > 0).all()  # speed 3: every clip moves
    assert torch.allclose(a.denormalize(a.x), (a.x + 1) / 2)


def test_bounce_reflects_at_the_walls():
    path = bounce(np.array([1.0, 5.0]), np.array([-2.0, 1.0]), 4, limit=6)
    assert np.allclose(path, [[1, 5], [1, 6], [3, 5], [5, 4]])


def test_future_and_middle_frames_hide_whole_frames():
    obs = torch.ones(3, 6, 1, 4, 4)
    obs[0, 5, 0, 0, 0] = 0  # a missing pixel stays out of the target
    g = torch.Generator().manual_seed(0)
    t = future_frames(obs, g, given=2)
    assert (t <= obs).all() and t[:, :2].sum() == 0 and t[1:, 2:].min() == 1 and t[0, 5, 0, 0, 0] == 0
    m = middle_frames(obs, g, given=2)
    assert m[:, :2].sum() == 0 and m[:, 4:].sum() == 0 and m[:, 2:4].min() == 1
    r = future_frames(torch.ones(200, 6, 1, 2, 2), g, given=0).flatten(2).amax(2)
    given = 6 - r.sum(1)  # a random context of 1..5 frames, every value drawn
    assert set(given.long().tolist()) == {1, 2, 3, 4, 5} and (r[:, 1:] >= r[:, :-1]).all()
    x = mixed(torch.ones(64, 6, 1, 2, 2), g).flatten(2).amax(2)
    assert (x[:, 0] == 0).all() and (x[:, -1] == 1).any() and (x[:, -1] == 0).any()  # both tasks drawn
    with pytest.raises(ValueError, match="leaves no frame to predict"):
        future_frames(obs, g, given=6)
    with pytest.raises(ValueError, match=r"\[B, T, C, H, W\]"):
        middle_frames(torch.ones(2, 3, 4, 4), g)


def test_files_loader_reads_an_mp4_and_a_frame_folder(tmp_path):
    import imageio.v3 as iio
    from PIL import Image

    clip = load_moving_digits(n=1, frames=12, size=16, digit_size=8).x[0]
    rgb = ((clip + 1) * 127.5).round().byte().repeat(1, 3, 1, 1).permute(0, 2, 3, 1).numpy()
    iio.imwrite(tmp_path / "digit.mp4", rgb.repeat(4, 1).repeat(4, 2), plugin="pyav", codec="libx264", fps=5)
    video = read_video(tmp_path / "digit.mp4", size=16, channels=1)
    assert video.shape == (12, 1, 16, 16)
    assert (video - clip).abs().mean() < 0.05  # H.264 is lossy, but the frames are the same frames
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(clip):
        Image.fromarray(((f[0] + 1) * 127.5).round().byte().numpy()).save(frames / f"{i:03d}.png")
    ds = load_files(path=str(frames), frames=4, stride=4, size=16)
    assert ds.x.shape == (3, 4, 1, 16, 16) and torch.allclose(ds.x.reshape(12, 1, 16, 16), clip, atol=1 / 127)
    assert ds.labels is None and ds.segments is not None and len(set(ds.segments.tolist())) == 3


def test_mp4_grid_of_samples_reads_back(tmp_path):
    import imageio.v3 as iio

    clips = load_moving_digits(n=3, frames=5, size=16, digit_size=8).x
    frames = iio.imread(save_mp4(clips, tmp_path / "grid.mp4", fps=5), plugin="pyav")
    assert frames.shape[0] == 5 and frames.shape[1] % 2 == 0 and frames.shape[2] >= 3 * 16 * 4


def test_loader_errors_name_the_problem(tmp_path):
    with pytest.raises(VideoDataError, match="does not exist"):
        load_files(path=str(tmp_path / "nope.mp4"))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video")
    with pytest.raises(VideoDataError, match="cannot read video"):
        load_files(path=str(bad))
    with pytest.raises(VideoDataError, match="fewer than one clip of data.frames=8"):
        clips_of(torch.zeros(5, 1, 4, 4), 8, 1, source="short.mp4")
    with pytest.raises(VideoDataError, match="apt-get install -y --no-install-recommends opencv-doc"):
        load_opencv_sample(path=str(tmp_path / "vtest.avi"))


@pytest.mark.skipif(not VTEST.is_file(), reason="needs Debian's opencv-doc")
def test_opencv_sample_footage_is_real_and_moving():
    ds = load_opencv_sample(frames=8, size=16, every=4, stride=8)
    assert ds.x.shape[1:] == (8, 1, 16, 16) and len(ds) == (795 // 4 + 1 - 8) // 8 + 1
    assert ds.x.std() > 0.1 and motion_of(ds) > 0.005  # pedestrians walk
    assert sorted(set(ds.segments.tolist())) == list(range(10))


def motion_of(ds):
    return float((ds.x[:, 1:] - ds.x[:, :-1]).abs().mean())
