"""WAV files in and out (soundfile) and resampling (torchaudio), with errors that name the fix."""

from __future__ import annotations

from pathlib import Path

import soundfile
import torch
import torchaudio.functional as AF
from torch import Tensor


class AudioError(ValueError):
    """An audio file or clip that cannot be used, with the reason and the fix in the message."""


def read_wav(path: str | Path, *, sample_rate: int | None = None, resample: bool = True) -> Tensor:
    """A mono waveform ``[n]`` (float32 in [-1, 1]) from any file soundfile reads (WAV, FLAC, OGG).

    Channels are averaged. With ``sample_rate``, a file at another rate is resampled with
    torchaudio's windowed-sinc resampler, or rejected when ``resample=False``.

    Raises:
        AudioError: missing or unreadable file, empty file, or (``resample=False``) a wrong rate.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise AudioError(f"{path}: not a readable audio file ({e}); convert it to 16-bit PCM WAV, e.g. "
                         f"`ffmpeg -i {path.name} -ac 1 out.wav`") from None
    if data.shape[0] == 0:
        raise AudioError(f"{path}: the file holds no samples")
    wave = torch.from_numpy(data).mean(dim=1)
    if sample_rate is not None and rate != sample_rate:
        if not resample:
            raise AudioError(f"{path}: sample rate {rate} Hz, expected {sample_rate} Hz; resample it "
                             f"(read_wav(..., resample=True) or `sox {path.name} -r {sample_rate} out.wav`)")
        wave = resample_wave(wave, rate, sample_rate)
    return wave


def resample_wave(wave: Tensor, orig: int, new: int) -> Tensor:
    """``wave [..., n]`` from ``orig`` Hz to ``new`` Hz (torchaudio's band-limited sinc interpolation)."""
    if orig <= 0 or new <= 0:
        raise AudioError(f"sample rates must be positive, got {orig} -> {new} Hz")
    return wave if orig == new else AF.resample(wave, orig, new)


def write_wav(path: str | Path, wave: Tensor, sample_rate: int) -> Path:
    """Write ``wave [n]`` (clipped to [-1, 1]) as 16-bit PCM mono WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = wave.detach().float().cpu().reshape(-1).clamp(-1, 1).numpy()
    soundfile.write(str(path), data, sample_rate, subtype="PCM_16")
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


__all__ = ["AudioError", "peak_normalize", "read_wav", "resample_wave", "trim_silence", "write_wav"]
