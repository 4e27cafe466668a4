"""Conformer generation metrics: COV-R and MAT-R (GeoDiff, Xu et al. 2022, Sec. 5.1, Eq. 20-21).

Samples and references are grouped by molecular graph (``cond["atom_types"]``, ``cond["edges"]``):
the key is the canonical SMILES of the heavy-atom graph (element, bond classes, hydrogen count per
atom), so two records of one molecule match even when their files number the atoms differently.
For every graph that has both sampled and reference conformers, with S_g generated and S_r reference
conformers and heavy-atom RMSD after optimal rotation, minimised over the graph's automorphisms
(symmetry-aware, as RDKit's ``GetBestRMS``):

* COV-R = |{r in S_r : min_g RMSD(g, r) <= delta}| / |S_r|   (Eq. 20)
* MAT-R = mean over r in S_r of min_g RMSD(g, r)              (Eq. 21)

and the table reports their mean over graphs. ``delta`` = 0.5 A, GeoDiff's threshold on GEOM-QM9
(small molecules; GEOM-Drugs uses 1.25 A, which MAT-R lets you read off). Graphs with fewer than
three heavy atoms are left out: their heavy-atom RMSD cannot measure a conformation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rdkit import Chem

from polydiff.diffusion import Batch, DiffusionDataset
from polydiff.plugins import NotApplicable

from .data import ELEMENTS

COV_THRESHOLD = 0.5
"""Angstrom: GeoDiff's COV threshold delta on GEOM-QM9."""
MIN_HEAVY_ATOMS = 3
"""Graphs with fewer heavy atoms are not scored (an aligned pair of atoms measures one bond length)."""
MAX_SYMMETRIES = 1000
"""At most this many automorphisms of a heavy-atom graph are tried (RDKit's GetBestRMS tries 1e6)."""

_BONDS = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE, 4: Chem.BondType.AROMATIC}


@dataclass(frozen=True)
class GraphConformers:
    """The conformers of one heavy-atom graph: ``mol`` (heavy atoms in canonical order, no
    coordinates) and ``positions`` ``[k, h, 3]`` in that atom order."""

    mol: Chem.Mol
    positions: np.ndarray


def heavy_graph(types: torch.Tensor, edges: torch.Tensor) -> tuple[str, Chem.Mol, np.ndarray]:
    """``(key, mol, atoms)`` of one item's graph (``types [N, T]`` one-hot, zero rows are padding;
    ``edges [N, N]`` pair classes, 1-4 bonds): the heavy-atom graph in canonical atom order, its
    canonical SMILES, and the item's atom index of each of its atoms."""
    n = int((types.sum(-1) > 0).sum())
    elements = [ELEMENTS[int(t)] for t in types[:n].argmax(-1)]
    bonds = edges[:n, :n].numpy()
    heavy = [i for i, e in enumerate(elements) if e != "H"]
    mol = Chem.RWMol()
    for i in heavy:
        atom = Chem.Atom(elements[i])
        atom.SetNoImplicit(True)
        atom.SetNumExplicitHs(sum(1 for j in range(n) if elements[j] == "H" and bonds[i, j] in _BONDS))
        mol.AddAtom(atom)
    for a, i in enumerate(heavy):
        for b in range(a + 1, len(heavy)):
            c = int(bonds[i, heavy[b]])
            if c in _BONDS:
                mol.AddBond(a, b, _BONDS[c])
    out = mol.GetMol()
    out.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(out)
    order = [int(k) for k in np.argsort(list(Chem.CanonicalRankAtoms(out, breakTies=True)))]
    canonical = Chem.RenumberAtoms(out, order)
    canonical.UpdatePropertyCache(strict=False)
    Chem.FastFindRings(canonical)
    return Chem.MolToSmiles(canonical), canonical, np.asarray(heavy, dtype=np.int64)[order]


def _signature(mol: Chem.Mol) -> tuple[object, ...]:
    return (tuple(a.GetSymbol() for a in mol.GetAtoms()),
            tuple(sorted((b.GetBeginAtomIdx(), b.GetEndAtomIdx(), int(b.GetBondType())) for b in mol.GetBonds())))


def group_by_graph(batch: Batch) -> dict[str, GraphConformers]:
    """The heavy-atom coordinates of every item of ``batch`` grouped by graph (see :func:`heavy_graph`)."""
    if "atom_types" not in batch.cond or "edges" not in batch.cond:
        raise NotApplicable("the items carry no molecular graph (cond atom_types / edges)")
    pos = batch.x.detach().float().cpu().reshape(len(batch.x), -1, 3).numpy()
    types, edges = batch.cond["atom_types"].cpu(), batch.cond["edges"].cpu()
    groups: dict[str, tuple[Chem.Mol, list[np.ndarray]]] = {}
    for i in range(len(pos)):
        key, mol, atoms = heavy_graph(types[i], edges[i])
        if key not in groups:
            groups[key] = (mol, [])
        template = groups[key][0]
        if _signature(mol) != _signature(template):  # canonical ranks tied differently: map onto the template
            match = mol.GetSubstructMatch(template)
            if len(match) != template.GetNumAtoms():
                raise ValueError(f"graph {key!r}: two items with this key are not the same graph")
            atoms = atoms[list(match)]
        groups[key][1].append(pos[i][atoms])
    return {k: GraphConformers(mol, np.stack(p).astype(np.float64)) for k, (mol, p) in groups.items()}


def symmetries(mol: Chem.Mol) -> np.ndarray:
    """``[m, h]`` automorphisms of a heavy-atom graph (elements and bond types kept), identity first."""
    maps = mol.GetSubstructMatches(mol, uniquify=False, useChirality=False, maxMatches=MAX_SYMMETRIES)
    identity = tuple(range(mol.GetNumAtoms()))
    return np.asarray([identity, *(m for m in maps if m != identity)], dtype=np.int64).reshape(-1, mol.GetNumAtoms())


def rmsd_matrix(generated: np.ndarray, references: np.ndarray, maps: np.ndarray) -> np.ndarray:
    """``[r, g]`` RMSD between ``references [r, h, 3]`` and ``generated [g, h, 3]`` after the best
    rotation (Kabsch, proper rotations only) and the best atom map among ``maps [m, h]``."""
    a = generated - generated.mean(1, keepdims=True)
    b = references - references.mean(1, keepdims=True)
    h = a.shape[1]
    out = np.empty((len(b), len(a)))
    a2 = np.square(a).sum((1, 2))
    for r, ref in enumerate(b):
        perm = ref[maps]  # [m, h, 3]: reference atom maps[k, i] matched to atom i
        cov = np.einsum("gia,mib->gmab", a, perm)
        s = np.linalg.svd(cov, compute_uv=False)
        d = np.sign(np.linalg.det(cov))
        best = s[..., 0] + s[..., 1] + np.where(d < 0, -1.0, 1.0) * s[..., 2]
        msd = (a2[:, None] + np.square(ref).sum() - 2 * best) / h
        out[r] = np.sqrt(np.clip(msd.min(1), 0.0, None))
    return out


def cov_mat(rmsd: np.ndarray, threshold: float) -> tuple[float, float]:
    """COV-R and MAT-R of one ``[references, generated]`` RMSD matrix (GeoDiff Eq. 20-21)."""
    best = rmsd.min(axis=1)
    return float((best <= threshold).mean()), float(best.mean())


def conformer_scores(samples: Batch, reference: DiffusionDataset, *,
                     threshold: float = COV_THRESHOLD) -> dict[str, float]:
    """COV-R and MAT-R averaged over the graphs with sampled and reference conformers, and
    ``graphs``, how many were scored."""
    gen = group_by_graph(samples)
    ref = group_by_graph(reference.get_batch(torch.arange(len(reference))))
    shared = [k for k in gen if k in ref and gen[k].mol.GetNumAtoms() >= MIN_HEAVY_ATOMS]
    if not shared:
        raise NotApplicable(f"none of the {len(gen)} sampled graph(s) with >= {MIN_HEAVY_ATOMS} heavy atoms has "
                            "held-out reference conformers")
    scores = [cov_mat(rmsd_matrix(gen[k].positions, ref[k].positions, symmetries(gen[k].mol)), threshold)
              for k in shared]
    return {"cov_r": float(np.mean([c for c, _ in scores])), "mat_r": float(np.mean([m for _, m in scores])),
            "graphs": float(len(shared))}


_LAST: dict[str, object] = {}


def _cached(samples: Batch, reference: DiffusionDataset) -> dict[str, float]:
    key = (id(samples.x), samples.x._version, tuple(samples.x.shape), float(samples.x.float().sum()),
           id(reference), len(reference))
    if _LAST.get("key") != key:
        _LAST["key"], _LAST["value"] = key, conformer_scores(samples, reference)
    return _LAST["value"]  # type: ignore[return-value]


def cov_r(samples: Batch, reference: DiffusionDataset) -> float:
    """COV-R at 0.5 A: fraction of reference conformers with a sample within 0.5 A heavy-atom RMSD."""
    return _cached(samples, reference)["cov_r"]


def mat_r(samples: Batch, reference: DiffusionDataset) -> float:
    """MAT-R (A): mean over reference conformers of the smallest heavy-atom RMSD to a sample."""
    return _cached(samples, reference)["mat_r"]


__all__ = ["COV_THRESHOLD", "MIN_HEAVY_ATOMS", "GraphConformers", "conformer_scores", "cov_mat", "cov_r",
           "group_by_graph", "heavy_graph", "mat_r", "rmsd_matrix", "symmetries"]
