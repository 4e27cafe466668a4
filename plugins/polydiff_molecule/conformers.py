"""Conformer generation (GeoDiff / torsional-diffusion task): the molecular graph is given, only the
coordinates are diffused. State ``pos[N, 3]`` (zero centre of mass); the graph reaches the backbone
as conditioning: ``cond["atom_types"]`` (one-hot ``[B, N, T]``) and ``cond["edges"]`` ``[B, N, N]``
(pair classes: bond type, else topological distance), so the backbone is E(3)-equivariant in the
coordinates and permutation-equivariant when atoms and graph are permuted together."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor

from polydiff.diffusion import Batch, Field, StateSpec, remove_com

from .chem import MoleculeError, arrays_of, canonical_smiles, with_positions
from .data import ELEMENTS, element_index, embed_smiles
from .smiles_list import SMALL_MOLECULES

POS_SPEC = StateSpec((Field("pos", (None, 3), noise="com_free"),))
_BOND_CLASS = {Chem.BondType.SINGLE: 1, Chem.BondType.DOUBLE: 2, Chem.BondType.TRIPLE: 3, Chem.BondType.AROMATIC: 4}


def graph_of(mol: Chem.Mol, max_atoms: int) -> tuple[Tensor, Tensor]:
    """``(atom_types [max_atoms, T] one-hot, edges [max_atoms, max_atoms] long)`` of a molecule with
    explicit hydrogens; pair classes 1-4 bond order, 5-8 topological distance 2, 3, 4, > 4 (or none)."""
    n = mol.GetNumAtoms()
    if n > max_atoms:
        raise MoleculeError(f"{canonical_smiles(mol)!r} has {n} atoms, more than max_atoms = {max_atoms}")
    types = torch.zeros(max_atoms, len(ELEMENTS))
    types[torch.arange(n), torch.tensor([element_index(a.GetSymbol()) for a in mol.GetAtoms()])] = 1.0
    topo = torch.from_numpy(np.asarray(Chem.GetDistanceMatrix(mol)))
    cls = torch.where(topo <= 4, topo.clamp(min=2) + 3, torch.full_like(topo, 8)).long()
    for b in mol.GetBonds():
        i, j = b.GetBeginAtomIdx(), b.GetEndAtomIdx()
        cls[i, j] = cls[j, i] = _BOND_CLASS.get(b.GetBondType(), 1)
    cls.fill_diagonal_(0)
    edges = torch.zeros(max_atoms, max_atoms, dtype=torch.long)
    edges[:n, :n] = cls
    return types, edges


class ConformerDataset:
    """Every conformer of every molecule is a sample; the graph travels in ``cond``.

    Attributes:
        mols: RDKit molecules (explicit H) with their conformers; ``mol_index[k]``: molecule of sample k.
    """

    spec: StateSpec = POS_SPEC
    num_classes: int | None = None

    def __init__(self, mols: Sequence[Chem.Mol], *, max_atoms: int | None = None) -> None:
        if not mols:
            raise MoleculeError("no molecules for the conformer dataset")
        self.mols = list(mols)
        self.max_atoms = max_atoms or max(m.GetNumAtoms() for m in mols)
        graphs = [graph_of(m, self.max_atoms) for m in self.mols]
        pos, index, lengths = [], [], []
        for k, m in enumerate(self.mols):
            for conf in m.GetConformers():
                p = torch.zeros(self.max_atoms, 3)
                p[:m.GetNumAtoms()] = torch.from_numpy(arrays_of(m, conf.GetId()).positions)
                pos.append(p)
                index.append(k)
                lengths.append(m.GetNumAtoms())
        self.mol_index = torch.tensor(index)
        self.lengths = torch.tensor(lengths)
        self.padding = POS_SPEC.padding_mask(self.lengths, self.max_atoms)
        self.x = remove_com(torch.stack(pos), self.padding)
        self.types = torch.stack([g[0] for g in graphs])
        self.edges = torch.stack([g[1] for g in graphs])
        self.smiles = [canonical_smiles(m) for m in self.mols]

    def __len__(self) -> int:
        return self.x.shape[0]

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def get_batch(self, indices: Tensor) -> Batch:
        mol = self.mol_index[indices]
        return Batch(x=self.x[indices], padding=self.padding[indices],
                     cond={"atom_types": self.types[mol], "edges": self.edges[mol]})

    def __repr__(self) -> str:
        return f"ConformerDataset(molecules={len(self.mols)}, conformers={len(self)}, max_atoms={self.max_atoms})"


def load_conformers(*, smiles: str = "", n_conformers: int = 5, seed: int = 0, limit: int = 0,
                    max_heavy_atoms: int = 9) -> ConformerDataset:
    """ETKDG + MMFF conformers (cached) of the built-in small molecules (or ``smiles``: a file or a
    comma-separated list); molecules with more than ``max_heavy_atoms`` heavy atoms are skipped."""
    from .data import _smiles_option

    items = _smiles_option(smiles) if smiles else list(SMALL_MOLECULES)
    items = [s for s in items if Chem.MolFromSmiles(s) is None or Chem.MolFromSmiles(s).GetNumHeavyAtoms()
             <= max_heavy_atoms]
    if limit:
        items = items[:limit]
    return ConformerDataset(embed_smiles(items, seed=seed, n_conformers=n_conformers))


def generate_conformers(denoiser: Any, mol: Chem.Mol, n: int, *, max_atoms: int, seed: int = 0,
                        sampler: str = "heun", steps: int = 20, **sample_kwargs: Any) -> Chem.Mol:
    """``n`` conformers of ``mol`` (explicit H) from a trained conformer denoiser, as a copy of
    ``mol`` holding them; extra keywords go to :func:`polydiff.sample` (e.g. ``schedule``)."""
    from polydiff import sample

    types, edges = graph_of(mol, max_atoms)
    lengths = torch.full((n,), mol.GetNumAtoms())
    padding = POS_SPEC.padding_mask(lengths, max_atoms)
    out = sample(denoiser, shape=(max_atoms, 3), n=n, seed=seed, sampler=sampler, steps=steps, spec=POS_SPEC,
                 padding=padding, cond={"atom_types": types.expand(n, -1, -1), "edges": edges.expand(n, -1, -1)},
                 **sample_kwargs)
    k = mol.GetNumAtoms()
    return with_positions(mol, [x[:k].numpy() for x in out.x])
