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

from polydiff import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec
from polydiff.hookspecs import hookimpl

__version__ = "0.1.0"


@hookimpl
def polydiff_register_modalities() -> list[ModalitySpec]:
    from .registry import MODALITY

    return [MODALITY]


@hookimpl
def polydiff_register_datasets() -> list[DatasetSpec]:
    from .registry import DATASETS

    return list(DATASETS)


@hookimpl
def polydiff_register_backbones() -> list[BackboneSpec]:
    from .registry import BACKBONES

    return list(BACKBONES)


@hookimpl
def polydiff_register_metrics() -> list[MetricSpec]:
    from .registry import METRICS

    return list(METRICS)


@hookimpl
def polydiff_register_mask_strategies() -> list[MaskStrategySpec]:
    from .registry import MASK_STRATEGIES

    return list(MASK_STRATEGIES)
