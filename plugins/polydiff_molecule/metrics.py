"""Molecule metrics (EDM, Hoogeboom et al. 2022, Sec. 5.2; GeoDiff, Xu et al. 2022, Sec. 5.1).

Generation: bonds are perceived from 3D with RDKit (:func:`~polydiff_molecule.chem.perceive`); then
atom stability (fraction of atoms with an allowed total bond order), molecule stability (fraction of
molecules whose atoms are all stable), validity (RDKit sanitises; largest fragment closed-shell),
uniqueness (distinct canonical SMILES among valid), novelty (unique valid not in the dataset), and
Wasserstein-1 distances between the samples' and the data's interatomic-distance and bond-length
distributions. Conformers: COV-R / MAT-R (recall coverage and matching, heavy-atom RMSD) of RDKit
conformers here; the ``conformer`` modality's metrics are in :mod:`.conformer_metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from rdkit import Chem

from polydiff.diffusion import Batch, DiffusionDataset

from .chem import AtomArrays, Perceived, heavy_atom_rmsd, perceive
from .conformer_metrics import cov_mat
from .data import decode

_LAST: dict[str, object] = {}


def perceived(samples: Batch) -> list[Perceived]:
    """Bond perception of every sample (the last batch's result is reused by the other metrics)."""
    key = (id(samples.x), samples.x._version, tuple(samples.x.shape), float(samples.x.sum()))
    if _LAST.get("key") != key:
        _LAST["key"], _LAST["value"] = key, [perceive(m) for m in decode(samples)]
    return _LAST["value"]  # type: ignore[return-value]


def atom_stability(samples: Batch, reference: DiffusionDataset | None = None) -> float:
    """Fraction of atoms whose total bond order is an allowed valence (EDM)."""
    p = perceived(samples)
    n = sum(len(x.stable_atoms) for x in p)
    return float(sum(x.stable_atoms.sum() for x in p) / max(n, 1))


def molecule_stability(samples: Batch, reference: DiffusionDataset | None = None) -> float:
    """Fraction of molecules whose atoms are all stable (EDM)."""
    p = perceived(samples)
    return float(np.mean([bool(x.stable_atoms.all()) and len(x.stable_atoms) > 0 for x in p]))


def validity(samples: Batch, reference: DiffusionDataset | None = None) -> float:
    """Fraction of molecules that RDKit sanitises, largest fragment closed-shell."""
    return float(np.mean([x.valid for x in perceived(samples)]))


def uniqueness(samples: Batch, reference: DiffusionDataset | None = None) -> float:
    """Distinct canonical SMILES among the valid molecules (0 when none is valid)."""
    smiles = [x.smiles for x in perceived(samples) if x.valid]
    return len(set(smiles)) / len(smiles) if smiles else 0.0


def novelty(samples: Batch, reference: DiffusionDataset) -> float:
    """Fraction of the unique valid SMILES that appear nowhere in the dataset (training molecules
    included: a held-out subset passes the whole dataset's ``smiles`` through)."""
    known = {Chem.CanonSmiles(s, useChiral=False) for s in getattr(reference, "smiles", [])}
    if hasattr(reference, "perceived_smiles"):
        known |= reference.perceived_smiles()
    unique = {x.smiles for x in perceived(samples) if x.valid}
    return len(unique - known) / len(unique) if unique else 0.0


def _reference_molecules(reference: DiffusionDataset, n: int = 1000) -> list[AtomArrays]:
    return decode(reference.get_batch(torch.arange(min(n, len(reference)))))


def pair_distances(molecules: Sequence[AtomArrays]) -> np.ndarray:
    out = [np.linalg.norm(m.positions[:, None] - m.positions[None], axis=-1)[np.triu_indices(len(m), 1)]
           for m in molecules]
    return np.concatenate(out) if out else np.zeros(0)


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    """W1 between two 1-D empirical distributions (the area between their CDFs)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    qs = np.linspace(0, 1, 513)[1:-1]
    return float(np.abs(np.quantile(a, qs) - np.quantile(b, qs)).mean())


def distance_w1(samples: Batch, reference: DiffusionDataset) -> float:
    """W1 (Angstrom) between all interatomic distances of the samples and of the reference data."""
    return wasserstein_1d(pair_distances(decode(samples)), pair_distances(_reference_molecules(reference)))


def bond_lengths(perceptions: Sequence[Perceived]) -> dict[str, np.ndarray]:
    """Perceived bond lengths grouped by ``"C-H"``-style element pairs (sorted symbols)."""
    groups: dict[str, list[float]] = {}
    for p in perceptions:
        if p.mol.GetNumConformers() == 0:
            continue
        pos = p.mol.GetConformer().GetPositions()
        for b in p.mol.GetBonds():
            i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
            key = "-".join(sorted((b.GetBeginAtom().GetSymbol(), b.GetEndAtom().GetSymbol())))
            groups.setdefault(key, []).append(float(np.linalg.norm(pos[i] - pos[j])))
    return {k: np.asarray(v) for k, v in groups.items()}


def bond_length_w1(samples: Batch, reference: DiffusionDataset) -> float:
    """Mean over element-pair bond types (present in both) of the W1 (Angstrom) between the
    bond-length distributions of samples and data, weighted by the data's bond counts."""
    gen = bond_lengths(perceived(samples))
    ref = bond_lengths([perceive(m) for m in _reference_molecules(reference)])
    common = [k for k in ref if k in gen]
    if not common:
        return float("nan")
    w = np.array([len(ref[k]) for k in common], dtype=float)
    return float(np.average([wasserstein_1d(gen[k], ref[k]) for k in common], weights=w))


def coverage_matching(generated: Sequence[Chem.Mol], references: Sequence[Chem.Mol], *,
                      threshold: float = 0.5) -> tuple[float, float]:
    """COV-R and MAT-R for one molecule (GeoDiff, Eq. 20-21): ``generated`` and ``references`` are
    conformers of the same molecule (one per entry); heavy-atom RMSD after symmetry-aware alignment.
    COV-R: fraction of references with a generated conformer within ``threshold`` (<=); MAT-R: mean over
    references of the smallest RMSD."""
    if not generated or not references:
        raise ValueError("coverage_matching needs at least one generated and one reference conformer")
    return cov_mat(np.array([[heavy_atom_rmsd(g, r) for g in generated] for r in references]), threshold)
