"""The video prior fill: copy-last-frame, and global-motion extrapolation where two frames are given."""

from __future__ import annotations

import torch

from polydiff import plugins
from polydiff.testing import check_prior_fill
from polydiff_video.fill import last_frame_fill, motion_fill


def _square_moving(t: int = 6, size: int = 16, speed: int = 2) -> torch.Tensor:
    clip = -torch.ones(1, t, 1, size, size)
    for i in range(t):
        clip[0, i, 0, 4:8, 2 + speed * i:6 + speed * i] = 1.0
    return clip


def test_last_frame_fill_copies_the_last_given_frame() -> None:
    clip = _square_moving()
    given = torch.zeros_like(clip)
    given[:, 1:3] = 1
    out = last_frame_fill(clip * given, given)
    assert torch.equal(out[:, 3:], clip[:, 2:3].expand(-1, 3, -1, -1, -1))
    assert torch.equal(out[:, 0], clip[:, 1])  # before the first given frame: the next one
    assert torch.equal(out[:, 1:3], clip[:, 1:3])


def test_motion_fill_predicts_a_rigid_translation_exactly() -> None:
    clip = _square_moving()
    given = torch.zeros_like(clip)
    given[:, :2] = 1
    out = motion_fill(clip * given, given)
    assert plugins.get_modality("video").prior_fill is motion_fill
    assert torch.equal(out, clip)  # beyond copy-last-frame, which is wrong from frame 2 on
    assert not torch.equal(last_frame_fill(clip * given, given), clip)


def test_conformance_of_the_fill() -> None:
    report = check_prior_fill("video", dataset_options={"n": 8, "frames": 4, "size": 16, "digit_size": 8})
    assert report["batch_shape"] == [4, 4, 1, 16, 16]
