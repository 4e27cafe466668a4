"""The torch-only spectrogram maths against torchaudio's, on real recordings (Asterisk's digit prompts).

Skipped where torchaudio does not import (its last release, 2.11, loads only with torch 2.11): CI runs
this file in a torch 2.11 + torchaudio environment (``pip install -e '.[audio-torchaudio]'``).
"""

from pathlib import Path

import pytest

try:
    import torchaudio.functional as AF
    import torchaudio.transforms as T
except Exception as e:  # not installed, or built for another torch (OSError / RuntimeError at load)
    pytest.skip(f"torchaudio does not import here ({type(e).__name__}); "
                "pip install -e '.[audio-torchaudio]' (torch 2.11)", allow_module_level=True)

import torch

from polydiff_audio import dsp
from polydiff_audio.io import peak_normalize, read_wav, trim_silence
from polydiff_audio.spectrogram import MelCodec, round_trip_error

VOICES = ["en_US_f_Allison", "fr_CA_f_June", "it_IT_m_Carlo"]


@pytest.fixture(scope="module")
def clips() -> list[torch.Tensor]:
    root = Path("/usr/share/asterisk/sounds")
    files = [root / v / "digits" / f"{d}.wav" for v in VOICES for d in (0, 3, 7)]
    if not all(f.is_file() for f in files):
        pytest.skip("Asterisk prompts missing: apt-get install -y asterisk-core-sounds-en-wav "
                    "asterisk-core-sounds-fr-wav asterisk-core-sounds-it-wav")
    return [peak_normalize(trim_silence(read_wav(f, sample_rate=8000))) for f in files]


def test_filterbank_is_torchaudios():
    for n_fft, n_mels, rate in [(512, 32, 8000), (1024, 80, 22050), (400, 40, 16000)]:
        ours = dsp.mel_filterbank(n_freqs=n_fft // 2 + 1, n_mels=n_mels, sample_rate=rate)
        theirs = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, float(rate // 2), n_mels, rate, norm="slaney",
                                    mel_scale="slaney")
        assert (ours - theirs).abs().max() <= 1e-6 * theirs.abs().max()


def test_mel_spectrogram_agrees_to_1e5_on_real_clips(clips):
    codec = MelCodec()
    mel = T.MelSpectrogram(sample_rate=8000, n_fft=codec.n_fft, hop_length=codec.hop, n_mels=codec.n_mels,
                           power=2.0, norm="slaney", mel_scale="slaney")
    for w in clips:
        ours, theirs = codec.mel_power(w), mel(w)
        assert ours.shape == theirs.shape
        assert ((ours - theirs).abs() / theirs.abs().max()).max() < 1e-5  # relative to the clip's peak bin
        state = codec.normalize(10 * torch.log10(theirs.clamp_min(1e-10)))
        assert (codec.encode(w) - state).abs().max() < 1e-5  # the diffused state, in [-1, 1]


def test_inverse_mel_and_griffin_lim_agree_with_a_shared_seed(clips):
    codec = MelCodec()
    inverse = T.InverseMelScale(n_stft=codec.n_fft // 2 + 1, n_mels=codec.n_mels, sample_rate=8000,
                                norm="slaney", mel_scale="slaney")
    power = codec.mel_power(clips[0])
    ours, theirs = dsp.inverse_mel(power, codec.filterbank), inverse(power)
    assert (ours - theirs).abs().max() <= 1e-4 * theirs.abs().max()
    lin = dsp.power_spectrogram(clips[0], n_fft=codec.n_fft, hop=codec.hop)
    gl = T.GriffinLim(n_fft=codec.n_fft, hop_length=codec.hop, power=2.0, n_iter=16, momentum=0.99)
    torch.manual_seed(5)
    reference = gl(lin)
    ours_wave = dsp.griffin_lim(lin, n_fft=codec.n_fft, hop=codec.hop, n_iter=16,
                                generator=torch.Generator().manual_seed(5))
    assert (ours_wave - reference).abs().max() < 1e-3 * reference.abs().max()


def test_round_trip_error_is_the_same(clips):
    codec = MelCodec()

    class TorchaudioCodec(MelCodec):  # the same codec with torchaudio's transforms (the old implementation)
        def mel_power(self, wave: torch.Tensor) -> torch.Tensor:
            return T.MelSpectrogram(sample_rate=self.sample_rate, n_fft=self.n_fft, hop_length=self.hop,
                                    n_mels=self.n_mels, power=2.0, norm="slaney", mel_scale="slaney")(wave)

        def decode(self, x: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
            power = torch.pow(10.0, self.to_db(x) / 10)
            power = torch.where(x <= -1, torch.zeros_like(power), power)
            inverse = T.InverseMelScale(n_stft=self.n_fft // 2 + 1, n_mels=self.n_mels,
                                        sample_rate=self.sample_rate, norm="slaney", mel_scale="slaney")
            spec = inverse(power) + 1e-6 * power.mean()
            fb = inverse.fb.T
            for _ in range(self.nnls_iters):
                spec = spec * (fb.T @ power) / (fb.T @ (fb @ spec)).clamp_min(1e-20)
            torch.manual_seed(seed)
            wave = T.GriffinLim(n_fft=self.n_fft, hop_length=self.hop, power=2.0, n_iter=self.griffin_lim_iters,
                                momentum=0.99)(spec)
            return wave[..., : self.samples_for(x.shape[-1])]

    ours, theirs = round_trip_error(codec, clips), round_trip_error(TorchaudioCodec(), clips)
    print("round trip, torch:", ours, "torchaudio:", theirs)
    for key in ("lsd_db", "spectral_convergence", "state_mae"):
        assert ours[key] == pytest.approx(theirs[key], rel=1e-3), (key, ours, theirs)
