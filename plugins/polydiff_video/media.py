"""What ``polydiff impute`` writes for video (``ModalitySpec.save_imputation``): one looping GIF per
clip (the first 16), the true clip on the left and the first sample on the right, hidden frames
outlined, so predicted motion can be watched, not only read off a strip."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from polydiff.diffusion import Imputation

from .plots import save_gif

MAX_CLIPS = 16


def side_by_side(imp: Imputation, i: int, sample: int = 0) -> torch.Tensor:
    """``[T, C, H, 2W + 1]`` in [-1, 1]: truth | sample ``sample`` of clip ``i``, with a white line
    between them and a white border around the hidden frames of the sample."""
    truth, pred = imp.truth[i], imp.samples[i, sample]
    hidden = imp.target[i].flatten(1).amax(1) > 0  # [T]
    pred = pred.clone()
    pred[hidden, :, 0, :] = pred[hidden, :, -1, :] = 1.0
    pred[hidden, :, :, 0] = pred[hidden, :, :, -1] = 1.0
    line = torch.ones_like(truth[..., :1])
    return torch.cat([truth, line, pred], dim=-1)


def save_imputation(imp: Imputation, dataset: Any, stem: Path, *, fps: float = 4.0) -> list[Path]:
    """``stem-clip<i>.gif`` for the first :data:`MAX_CLIPS` clips; returns their paths."""
    return [save_gif(side_by_side(imp, i), Path(f"{stem}-clip{i:02d}.gif"), fps=fps)
            for i in range(min(len(imp), MAX_CLIPS))]


__all__ = ["MAX_CLIPS", "save_imputation", "side_by_side"]
