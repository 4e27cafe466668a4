"""Block-autoregressive frame prediction: training windows and the roll-out over longer clips."""

import pytest
import torch

import polydiff
from polydiff.diffusion.data import holdout_split
from polydiff_video.backbone import build_video_unet
from polydiff_video.data import VideoDataError, frame_windows, load_moving_digits
from polydiff_video.metrics import copy_last_frame
from polydiff_video.predict import predict_autoregressive

TINY = {"n": 10, "frames": 5, "size": 16, "digit_size": 8}


@pytest.fixture(scope="module")
def digits():
    return load_moving_digits(**TINY)


def test_frame_windows_are_every_run_of_consecutive_frames_with_labels(digits):
    train, _ = holdout_split(digits, 0.2, seed=0)
    w = frame_windows(train, 3)
    full = train.get_batch(torch.arange(len(train)))
    assert w.x.shape == (len(train) * 3, 3, 1, 16, 16) and w.options["window"] == 3
    for i in range(len(train)):
        for s in range(3):
            assert torch.equal(w.x[3 * i + s], full.x[i, s:s + 3])
            assert w.labels[3 * i + s] == full.cond["label"][i]
    with pytest.raises(VideoDataError, match=r"window length must be in \[2, 5\]"):
        frame_windows(digits, 6)


def shift_last_given(step: float):
    """A conditional 'model' whose hidden frames are the window's latest given frame plus ``step``:
    rolled out, frame ``given + k`` must be frame ``given - 1`` plus ``(k + 1) * step``, which holds
    only if every block sees the frames predicted before it."""

    def denoiser(x, sigma, *, x_cond, cond_mask, **cond):
        given = cond_mask.flatten(2).amax(2) > 0  # [B, T]
        last = int(given[0].nonzero().max())
        return torch.where(cond_mask.bool(), x_cond, x_cond[:, last:last + 1] + step)

    return denoiser


@pytest.mark.parametrize("stride", [1, 2])
def test_roll_out_feeds_each_block_its_earlier_predictions(digits, stride):
    batch = digits.get_batch(torch.arange(3))
    imp = predict_autoregressive(shift_last_given(0.1), batch, given=2, window=3, stride=stride, n_samples=2,
                                 sampler="euler", steps=3, spec=frame_windows(digits, 3).spec)
    assert imp.samples.shape == (3, 2, 5, 1, 16, 16)
    assert torch.equal(imp.samples[:, :, :2], batch.x[:, None, :2].expand(3, 2, 2, 1, 16, 16))
    assert imp.target[:, 2:].eq(1).all() and imp.target[:, :2].eq(0).all() and torch.equal(imp.given, 1 - imp.target)
    base = copy_last_frame(imp).samples[:, 0]  # frame 1 everywhere after the given frames
    if stride == 1:  # frame 2 + k = frame 1 + (k + 1) * 0.1
        expected = torch.cat([base[:, :2], *[base[:, 2 + k:3 + k] + 0.1 * (k + 1) for k in range(3)]], dim=1)
    else:  # blocks of two: frames 2, 3 from frame 1 (+0.1); frame 4 from frame 3 (+0.1)
        expected = torch.cat([base[:, :2], base[:, 2:4] + 0.1, base[:, 4:] + 0.2], dim=1)
    torch.testing.assert_close(imp.samples, expected[:, None].expand_as(imp.samples), atol=1e-5, rtol=0)


def test_roll_out_with_a_real_window_model_samples_distinct_futures(digits):
    windows = frame_windows(digits, 3)
    net = build_video_unet(windows, channels=8, channel_mult="1,2", conditional=True, context=2)
    den = polydiff.Denoiser(net).eval()
    batch = digits.get_batch(torch.arange(2))
    with torch.no_grad():
        imp = predict_autoregressive(den, batch, given=2, window=3, n_samples=2, sampler="euler", steps=2,
                                     spec=windows.spec, seed=1)
    assert imp.samples.shape == (2, 2, 5, 1, 16, 16) and imp.nfe == 3 * 2
    assert torch.equal(imp.samples[:, :, :2], batch.x[:, None, :2].expand(2, 2, 2, 1, 16, 16))
    assert (imp.samples[:, 0, 2:] - imp.samples[:, 1, 2:]).abs().max() > 1e-3  # each sample its own chain


def test_roll_out_rejects_windows_that_do_not_fit(digits):
    batch = digits.get_batch(torch.arange(2))
    with pytest.raises(ValueError, match="given must be in"):
        predict_autoregressive(shift_last_given(0.0), batch, given=1, window=3, sampler="euler", steps=2)
    with pytest.raises(ValueError, match="stride must be in"):
        predict_autoregressive(shift_last_given(0.0), batch, given=2, window=3, stride=3, sampler="euler", steps=2)
