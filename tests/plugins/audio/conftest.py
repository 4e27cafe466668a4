"""The audio plugin's tests need its extra (soundfile, soxr; no torchaudio): pip install 'polydiff[audio]'."""

import pytest

pytest.importorskip("soundfile")
pytest.importorskip("soxr")
