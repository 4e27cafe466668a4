"""Waveform <-> normalised log-mel spectrogram (torch only), and spectral distances.

The diffused state is a log-mel power spectrogram ``[1, n_mels, frames]`` mapped linearly from
``[db_min, db_max]`` dB to ``[-1, 1]`` (values outside are clipped: -1 is silence). Back to sound: the
minimum-norm least-squares inverse of the mel filterbank, refined to non-negative least squares, then
Griffin-Lim (Griffin & Lim 1984, with Perraudin et al.'s momentum), whose phase initialisation is seeded,
so decoding is reproducible. The maths is in :mod:`.dsp` (``torch.stft`` / ``torch.istft``); it computes
what torchaudio's ``MelSpectrogram``, ``InverseMelScale`` and ``GriffinLim`` compute, and a test checks
the two agree wherever torchaudio loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch
from torch import Tensor

from . import dsp
from .io import AudioError


@dataclass(frozen=True, kw_only=True)
class MelCodec:
    """How waveforms become states and back.

    Args:
        sample_rate: Hz of the waveforms (8000: the Asterisk prompts' rate; speech up to 4 kHz).
        n_fft: FFT and window length in samples (512 at 8 kHz: 64 ms).
        hop: samples between frames (128: 16 ms, 75% overlap, which Griffin-Lim needs).
        n_mels: mel bands (Slaney scale and norm).
        db_min, db_max: the dB range mapped to [-1, 1]; chosen for peak-normalised clips
            (see :func:`~polydiff_audio.io.peak_normalize`), louder or quieter bins are clipped.
        griffin_lim_iters: Griffin-Lim iterations when decoding.
        nnls_iters: non-negative least-squares refinements of the inverse mel solution (the
            minimum-norm least squares, clipped at 0, misses about 20% of the mel power of 32 bands;
            100 multiplicative updates, Lee & Seung 2001, bring that to about 3%).
    """

    sample_rate: int = 8000
    n_fft: int = 512
    hop: int = 128
    n_mels: int = 32
    db_min: float = -70.0
    db_max: float = 30.0
    griffin_lim_iters: int = 64
    nnls_iters: int = 100

    def __post_init__(self) -> None:
        if self.hop < 1 or self.hop > self.n_fft:
            raise ValueError(f"hop must be in [1, n_fft = {self.n_fft}], got {self.hop}")
        if self.n_mels < 2 or self.n_mels > self.n_fft // 2 + 1:
            raise ValueError(f"n_mels must be in [2, n_fft/2 + 1 = {self.n_fft // 2 + 1}], got {self.n_mels}")
        if self.db_max <= self.db_min:
            raise ValueError(f"db_max ({self.db_max}) must exceed db_min ({self.db_min})")

    @property
    def frame_ms(self) -> float:
        """Milliseconds per frame (what a ``time_gap`` mask counts in)."""
        return 1000.0 * self.hop / self.sample_rate

    def frames_for(self, samples: int) -> int:
        """Frames of a clip of ``samples`` samples (centred STFT: ``1 + samples // hop``)."""
        return 1 + samples // self.hop

    def samples_for(self, frames: int) -> int:
        return (frames - 1) * self.hop

    @cached_property
    def filterbank(self) -> Tensor:
        """Slaney-scale, Slaney-normalised mel filters ``[n_fft/2 + 1, n_mels]``."""
        return dsp.mel_filterbank(n_freqs=self.n_fft // 2 + 1, n_mels=self.n_mels, sample_rate=self.sample_rate)

    # -- waveform <-> normalised log-mel ------------------------------------------------------
    def mel_power(self, wave: Tensor) -> Tensor:
        """``[..., n]`` -> mel power ``[..., n_mels, frames]``."""
        if wave.shape[-1] < self.n_fft:
            raise AudioError(f"clip of {wave.shape[-1]} samples ({1000 * wave.shape[-1] / self.sample_rate:.0f} ms) "
                             f"is shorter than the {self.n_fft}-sample analysis window; use longer clips or a "
                             "smaller codec n_fft")
        fb = self.filterbank.to(wave.device)
        return dsp.mel_spectrogram(wave.float(), fb, n_fft=self.n_fft, hop=self.hop)

    def to_db(self, x: Tensor) -> Tensor:
        """Normalised state -> dB (the inverse of :meth:`normalize`, inside the range)."""
        return (x.clamp(-1, 1) + 1) / 2 * (self.db_max - self.db_min) + self.db_min

    def normalize(self, db: Tensor) -> Tensor:
        return ((db.clamp(self.db_min, self.db_max) - self.db_min) / (self.db_max - self.db_min) * 2 - 1)

    def encode(self, wave: Tensor) -> Tensor:
        """Waveform ``[..., n]`` -> state ``[..., n_mels, frames]`` in [-1, 1]."""
        return self.normalize(10 * torch.log10(self.mel_power(wave).clamp_min(1e-10)))

    def decode(self, x: Tensor, *, seed: int = 0) -> Tensor:
        """State ``[..., n_mels, frames]`` -> waveform ``[..., samples_for(frames)]`` (Griffin-Lim,
        phase initialised from ``seed``)."""
        power = torch.pow(10.0, self.to_db(x.float()) / 10)
        power = torch.where(x <= -1, torch.zeros_like(power), power)  # the clipped floor is silence
        fb = self.filterbank.to(x.device).T  # [n_mels, freq]: mel = fb @ linear
        spec = dsp.inverse_mel(power, fb.T) + 1e-6 * power.mean()  # > 0, or multiplicative updates stay at 0
        target = fb.T @ power
        for _ in range(self.nnls_iters):
            spec = spec * target / (fb.T @ (fb @ spec)).clamp_min(1e-20)
        wave = dsp.griffin_lim(spec, n_fft=self.n_fft, hop=self.hop, n_iter=self.griffin_lim_iters,
                               generator=torch.Generator().manual_seed(seed))
        return wave[..., : self.samples_for(x.shape[-1])]


# ---- distances between spectrograms ------------------------------------------------------------

def stft_power(wave: Tensor, codec: MelCodec) -> Tensor:
    """Linear-frequency power ``[..., n_fft/2 + 1, frames]`` with the codec's window and hop."""
    return dsp.power_spectrogram(wave.float(), n_fft=codec.n_fft, hop=codec.hop)


def log_spectral_distance(ref: Tensor, est: Tensor, *, mask: Tensor | None = None, floor: float = 1e-10) -> float:
    """LSD in dB between power spectrograms ``[..., F, frames]``: per frame the RMS over frequency of
    ``10 log10(P_ref / P_est)``, averaged over frames (Gray & Markel 1976). ``mask`` (same shape)
    restricts both means to its entries; frames with no masked entry do not count."""
    d = (10 * torch.log10(ref.clamp_min(floor)) - 10 * torch.log10(est.clamp_min(floor))).double()
    return _lsd_from_db_diff(d, mask)


def _lsd_from_db_diff(d: Tensor, mask: Tensor | None) -> float:
    m = torch.ones_like(d) if mask is None else mask.to(d.dtype).expand_as(d)
    count = m.sum(dim=-2)
    frame_rms = ((d.square() * m).sum(dim=-2) / count.clamp_min(1)).sqrt()
    used = count > 0
    if not used.any():
        raise ValueError("log-spectral distance: the mask selects no entries")
    return float(frame_rms[used].mean())


def spectral_convergence(ref: Tensor, est: Tensor, *, mask: Tensor | None = None) -> float:
    """``||S_ref - S_est||_F / ||S_ref||_F`` on magnitudes ``S = sqrt(P)`` of power spectrograms
    (Sturmel & Daudet 2011), over ``mask``'s entries when given."""
    a, b = ref.double().clamp_min(0).sqrt(), est.double().clamp_min(0).sqrt()
    m = torch.ones_like(a) if mask is None else mask.to(a.dtype).expand_as(a)
    return float(((a - b).square() * m).sum().sqrt() / ((a.square() * m).sum().sqrt()).clamp_min(1e-12))


def round_trip_error(codec: MelCodec, waves: list[Tensor]) -> dict[str, float]:
    """How much Griffin-Lim loses on real audio: each clip goes through encode -> decode and is
    compared with the original in linear STFT power (LSD in dB, spectral convergence) and in the
    normalised log-mel state (mean absolute error). The floor any generated audio sits on."""
    lsd, sc, mel = [], [], []
    for w in waves:
        x = codec.encode(w)
        back = codec.decode(x)
        n = min(len(w), len(back))
        p_ref, p_est = stft_power(w[:n], codec), stft_power(back[:n], codec)
        lsd.append(log_spectral_distance(p_ref, p_est))
        sc.append(spectral_convergence(p_ref, p_est))
        mel.append(float((codec.encode(back[:n]) - x[..., : codec.frames_for(n)]).abs().mean()))
    k = max(len(waves), 1)
    return {"lsd_db": sum(lsd) / k, "spectral_convergence": sum(sc) / k, "state_mae": sum(mel) / k}


__all__ = ["MelCodec", "log_spectral_distance", "round_trip_error", "spectral_convergence", "stft_power"]
