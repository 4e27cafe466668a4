"""polydiff_audio: the audio modality (filled by the "Audio modality" issue; registers no hooks yet).

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
