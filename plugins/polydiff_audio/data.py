"""Audio datasets: labelled clips as normalised log-mel spectrograms with a padding mask over time.

State: ``x[1, n_mels, N]`` with N (frames) the variable axis. Clips are trimmed of leading and
trailing silence, peak-normalised, encoded with a :class:`~polydiff_audio.spectrogram.MelCodec` and
padded to ``frames`` (the documented choice: a clip longer than ``frames`` frames keeps its first
``frames``, i.e. ``(frames - 1) * hop`` samples; padded frames are 0 in ``x`` and 0 in the padding
mask, so they count nowhere: not in the noise, the loss, the samples or the metrics).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff import ArrayDataset, Field, StateSpec

from .io import AudioError, peak_normalize, read_wav, trim_silence
from .plots import remember_codec
from .spectrogram import MelCodec

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
CODEC_OPTIONS: dict[str, Any] = {"sample_rate": 8000, "n_fft": 512, "hop": 128, "n_mels": 32, "frames": 64}


class AudioDataset(ArrayDataset):
    """Spectrograms of labelled clips (in memory).

    Attributes:
        codec: how clips became states (decode samples with ``codec.decode``).
        lengths: real frames per clip ``[N]``; class_names: label index -> name.
        cache_key: identifies data and codec (the reference classifier is cached under it).
        waves: the prepared waveforms (trimmed, normalised, cropped) for round-trip references.
    """

    def __init__(self, specs: list[Tensor], labels: Sequence[int], class_names: Sequence[str], *,
                 codec: MelCodec, frames: int, cache_key: str, waves: list[Tensor] | None = None) -> None:
        if not specs:
            raise AudioError("no clips to build an audio dataset from")
        if frames < 4:
            raise ValueError(f"frames must be >= 4, got {frames}")
        lengths = torch.tensor([min(s.shape[-1], frames) for s in specs])
        x = torch.zeros(len(specs), 1, codec.n_mels, frames)
        for i, s in enumerate(specs):
            x[i, 0, :, : lengths[i]] = s[:, : lengths[i]]
        spec = StateSpec((Field("x", (1, codec.n_mels, None)),))
        super().__init__(spec, x, padding=spec.padding_mask(lengths, frames),
                         labels=torch.as_tensor(list(labels)), num_classes=len(class_names))
        self.codec, self.lengths, self.class_names = codec, lengths, list(class_names)
        self.cache_key, self.waves = cache_key, waves
        remember_codec(codec)

    def denormalize(self, x: Tensor) -> Tensor:
        """State -> log-mel power in dB (the core's imputation metrics then report in dB)."""
        return self.codec.to_db(x)

    def silence_filled(self, x: Tensor, padding: Tensor | None) -> Tensor:
        """``x`` with padded frames set to silence (-1): what a classifier or a plot should see."""
        return x if padding is None else x * padding - (1 - padding)

    def __repr__(self) -> str:
        return (f"AudioDataset({self.spec!r}, n={len(self)}, classes={self.num_classes}, "
                f"{self.codec.sample_rate} Hz, {self.codec.frame_ms:g} ms/frame)")


def codec_of(options: dict[str, Any]) -> tuple[MelCodec, int]:
    return (MelCodec(sample_rate=int(options["sample_rate"]), n_fft=int(options["n_fft"]), hop=int(options["hop"]),
                     n_mels=int(options["n_mels"])), int(options["frames"]))


def from_waves(waves: list[Tensor], labels: Sequence[int], class_names: Sequence[str], *, codec: MelCodec,
               frames: int, key: str, names: Sequence[str] | None = None) -> AudioDataset:
    """Prepare (trim, normalise, crop to ``frames``) and encode waveforms at ``codec.sample_rate``."""
    prepared, specs = [], []
    for i, w in enumerate(waves):
        w = peak_normalize(trim_silence(w))[: codec.samples_for(frames)]
        if w.shape[-1] < codec.n_fft:
            what = names[i] if names is not None else f"clip {i}"
            raise AudioError(f"{what}: {w.shape[-1]} samples after trimming silence, shorter than the "
                             f"{codec.n_fft}-sample window; drop it or lower n_fft")
        prepared.append(w)
        specs.append(codec.encode(w))
    digest = hashlib.sha1(json.dumps([key, repr(codec), frames]).encode())
    return AudioDataset(specs, labels, class_names, codec=codec, frames=frames,
                        cache_key=f"audio-{digest.hexdigest()[:12]}", waves=prepared)


def load_folder(*, path: str = "", **options: Any) -> AudioDataset:
    """``data.dataset = "folder"``: audio files under ``path/<class>/*.wav`` (also FLAC, OGG), labelled
    by sub-folder name (sorted); files at other sample rates are resampled."""
    if not path:
        raise AudioError("the folder dataset needs a directory: set data.path = 'my_clips' "
                         "(one sub-folder per class holding .wav files)")
    root = Path(path)
    if not root.is_dir():
        raise AudioError(f"{root}: no such directory (data.path must hold one sub-folder per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files = [(f, k) for k, c in enumerate(classes) for f in sorted((root / c).iterdir())
             if f.suffix.lower() in AUDIO_SUFFIXES]
    if not files:
        raise AudioError(f"{root}: found no {'/'.join(AUDIO_SUFFIXES)} files in sub-folders; expected "
                         f"{root}/<class>/<clip>.wav")
    codec, frames = codec_of({**CODEC_OPTIONS, **options})
    waves = [read_wav(f, sample_rate=codec.sample_rate) for f, _ in files]
    stamp = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f, _ in files]
    return from_waves(waves, [k for _, k in files], classes, codec=codec, frames=frames,
                      key=f"folder:{json.dumps(stamp)}", names=[str(f) for f, _ in files])


def load_tones(*, n: int = 400, classes: int = 4, seed: int = 0, **options: Any) -> AudioDataset:
    """A synthetic corpus generated from ``seed`` (no files needed; tests and the default dataset):
    harmonic tones whose pitch contour is the class (rising, falling, rise-fall, fall-rise, then
    faster wobbles), with random base pitch (120-400 Hz), duration (0.3-0.9 s), loudness and noise."""
    codec, frames = codec_of({**CODEC_OPTIONS, **options})
    if not 1 <= classes <= 8:
        raise ValueError(f"tones: classes must be in [1, 8], got {classes}")
    g = torch.Generator().manual_seed(seed)
    sr, waves, labels = codec.sample_rate, [], []
    for i in range(n):
        k = i % classes
        dur = 0.3 + 0.6 * float(torch.rand((), generator=g))
        t = torch.arange(int(dur * sr)) / sr
        u = t / dur
        shape = [u, 1 - u, 1 - (2 * u - 1).abs(), (2 * u - 1).abs(), *[torch.sin(2 * torch.pi * (j + 1) * u)
                                                                        for j in range(4)]][k]
        f0 = (120 + 280 * float(torch.rand((), generator=g))) * (1 + 0.5 * shape)
        phase = 2 * torch.pi * torch.cumsum(f0, 0) / sr
        wave = sum(torch.sin(h * phase) / h for h in (1, 2, 3))
        envelope = torch.sin(torch.pi * u).clamp_min(0) ** 0.5
        noise = 0.02 * torch.randn(t.shape, generator=g)
        waves.append((wave * envelope + noise) * (0.2 + 0.8 * float(torch.rand((), generator=g))))
        labels.append(k)
    names = ["rise", "fall", "rise_fall", "fall_rise", "wobble1", "wobble2", "wobble3", "wobble4"][:classes]
    return from_waves(waves, labels, names, codec=codec, frames=frames, key=f"tones:{n}:{classes}:{seed}")


__all__ = ["AUDIO_SUFFIXES", "CODEC_OPTIONS", "AudioDataset", "codec_of", "from_waves", "load_folder", "load_tones"]
