"""The audio prior fill: hidden frames of a log-mel spectrogram linearly interpolated along time per band."""

from __future__ import annotations

import numpy as np
import torch

from polydiff import plugins
from polydiff.testing import check_prior_fill


def test_hidden_frames_are_the_line_between_the_given_frames_in_every_band() -> None:
    fill = plugins.get_modality("audio").prior_fill
    assert fill is not None
    rng = np.random.default_rng(0)
    x = torch.tensor(rng.normal(size=(2, 1, 8, 20)))
    given = torch.ones_like(x)
    given[..., 6:11] = 0  # a gap of 5 frames between frames 5 and 11
    given[1, ..., 17:] = 0  # the end of the clip hidden: held at the last given frame
    out = fill(x * given, given)
    w = torch.arange(1, 6, dtype=x.dtype) / 6
    line = x[..., 5:6] + (x[..., 11:12] - x[..., 5:6]) * w
    assert torch.allclose(out[..., 6:11], line, atol=1e-12)
    assert torch.equal(out[1, ..., 17:], x[1, ..., 16:17].expand(-1, -1, 3))
    assert torch.equal(out[given > 0], x[given > 0])


def test_conformance_of_the_fill() -> None:
    report = check_prior_fill("audio", dataset_options={"n": 8})
    assert report["batch_shape"][:3] == [4, 1, 32]
