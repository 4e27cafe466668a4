"""What ``polydiff impute`` writes for molecules (``ModalitySpec.save_imputation``): an SDF of the
completed molecules (every sample of every item, bonds perceived from 3D, names saying item, sample,
validity and SMILES) beside the data molecules, for a viewer (PyMOL, Avogadro, RDKit)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from polydiff.diffusion import Batch, Imputation

from .chem import perceive
from .data import decode
from .impute import completed
from .io import write_sdf


def save_imputation(imp: Imputation, dataset: Any, stem: Path) -> list[Path]:
    """``stem.sdf`` (completions, item-major) and ``stem-data.sdf`` (the data molecules)."""
    s = imp.n_samples
    done = [perceive(m) for m in decode(completed(imp))]
    names = [f"item {k // s} sample {k % s} {p.smiles if p.valid else 'invalid'}" for k, p in enumerate(done)]
    data = [perceive(m) for m in decode(Batch(x=imp.truth, padding=imp.padding))]
    data_names = [f"item {i} data {p.smiles if p.valid else 'invalid'}" for i, p in enumerate(data)]
    return [write_sdf([p.mol for p in done], Path(f"{stem}.sdf"), names=names),
            write_sdf([p.mol for p in data], Path(f"{stem}-data.sdf"), names=data_names)]


__all__ = ["save_imputation"]
