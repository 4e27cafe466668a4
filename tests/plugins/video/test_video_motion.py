"""Global-motion extrapolation: translations, shift estimation, extrapolated frames."""

import torch

from polydiff_video.motion import extrapolated_frames, global_shift, translate


def test_translate_moves_content_and_fills_black():
    img = torch.arange(16.0).reshape(1, 1, 4, 4).repeat(2, 1, 1, 1)
    out = translate(img, torch.tensor([[1, 2], [-1, 0]]))
    assert torch.equal(out[0, 0, 1:, 2:], img[0, 0, :3, :2]) and out[0, 0, 0].abs().sum() == 0
    assert out[0, 0, :, :2].abs().sum() == 0
    assert torch.equal(out[1, 0, :3], img[1, 0, 1:]) and out[1, 0, 3].abs().sum() == 0


def test_global_shift_recovers_a_rigid_motion():
    g = torch.Generator().manual_seed(0)
    blob = torch.zeros(5, 1, 12, 12)
    blob[:, :, 4:8, 4:8] = torch.rand(5, 1, 4, 4, generator=g) + 0.5
    shifts = torch.tensor([[0, 0], [2, -1], [-3, 3], [1, 1], [0, -2]])
    assert torch.equal(global_shift(blob, translate(blob, shifts), 3), shifts)


def test_extrapolated_frames_continue_a_constant_velocity():
    t, v = 6, torch.tensor([[1, 2]])
    frame = torch.zeros(1, 1, 16, 16)
    frame[:, :, 2:6, 1:5] = 1.0
    clip = torch.stack([translate(frame, v * k) for k in range(t)], dim=1) * 2 - 1  # [1, T, 1, 16, 16] in [-1, 1]
    mask = torch.zeros_like(clip)
    mask[:, :2] = 1
    moved, valid = extrapolated_frames(clip * mask, mask, 3)
    assert valid.tolist() == [[False, False, True, True, True, True]]
    torch.testing.assert_close(moved[:, 2:], clip[:, 2:])  # frame t = frame 1 moved by (t - 1) v
    assert moved[:, :2].eq(-1).all()  # fewer than two given frames before: black
    # given frames 0 and 2 (a gap of two): the velocity is half their shift; frame 3 follows frame 2
    gap = torch.zeros_like(clip)
    gap[:, [0, 2]] = 1
    moved, valid = extrapolated_frames(clip * gap, gap, 4)
    assert valid.tolist() == [[False, False, False, True, True, True]]
    torch.testing.assert_close(moved[:, 3:], clip[:, 3:])
