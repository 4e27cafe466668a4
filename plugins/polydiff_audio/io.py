"""Audio files in and out (soundfile) and resampling (soxr), with errors that name the fix.

Resampling uses soxr (libsoxr's "VHQ" polyphase filter), chosen by measurement against the windowed-sinc
resampler torch would need (torchaudio's algorithm and defaults: Hann window, 6 zero crossings, rolloff
0.99), over 22.05 / 16 / 44.1 kHz -> 8 kHz (table in ``docs/plugins/audio.md``): the error on a 1 kHz
tone is -155 dB against -77 dB, on a 3.5 kHz tone -65 dB against -15 dB (the sinc filter's transition
band starts below the new Nyquist), a 6 kHz tone aliases at -159 dB against -55 dB, and it takes
1.5-3x less CPU than torchaudio's implementation.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import soundfile
import soxr
import torch
from torch import Tensor

# file suffix -> libsndfile major format; a suffix is readable when the installed libsndfile has that format
_SUFFIX_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".oga": "OGG", ".opus": "OGG", ".mp3": "MP3",
                   ".aif": "AIFF", ".aiff": "AIFF", ".au": "AU", ".caf": "CAF", ".w64": "W64"}
READABLE_SUFFIXES = tuple(s for s, f in _SUFFIX_FORMATS.items() if f in soundfile.available_formats())
WRITE_PEAK_DBFS = -1.0  # generated clips are peak-normalised to this level, never clipped


class AudioError(ValueError):
    """An audio file or clip that cannot be used, with the reason and the fix in the message."""


class UnreadableAudioError(AudioError):
    """A file that exists but cannot be decoded (corrupt, truncated, empty, or another format than its
    suffix says); ``path`` and ``reason`` (the decoder's, in words) let a folder loader count it."""

    def __init__(self, path: Path, reason: str, fix: str) -> None:
        super().__init__(f"{path}: cannot read it: {reason}; {fix}")
        self.path, self.reason = path, reason


@dataclass(frozen=True)
class AudioInfo:
    """What reading one file did: its native ``sample_rate`` and ``channels``, and the rate it was
    resampled to (``None`` when it was not)."""

    sample_rate: int
    channels: int
    resampled_to: int | None = None


def convert_hint(path: Path, sample_rate: int | None = None) -> str:
    """A shell command that converts ``path`` to mono 16-bit WAV with a tool found on the PATH (sox, then
    ffmpeg); both when neither is installed, with how to install them."""
    out = f"{path.stem}-pcm16.wav" if path.suffix.lower() == ".wav" else f"{path.stem}.wav"
    sox = f"sox {path.name} -b 16 -c 1{f' -r {sample_rate}' if sample_rate else ''} {out}"
    ffmpeg = f"ffmpeg -i {path.name} -ac 1{f' -ar {sample_rate}' if sample_rate else ''} -c:a pcm_s16le {out}"
    if shutil.which("sox"):
        return f"`{sox}`"
    if shutil.which("ffmpeg"):
        return f"`{ffmpeg}`"
    return f"`{sox}` or `{ffmpeg}` (neither is installed: `sudo apt-get install -y sox` installs sox)"


def read_audio(path: str | Path, *, sample_rate: int | None = None, resample: bool = True) -> tuple[Tensor, AudioInfo]:
    """A mono waveform ``[n]`` (float32 in [-1, 1]) and what was done to it, from any file soundfile
    reads (:data:`READABLE_SUFFIXES`).

    Channels are averaged (downmix). With ``sample_rate``, a file at another rate is resampled with
    soxr, or rejected when ``resample=False``.

    Raises:
        AudioError: missing or unreadable file, empty file, or (``resample=False``) a wrong rate.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    fix = f"if it plays elsewhere, convert it to 16-bit PCM WAV, e.g. {convert_hint(path, sample_rate)}"
    if path.stat().st_size == 0:
        raise UnreadableAudioError(path, "an empty file (0 bytes)", "record or copy it again")
    with decoder_messages() as said:
        try:
            data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (soundfile.LibsndfileError, RuntimeError, TypeError) as e:
            error: Exception | None = e
        else:
            error = None
    if error is not None:
        raise UnreadableAudioError(path, decode_failure(path, error, said), fix) from None
    if said:  # a file that decoded, with the decoder's remarks: passed on as they were
        print("\n".join(said), file=sys.stderr)
    if data.shape[0] == 0:
        raise UnreadableAudioError(path, "the file holds no samples", fix)
    info = AudioInfo(sample_rate=int(rate), channels=int(data.shape[1]))
    wave = torch.from_numpy(data).mean(dim=1)
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise AudioError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; resample it "
                             f"(read_wav(..., resample=True) or {convert_hint(path, sample_rate)})")
        wave = resample_wave(wave, int(rate), sample_rate)
        info = AudioInfo(sample_rate=int(rate), channels=info.channels, resampled_to=sample_rate)
    return wave, info


@contextmanager
def decoder_messages() -> Iterator[list[str]]:
    """Collect the lines C decoders (mpg123 inside libsndfile) print on file descriptor 2 meanwhile:
    the decoder's reason for rejecting a file, which libsndfile's own error text does not carry."""
    said: list[str] = []
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to collect
        yield said
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            said.extend(line.strip() for line in sink.read().decode(errors="replace").splitlines() if line.strip())


def decode_failure(path: Path, error: Exception, said: list[str] | tuple[str, ...] = ()) -> str:
    """Why libsndfile could not read the existing file ``path``, in words. For a stream its MP3/OGG
    decoder rejects, libsndfile says "File does not exist or is not a regular file"; that is replaced
    by what it means, with the decoder's first message (``said``) or libsndfile's text in brackets."""
    text = str(getattr(error, "error_string", "") or error).strip().rstrip(".")
    if "does not exist" in text or "not a regular file" in text:
        kind = _SUFFIX_FORMATS.get(path.suffix.lower(), path.suffix.lstrip(".").upper() or "audio")
        first = re.sub(r"^(\[[^]]*\]\s*)?(note|warning):\s*", "", said[0], flags=re.I).rstrip(".") if said else ""
        if kind != "MP3":  # libsndfile tried its MP3 decoder last: its remarks say nothing about a WAV
            first = ""
        why = f"MP3 decoder: '{first}'" if first else f"libsndfile recognises no audio format in it: '{text}'"
        return f"corrupt or truncated {kind} data, or not {kind} at all ({why})"
    return f"libsndfile: {text}"


def read_wav(path: str | Path, *, sample_rate: int | None = None, resample: bool = True) -> Tensor:
    """:func:`read_audio`'s waveform alone."""
    return read_audio(path, sample_rate=sample_rate, resample=resample)[0]


def resample_wave(wave: Tensor, orig: int, new: int) -> Tensor:
    """``wave [..., n]`` from ``orig`` Hz to ``new`` Hz (soxr "VHQ", on the CPU; the result has
    ``ceil(n * new / orig)`` samples, on ``wave``'s device and dtype)."""
    if orig <= 0 or new <= 0:
        raise AudioError(f"sample rates must be positive, got {orig} -> {new} Hz")
    if orig == new:
        return wave
    flat = wave.detach().reshape(-1, wave.shape[-1]).to("cpu", torch.float64).numpy()
    out = torch.stack([torch.from_numpy(soxr.resample(row, orig, new, quality="VHQ")) for row in flat])
    return out.reshape(*wave.shape[:-1], out.shape[-1]).to(wave.device, wave.dtype)


def write_wav(path: str | Path, wave: Tensor, sample_rate: int, *, peak_dbfs: float | None = None) -> Path:
    """Write ``wave [n]`` as 16-bit PCM mono WAV.

    With ``peak_dbfs`` (e.g. :data:`WRITE_PEAK_DBFS`), the clip is scaled so its largest sample sits at
    that level (silence stays silence); without, it must already lie in [-1, 1]: nothing is clipped.

    Raises:
        AudioError: a non-finite sample, ``peak_dbfs > 0``, or (without ``peak_dbfs``) a sample beyond +-1.
    """
    data = wave.detach().to("cpu", torch.float64).reshape(-1)
    if not torch.isfinite(data).all():
        raise AudioError(f"{path}: the waveform holds non-finite samples; nothing written")
    peak = float(data.abs().max()) if data.numel() else 0.0
    if peak_dbfs is not None:
        if peak_dbfs > 0:
            raise AudioError(f"peak_dbfs must be <= 0 dBFS (full scale), got {peak_dbfs}")
        if peak > 0:
            data = data * (10 ** (peak_dbfs / 20) / peak)
    elif peak > 1:
        raise AudioError(f"{path}: peak {peak:.3f} ({20 * math.log10(peak):+.1f} dBFS) would clip; scale the clip "
                         f"or pass peak_dbfs={WRITE_PEAK_DBFS} to peak-normalise it")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), data.numpy(), sample_rate, subtype="PCM_16")
    return path


def trim_silence(wave: Tensor, *, threshold_db: float = -40.0, frame: int = 128) -> Tensor:
    """``wave`` without leading and trailing frames quieter than ``threshold_db`` below its loudest frame
    (recordings and espeak-ng output carry silence of varying length around the word)."""
    n = wave.shape[-1] // frame
    if n == 0:
        return wave
    energy = wave[: n * frame].reshape(n, frame).pow(2).mean(dim=1)
    loud = (10 * torch.log10(energy.clamp_min(1e-12) / energy.max().clamp_min(1e-12)) > threshold_db).nonzero()
    if len(loud) == 0:
        return wave
    return wave[int(loud[0]) * frame:(int(loud[-1]) + 1) * frame]


def peak_normalize(wave: Tensor, peak: float = 0.9) -> Tensor:
    """Scale so the largest absolute sample is ``peak`` (loudness differs between recordings)."""
    m = wave.abs().max()
    return wave if m == 0 else wave * (peak / m)


__all__ = ["READABLE_SUFFIXES", "WRITE_PEAK_DBFS", "AudioError", "AudioInfo", "UnreadableAudioError", "convert_hint",
           "decode_failure", "decoder_messages", "peak_normalize", "read_audio", "read_wav", "resample_wave",
           "trim_silence", "write_wav"]
