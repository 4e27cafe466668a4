"""polydiff_audio: the audio modality.

Registers the ``audio`` modality (normalised log-mel spectrograms ``x[1, n_mels, frames]``, padded in
time, back to WAV with Griffin-Lim), the datasets ``tones`` (generated), ``asterisk_digits`` and
``espeak_digits`` (Debian packages) and ``folder``; the backbones ``mel_conv1d`` and ``mel_unet``
(the image plugin's U-Net); the metrics ``audio_fd``, ``audio_accuracy`` (generation) and
``lsd_db``, ``spectral_convergence`` (imputation); the mask strategies ``time_gap`` and
``continuation``. Modules: :mod:`.spectrogram` (``MelCodec``), :mod:`.io`, :mod:`.data`,
:mod:`.speech`, :mod:`.backbones`, :mod:`.masks`, :mod:`.metrics`, :mod:`.plots`.

Importing it checks the ``audio`` extra, so a missing extra shows as
``unavailable: ... pip install 'polydiff[audio]'`` in ``polydiff plugins`` rather than failing later.
torchaudio's last release (2.11) loads only with the torch of the same version: a mismatch is turned
into an ImportError that says so and how to fix it.
"""

from __future__ import annotations

import importlib.metadata

FIX = "pip install 'polydiff[audio]' (it pins torch==2.11.0 torchaudio==2.11.0)"


def _minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _check_torchaudio() -> None:
    try:
        ta_version = importlib.metadata.version("torchaudio")
    except importlib.metadata.PackageNotFoundError:
        ta_version = None  # not installed (or vendored without metadata): let the import decide
    torch_version = importlib.metadata.version("torch")
    mismatch = (f"torchaudio {ta_version} needs torch {_minor(ta_version)} but torch {torch_version} is installed"
                if ta_version is not None and _minor(ta_version) != _minor(torch_version) else None)
    try:
        import torchaudio  # noqa: F401
    except ModuleNotFoundError as e:
        if e.name != "torchaudio":
            raise ImportError(f"torchaudio failed to import: {e}. Fix: {FIX}") from e
        raise
    except Exception as e:  # a torchaudio built for another torch fails with OSError/RuntimeError
        why = f"{mismatch or 'torchaudio failed to load'} ({type(e).__name__}: {e})"
        raise ImportError(f"{why}. Fix: {FIX}") from e
    if mismatch:  # it imported, but ops will fail at run time
        raise ImportError(f"{mismatch}. Fix: {FIX}")


_check_torchaudio()

import soundfile  # noqa: E402, F401  (the extra's dependency: reading and writing WAV)

from polydiff import BackboneSpec, DatasetSpec, MaskStrategySpec, MetricSpec, ModalitySpec  # noqa: E402
from polydiff.hookspecs import hookimpl  # noqa: E402

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
