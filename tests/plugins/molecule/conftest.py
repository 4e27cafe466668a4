"""Shared fixtures: a tiny molecule set embedded with ETKDG (no Debian data), a tiny e3nn network."""

import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("e3nn")

TINY_NET = {"scalars": 8, "vectors": 2, "layers": 1, "width": 16, "basis": 8}


@pytest.fixture(scope="session")
def small():
    from polydiff_molecule import load_smiles

    return load_smiles(limit=24)


@pytest.fixture(scope="session")
def tiny_net(small):
    from polydiff_molecule import EquivariantDenoiser

    torch.manual_seed(0)
    return EquivariantDenoiser(small.spec, **TINY_NET).eval()


@pytest.fixture(scope="session")
def tiny_options():
    return dict(TINY_NET)
