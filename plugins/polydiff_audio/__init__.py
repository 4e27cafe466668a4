"""polydiff_audio: the audio modality.

Registers the ``audio`` modality (normalised log-mel spectrograms ``x[1, n_mels, frames]``, padded in
time, back to WAV with Griffin-Lim), the datasets ``tones`` (generated), ``asterisk_digits`` and
``espeak_digits`` (Debian packages) and ``folder``; the backbones ``mel_conv1d`` and ``mel_unet``
(the image plugin's U-Net); the metrics ``audio_fd``, ``audio_accuracy`` (generation) and
``lsd_db``, ``spectral_convergence`` (imputation); the mask strategies ``time_gap`` and
``continuation``. Modules: :mod:`.spectrogram` (``MelCodec``), :mod:`.io`, :mod:`.data`,
:mod:`.speech`, :mod:`.dsp`, :mod:`.backbones`, :mod:`.masks`, :mod:`.metrics`, :mod:`.plots`.

Importing it checks the ``audio`` extra (soundfile, soxr; no torchaudio, any torch >= 2.4), so a missing
extra shows as ``unavailable: ... pip install 'polydiff[audio]'`` in ``polydiff plugins`` rather than
failing later. torchaudio is never imported: the spectrogram maths is :mod:`.dsp`, on ``torch.stft``.
"""

from __future__ import annotations

import soundfile  # noqa: F401  (the extra's dependency: reading and writing audio files)
import soxr  # noqa: F401  (the extra's dependency: resampling)

from polydiff.plugins import SpecPlugin

__version__ = "0.1.0"

polydiff_plugin = SpecPlugin(registry="polydiff_audio.registry")
