"""Video tests write reference classifiers into a per-session cache and run torch on one thread."""

import pytest


@pytest.fixture(scope="module", autouse=True)
def _video_environment(tmp_path_factory):
    """``$POLYDIFF_CACHE`` in the session's temporary directory, and one torch thread (on a shared
    2-core machine small convolutions run several times faster than with two contending threads);
    both restored after each module."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYDIFF_CACHE", str(tmp_path_factory.getbasetemp() / "polydiff-cache"))
        yield
    torch.set_num_threads(before)
