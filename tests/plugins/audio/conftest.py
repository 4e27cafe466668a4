"""Audio tests write their reference classifiers and espeak-ng clips into a per-session cache."""

import pytest


@pytest.fixture(autouse=True)
def _audio_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("POLYDIFF_CACHE", str(tmp_path_factory.getbasetemp() / "polydiff-cache"))


@pytest.fixture(autouse=True)
def _one_thread():
    """One torch thread: on a shared 2-core machine small FFTs and convolutions run several times
    faster than with two contending threads (restored after each test)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
