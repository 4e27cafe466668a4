"""Spectrogram maths on torch alone (any torch >= 2.4, no torchaudio): mel filterbank, mel power
spectrogram, inverse mel scale, Griffin-Lim, and a windowed-sinc resampler.

Each function computes what the torchaudio function of the same role computes, with the same defaults
(Slaney mel scale and area norm, centred reflect-padded periodic-Hann STFT, Griffin-Lim with
Perraudin et al.'s fast momentum), so spectrograms agree with torchaudio's to float32 rounding;
``tests/plugins/audio/test_torchaudio_agreement.py`` checks it wherever torchaudio loads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Slaney's Auditory Toolbox mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above.
_F_SP, _MIN_LOG_HZ, _LOGSTEP = 200.0 / 3, 1000.0, math.log(6.4) / 27.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP


def hz_to_mel(hz: float) -> float:
    """Slaney mel of a frequency in Hz."""
    return hz / _F_SP if hz < _MIN_LOG_HZ else _MIN_LOG_MEL + math.log(hz / _MIN_LOG_HZ) / _LOGSTEP


def mel_to_hz(mels: Tensor) -> Tensor:
    """Frequencies in Hz of Slaney mels (the inverse of :func:`hz_to_mel`)."""
    return torch.where(mels >= _MIN_LOG_MEL, _MIN_LOG_HZ * torch.exp(_LOGSTEP * (mels - _MIN_LOG_MEL)), _F_SP * mels)


def mel_filterbank(*, n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0,
                   f_max: float | None = None) -> Tensor:
    """Triangular filters ``[n_freqs, n_mels]`` (``mel = linear_power^T @ fb``) with Slaney's area
    norm ``2 / (f_right - f_left)``, on frequencies ``linspace(0, sample_rate // 2, n_freqs)``."""
    f_max = float(sample_rate // 2) if f_max is None else f_max
    freqs = torch.linspace(0, sample_rate // 2, n_freqs)
    f_pts = mel_to_hz(torch.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts[None, :] - freqs[:, None]  # [n_freqs, n_mels + 2]
    down, up = -slopes[:, :-2] / f_diff[:-1], slopes[:, 2:] / f_diff[1:]
    fb = torch.clamp_min(torch.minimum(down, up), 0.0)
    return fb * (2.0 / (f_pts[2:] - f_pts[:-2]))[None, :]


def power_spectrogram(wave: Tensor, *, n_fft: int, hop: int) -> Tensor:
    """``[..., n]`` -> ``|STFT|^2`` ``[..., n_fft/2 + 1, 1 + n // hop]`` (periodic Hann window of
    ``n_fft`` samples, centred frames, reflect padding)."""
    flat = wave.reshape(-1, wave.shape[-1])
    window = torch.hann_window(n_fft, device=wave.device, dtype=flat.dtype)
    spec = torch.stft(flat, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
    return spec.abs().pow(2.0).reshape(*wave.shape[:-1], *spec.shape[-2:])


def mel_spectrogram(wave: Tensor, fb: Tensor, *, n_fft: int, hop: int) -> Tensor:
    """``[..., n]`` -> mel power ``[..., n_mels, frames]`` through the filterbank ``fb [freq, n_mels]``."""
    return torch.matmul(power_spectrogram(wave, n_fft=n_fft, hop=hop).transpose(-1, -2), fb).transpose(-1, -2)


def inverse_mel(mel: Tensor, fb: Tensor) -> Tensor:
    """Minimum-norm least-squares linear power ``[..., freq, frames]`` with ``fb^T @ spec = mel``,
    clipped at 0 (torchaudio's ``InverseMelScale``)."""
    flat = mel.reshape(-1, *mel.shape[-2:])
    spec = torch.relu(torch.linalg.lstsq(fb.T[None], flat, driver="gels").solution)
    return spec.reshape(*mel.shape[:-2], fb.shape[0], mel.shape[-1])


def griffin_lim(power: Tensor, *, n_fft: int, hop: int, n_iter: int, momentum: float = 0.99,
                generator: torch.Generator | None = None) -> Tensor:
    """Waveform ``[..., samples]`` whose STFT magnitude approaches ``sqrt(power)`` ``[..., freq, frames]``
    (Griffin & Lim 1984; fast momentum, Perraudin et al. 2013). The initial phases are drawn from
    ``generator`` (a CPU generator; the global one when None) exactly as torchaudio draws them on the
    CPU, so a seed gives the same phases on every device."""
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    alpha = momentum / (1 + momentum)
    flat = power.reshape(-1, *power.shape[-2:])
    magnitude = flat.pow(0.5)
    window = torch.hann_window(n_fft, device=power.device, dtype=power.dtype)
    complex_dtype = torch.complex128 if power.dtype == torch.float64 else torch.complex64
    angles = torch.rand(flat.shape, dtype=complex_dtype, generator=generator).to(power.device)
    previous = torch.zeros((), dtype=power.dtype, device=power.device)
    for _ in range(n_iter):
        wave = torch.istft(magnitude * angles, n_fft, hop, window=window)
        rebuilt = torch.stft(wave, n_fft, hop, window=window, center=True, pad_mode="reflect", return_complex=True)
        angles = rebuilt - alpha * previous if alpha else rebuilt
        angles = angles / (angles.abs() + 1e-16)
        previous = rebuilt
    wave = torch.istft(magnitude * angles, n_fft, hop, window=window)
    return wave.reshape(*power.shape[:-2], wave.shape[-1])
