"""Video metrics and baselines on clips with known answers."""

import math

import pytest
import torch

from polydiff import Batch
from polydiff.diffusion.imputation import Imputation
from polydiff_video.data import load_moving_digits
from polydiff_video.masks import future_frames, middle_frames
from polydiff_video.metrics import (
    centroid_error,
    centroids,
    classifier_of,
    copy_last_frame,
    digit_identity,
    digit_identity_by_frame,
    frame_diff_w1,
)


@pytest.fixture(scope="module")
def digits():
    return load_moving_digits(n=8, frames=5, size=16, digit_size=8, speed=2.0)


def _imputation(truth, target, samples):
    given = 1 - target
    return Imputation(samples=samples, truth=truth, given=given, target=target)


def test_centroid_of_a_dot_is_its_position():
    x = -torch.ones(1, 1, 6, 7)
    x[0, 0, 2, 5] = 1.0
    assert torch.allclose(centroids(x), torch.tensor([[2.0, 5.0]]), atol=1e-4)
    assert torch.allclose(centroids(-torch.ones(1, 6, 7)), torch.tensor([2.5, 3.0]))  # empty: the middle


def test_centroid_error_measures_a_shift(digits):
    truth = digits.x[:4]
    target = future_frames(torch.ones_like(truth), torch.Generator(), given=2)
    assert centroid_error(_imputation(truth, target, truth[:, None]), digits) == 0.0
    # digits of size 8 in a 16 canvas never touch the far wall after a shift to the canvas' corner
    moved = -torch.ones_like(truth)
    moved[..., 2:, 3:] = truth[..., :-2, :-3]
    mass = ((truth + 1) / 2).sum((-3, -2, -1))
    kept = ((moved + 1) / 2).sum((-3, -2, -1))
    err = centroid_error(_imputation(truth, target, moved[:, None]), digits)
    if torch.allclose(mass, kept):  # nothing was cut off: the error is exactly the shift
        assert err == pytest.approx(math.hypot(2, 3), abs=1e-3)
    else:
        assert err > 1.0


def test_copy_last_frame_repeats_the_latest_given_frame(digits):
    truth = digits.x[:3]
    fut = copy_last_frame(_imputation(truth, future_frames(torch.ones_like(truth), torch.Generator(), given=2),
                                      truth[:, None]))
    assert fut.samples.shape == (3, 1, 5, 1, 16, 16)
    assert torch.equal(fut.samples[:, 0, :2], truth[:, :2])
    assert all(torch.equal(fut.samples[:, 0, t], truth[:, 1]) for t in range(2, 5))
    mid = copy_last_frame(_imputation(truth, middle_frames(torch.ones_like(truth), torch.Generator(), given=1),
                                      truth[:, None]))
    assert torch.equal(mid.samples[:, 0, 3], truth[:, 0]) and torch.equal(mid.samples[:, 0, 4], truth[:, 4])


def test_frame_diff_w1_is_zero_on_data_and_catches_frozen_clips(digits):
    assert frame_diff_w1(digits.get_batch(torch.arange(8)), digits) == 0.0
    frozen = digits.x[:, :1].expand_as(digits.x).contiguous()
    assert frame_diff_w1(Batch(x=frozen), digits) > 0.01


def test_digit_identity_needs_labels_and_scores_frames(digits):
    truth = digits.x[:4]
    target = future_frames(torch.ones_like(truth), torch.Generator(), given=2)
    imp = _imputation(truth, target, truth[:, None])
    assert math.isnan(digit_identity(imp, digits))  # the imputation carries no labels
    imp.cond["label"] = digits.labels[:4]
    value = digit_identity(imp, digits)
    assert 0.0 <= value <= 1.0
    by_frame = digit_identity_by_frame(imp, digits)
    assert len(by_frame) == 3 and sum(by_frame) / 3 == pytest.approx(value)  # frames 2, 3, 4; equal counts
    # labels the classifier gives frame 2, then blank frames: per frame, exactly what it says there
    clf = classifier_of(digits)
    blank = truth[:, None].clone()
    blank[:, :, 3:] = -1
    gone = _imputation(truth, target, blank)
    gone.cond["label"] = clf.predict(truth[:, 2])
    blank_hits = float((clf.predict(blank[:, 0, 3]) == gone.cond["label"]).float().mean())
    assert digit_identity_by_frame(gone, digits) == pytest.approx([1.0, blank_hits, blank_hits])
    with pytest.raises(ValueError, match="no target frames"):
        centroid_error(_imputation(truth, torch.zeros_like(truth), truth[:, None]), digits)
