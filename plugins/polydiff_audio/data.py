"""Audio datasets: labelled clips as normalised log-mel spectrograms with a padding mask over time.

State: ``x[1, n_mels, N]`` with N (frames) the variable axis. Clips are trimmed of leading and
trailing silence, peak-normalised, encoded with a :class:`~polydiff_audio.spectrogram.MelCodec` and
padded to ``frames`` (the documented choice: a clip longer than ``frames`` frames keeps its first
``frames``, i.e. ``(frames - 1) * hop`` samples; padded frames are 0 in ``x`` and 0 in the padding
mask, so they count nowhere: not in the noise, the loss, the samples or the metrics).

Loaders that read files print a one-line load summary to stderr (also ``dataset.load_summary``): clips
and classes, files not used and why, files downmixed or resampled, clips cropped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from polydiff import ArrayDataset, Field, StateSpec, report

from .io import (
    READABLE_SUFFIXES,
    AudioError,
    AudioInfo,
    UnreadableAudioError,
    convert_hint,
    peak_normalize,
    read_audio,
    trim_silence,
)
from .plots import remember_codec
from .spectrogram import MelCodec

AUDIO_SUFFIXES = READABLE_SUFFIXES  # what the installed libsndfile reads
CODEC_OPTIONS: dict[str, Any] = {"sample_rate": 8000, "n_fft": 512, "hop": 128, "n_mels": 32, "frames": 64}


class AudioDataset(ArrayDataset):
    """Spectrograms of labelled clips (in memory).

    Attributes:
        codec: how clips became states (decode samples with ``codec.decode``).
        lengths: real frames per clip ``[N]``; class_names: label index -> name.
        cache_key: identifies data and codec (the reference classifier is cached under it).
        waves: the prepared waveforms (trimmed, normalised, cropped) for round-trip references.
        load_summary: one line saying what loading did (clips, classes, what was dropped, downmixed,
            resampled or cropped).
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
        self.load_summary = ""
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
               frames: int, key: str, names: Sequence[str] | None = None, source: str = "",
               notes: Sequence[str] = ()) -> AudioDataset:
    """Prepare (trim, normalise, crop to ``frames``) and encode waveforms at ``codec.sample_rate``.

    With ``source`` (where the clips came from), the one-line load summary (``source``, counts, ``notes``
    on what reading did, clips cropped) is printed to stderr; it is ``dataset.load_summary`` either way."""
    prepared, specs, cropped, padded = [], [], 0, 0
    keep = codec.samples_for(frames)
    for i, w in enumerate(waves):
        w = peak_normalize(trim_silence(w))
        cropped += int(w.shape[-1] > keep)
        padded += int(w.shape[-1] < keep)
        w = w[:keep]
        if w.shape[-1] < codec.n_fft:
            what = names[i] if names is not None else f"clip {i}"
            raise AudioError(f"{what}: {w.shape[-1]} samples after trimming silence, shorter than the "
                             f"{codec.n_fft}-sample window; drop it or lower n_fft")
        prepared.append(w)
        specs.append(codec.encode(w))
    # the resampler is part of the key: clips resampled otherwise are other data (cached classifiers)
    digest = hashlib.sha1(json.dumps([key, repr(codec), frames, "soxr-vhq"]).encode())
    ds = AudioDataset(specs, labels, class_names, codec=codec, frames=frames,
                      cache_key=f"audio-{digest.hexdigest()[:12]}", waves=prepared)
    counts = torch.bincount(ds.labels, minlength=len(class_names)).tolist() if ds.labels is not None else []
    per_class = ", ".join(f"{c}: {k}" for c, k in zip(class_names, counts, strict=True))
    parts = [f"{len(waves)} clips in {len(class_names)} classes ({per_class})", *notes,
             f"silence trimmed at -40 dB, peak-normalised to 0.9, log-mel {codec.n_mels} bands at "
             f"{codec.sample_rate} Hz; {cropped} clips longer than {frames} frames "
             f"({keep / codec.sample_rate:.2f} s) cropped to their start, {padded} shorter ones padded "
             "(padded frames are masked: never noised, trained on or scored)"]
    ds.load_summary = f"{source or 'audio'}: " + "; ".join(parts)
    if source:
        report(f"audio data: {ds.load_summary}")
    return ds


def read_notes(infos: Sequence[AudioInfo], names: Sequence[str]) -> list[str]:
    """What reading did to the files, for the load summary: downmixes and resamplings, counted."""
    notes = []
    multi = [n for n, i in zip(names, infos, strict=True) if i.channels > 1]
    if multi:
        notes.append(f"{len(multi)} multi-channel files downmixed to mono by averaging channels "
                     f"({_first(multi)})")
    rates: dict[tuple[int, int], int] = {}
    for i in infos:
        if i.resampled_to is not None:
            rates[(i.sample_rate, i.resampled_to)] = rates.get((i.sample_rate, i.resampled_to), 0) + 1
    for (a, b), k in sorted(rates.items()):
        notes.append(f"{k} files resampled {a} -> {b} Hz (soxr VHQ)")
    return notes


def _first(names: Sequence[str], k: int = 5) -> str:
    return ", ".join(names[:k]) + (f", ... {len(names) - k} more" if len(names) > k else "")


def load_folder(*, path: str = "", **options: Any) -> AudioDataset:
    """``data.dataset = "folder"``: audio files under ``path/<class>/`` (any format the installed
    libsndfile reads: :data:`AUDIO_SUFFIXES`), labelled by sub-folder name (sorted); files at other
    sample rates are resampled, multi-channel files downmixed. Files that cannot be used (other formats,
    e.g. ``.gsm``; files the decoder rejects: corrupt, truncated or empty, with its reason; nested
    folders; files outside a class folder) are counted and named in the load summary; none usable is
    an error naming what was found, why it could not be read, and how to convert it."""
    if not path:
        raise AudioError("the folder dataset needs a directory: set data.path = 'my_clips' "
                         "(one sub-folder per class holding .wav files)")
    root = Path(path)
    if not root.is_dir():
        raise AudioError(f"{root}: no such directory (data.path must hold one sub-folder per class)")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir())
    files: list[tuple[Path, int]] = []
    other_format: list[Path] = []  # files in class folders that libsndfile cannot read
    misplaced = [f"{f.name} (outside a class folder)" for f in sorted(root.iterdir()) if f.is_file()]
    for k, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.is_dir():
                misplaced.append(f"{c}/{f.name}/ (a nested folder)")
            elif f.suffix.lower() in AUDIO_SUFFIXES:
                files.append((f, k))
            else:
                other_format.append(f)
    codec, frames = codec_of({**CODEC_OPTIONS, **options})
    unused = [f"{f.parent.name}/{f.name}" for f in other_format] + misplaced
    hint = ""
    if other_format:
        kinds = "/".join(sorted({f.suffix.lower() or "(no suffix)" for f in other_format}))
        hint = (f" ({kinds}: not a format the installed libsndfile reads, which are {'/'.join(AUDIO_SUFFIXES)}; "
                f"convert them to WAV, e.g. {convert_hint(other_format[0], codec.sample_rate)})")
    if not files:
        found = f"; found instead: {_first(unused)}{hint}" if unused else ""
        raise AudioError(f"{root}: no usable audio files in class sub-folders (expected {root}/<class>/<clip>.wav)"
                         f"{found}")
    read, used, unreadable, short = [], [], [], []
    for f, k in files:
        name = f"{f.parent.name}/{f.name}"
        try:
            wave, info = read_audio(f, sample_rate=codec.sample_rate)
        except UnreadableAudioError as e:  # counted and named, like a format libsndfile lacks
            unreadable.append(f"{name} ({e.reason})")
            continue
        if (n := trim_silence(wave).shape[-1]) < codec.n_fft:
            short.append(f"{name} ({n} samples after trimming silence)")
            continue
        read.append((wave, info))
        used.append((f, k))
    problems = unreadable + [f"{s} (too short for the {codec.n_fft}-sample window)" for s in short]
    if not used:
        raise AudioError(f"{root}: none of the {len(files)} audio files could be used: {'; '.join(problems)}"
                         f"{'; also not used: ' + _first(unused) + hint if unused else ''}"
                         + (f"; if they play elsewhere, convert them to 16-bit PCM WAV, e.g. "
                            f"{convert_hint(files[0][0], codec.sample_rate)}" if unreadable else "")
                         + ("; record longer clips or lower data.n_fft" if short else ""))
    empty = [c for k, c in enumerate(classes) if all(j != k for _, j in used)]
    if empty:
        why = f"; not usable: {'; '.join(problems)}" if problems else ""
        raise AudioError(f"{root}: class folders with no usable audio file: {', '.join(empty)}{hint}{why}; remove "
                         "them or add clips (each sub-folder is a class)")
    files = used
    notes = read_notes([i for _, i in read], [f"{f.parent.name}/{f.name}" for f, _ in files])
    if short:
        notes.insert(0, f"{len(short)} files too short for the {codec.n_fft}-sample window (data.n_fft), not used: "
                        f"{_first(short)}")
    if unreadable:
        notes.insert(0, f"{len(unreadable)} files unreadable, not used: {_first(unreadable)}")
    if unused:
        notes.insert(0, f"{len(unused)} files not used: {_first(unused)}{hint}")
    stamp = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f, _ in files]
    return from_waves([w for w, _ in read], [k for _, k in files], classes, codec=codec, frames=frames,
                      key=f"folder:{json.dumps(stamp)}", names=[str(f) for f, _ in files], source=f"folder {root}",
                      notes=notes)


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


__all__ = ["AUDIO_SUFFIXES", "CODEC_OPTIONS", "AudioDataset", "codec_of", "from_waves", "load_folder", "load_tones",
           "read_notes"]
