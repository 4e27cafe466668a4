"""What ``polydiff impute`` writes for audio (``ModalitySpec.save_imputation``): WAVs to listen to,
per clip (the first 8) the completed clip (the first sample: given frames kept, gaps or the
continuation filled) and the true clip, both through the same Griffin-Lim decoder and
peak-normalised to :data:`~polydiff_audio.io.WRITE_PEAK_DBFS` dBFS, so they compare fairly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polydiff.diffusion import Imputation

from .io import WRITE_PEAK_DBFS, write_wav
from .metrics import audio_root
from .plots import codec_for, real_frames

MAX_CLIPS = 8


def save_imputation(imp: Imputation, dataset: Any, stem: Path) -> list[Path]:
    """``stem-clip<i>.wav`` (completed) and ``stem-clip<i>-truth.wav``; returns their paths."""
    try:
        codec = audio_root(dataset).codec
    except (TypeError, ValueError, AttributeError):  # not an audio dataset: the codec of the data's shape
        codec = codec_for(int(imp.truth.shape[2]))
    k = min(len(imp), MAX_CLIPS)
    pad = None if imp.padding is None else imp.padding[:k]
    paths: list[Path] = []
    for i, (filled, truth) in enumerate(zip(real_frames(imp.samples[:k, 0], pad), real_frames(imp.truth[:k], pad),
                                            strict=True)):
        for suffix, spec in (("", filled), ("-truth", truth)):
            paths.append(write_wav(Path(f"{stem}-clip{i:02d}{suffix}.wav"), codec.decode(spec, seed=i),
                                   codec.sample_rate, peak_dbfs=WRITE_PEAK_DBFS))
    return paths


__all__ = ["MAX_CLIPS", "save_imputation"]
