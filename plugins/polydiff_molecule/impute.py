"""Scaffold-constrained generation scored as imputation: given atoms stay fixed (``polydiff impute``
with the ``atom_subset`` / ``atom_positions`` masks) and the completed molecules are judged as
chemistry, not only as numbers (the core adds mae / rmse / crps / coverage_90)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from polydiff.diffusion import Batch

from .chem import perceive
from .data import decode


def completed(imputation: Any) -> Batch:
    """Every imputed sample as one batch ``[n * S, *shape]`` (padding repeated per sample)."""
    n, s = imputation.samples.shape[:2]
    x = imputation.samples.reshape(n * s, *imputation.samples.shape[2:])
    pad = None if imputation.padding is None else imputation.padding.repeat_interleave(s, dim=0)
    return Batch(x=x, padding=pad)


def imputation_validity(imputation: Any, reference: Any = None) -> float:
    """Fraction of completed molecules (all S samples of every item) that are valid (RDKit)."""
    return float(np.mean([perceive(m).valid for m in decode(completed(imputation))]))


def imputation_stability(imputation: Any, reference: Any = None) -> float:
    """Fraction of completed molecules whose atoms all have allowed valences (EDM molecule stability)."""
    return float(np.mean([bool(perceive(m).stable_atoms.all()) for m in decode(completed(imputation))]))


def plot_imputation(imputation: Any, path: Path) -> None:
    """Per row one item: the data molecule, then its first three completions (2D depictions)."""
    from rdkit import Chem
    from rdkit.Chem import Draw

    from .plots import _depictable

    rows = min(len(imputation), 4)
    s = min(imputation.n_samples, 3)
    mols: list[Chem.Mol] = []
    legends: list[str] = []
    for i in range(rows):
        pad = None if imputation.padding is None else imputation.padding[i:i + 1]
        truth, t_leg = _depictable(Batch(x=imputation.truth[i:i + 1], padding=pad), 1)
        mols += truth
        legends += [f"data {t_leg[0].split(': ', 1)[-1]}"[:28]]
        sample_pad = None if pad is None else pad.repeat(s, *[1] * (pad.ndim - 1))
        done, d_leg = _depictable(Batch(x=imputation.samples[i, :s], padding=sample_pad), s)
        mols += done
        legends += d_leg
    img = Draw.MolsToGridImage(mols, molsPerRow=1 + s, subImgSize=(220, 180), legends=legends)
    img.save(str(path))
