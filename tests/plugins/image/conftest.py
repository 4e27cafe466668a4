"""Image plugin tests: skip without the ``image`` extra; reference classifiers cache in a temp dir."""

from __future__ import annotations

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("PIL")


@pytest.fixture(autouse=True, scope="session")
def _image_cache(tmp_path_factory: pytest.TempPathFactory):
    mp = pytest.MonkeyPatch()
    mp.setenv("POLYDIFF_CACHE", str(tmp_path_factory.mktemp("polydiff-cache")))
    yield
    mp.undo()


def randomize(net):
    """Give zero-initialised layers (ADM practice: residual branches start as the identity) random
    weights, so that conformance checks test a network whose output depends on its inputs."""
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in net.parameters():
            if not p.abs().sum():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return net


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny networks gain nothing from a second thread, and on a busy machine OpenMP threads
    spinning in wait make them several times slower; restored after each test."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
