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
