"""RDKit chemistry: molecules <-> arrays, ETKDG embedding, bond perception from 3D, valence checks.

Everything chemical goes through RDKit; this module only converts between RDKit molecules and the
plain arrays (elements, positions, formal charges) the diffusion state is built from.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import rdDetermineBonds, rdDistGeom, rdForceFieldHelpers

rdBase.DisableLog("rdApp.*")  # RDKit prints to stderr for every rejected generated molecule

# Allowed total bond orders (sum over bonds, aromatic = 1.5) of a neutral atom, as EDM's stability
# tables (Hoogeboom et al. 2022, App. C); a formal charge q shifts them (N+ -> 4, O- -> 1).
VALENCES: dict[str, tuple[int, ...]] = {
    "H": (1,), "C": (4,), "N": (3,), "O": (2,), "F": (1,), "P": (3, 5), "S": (2, 4, 6), "Cl": (1,),
    "Br": (1,), "I": (1,), "B": (3,), "Si": (4,),
}
# charge shifts: isoelectronic rule; C+/C- have valence 3, N+ 4, N- 2, O+ 3, O- 1
_CHARGE_SHIFT = {"C": -1, "B": -1}


class MoleculeError(ValueError):
    """Bad chemical input: an unparsable SMILES or file, or an element outside the vocabulary."""


@dataclass(frozen=True)
class AtomArrays:
    """One molecule as arrays: ``elements`` (symbols), ``positions`` ``[N, 3]`` (Angstrom), ``charges`` ``[N]``."""

    elements: tuple[str, ...]
    positions: np.ndarray
    charges: np.ndarray

    def __len__(self) -> int:
        return len(self.elements)

    @property
    def heavy_atoms(self) -> int:
        return sum(e != "H" for e in self.elements)


def mol_from_smiles(smiles: str) -> Chem.Mol:
    """Parse and sanitise a SMILES string, with a clear error for a bad one."""
    mol = Chem.MolFromSmiles(smiles) if isinstance(smiles, str) and smiles.strip() else None
    if mol is None:
        raise MoleculeError(f"invalid SMILES {smiles!r}: RDKit could not parse or sanitise it "
                            "(check brackets, ring closures and valences)")
    return mol


def embed(mol: Chem.Mol, *, seed: int, n_conformers: int = 1, mmff: bool = True) -> Chem.Mol:
    """Add hydrogens and embed ``n_conformers`` 3D conformers with ETKDGv3 (Riniker & Landrum 2015),
    optionally relaxed with MMFF94; reproducible for a fixed ``seed``.

    Raises:
        MoleculeError: when ETKDG finds no conformer.
    """
    mh = Chem.AddHs(mol)
    params = rdDistGeom.ETKDGv3()
    # RDKit's seed 0 gives every conformer the same coordinates: shift seeds by one
    params.randomSeed = int(seed) + 1  # type: ignore[assignment]
    params.numThreads = 1  # type: ignore[assignment]
    ids = list(rdDistGeom.EmbedMultipleConfs(mh, numConfs=n_conformers, params=params))
    if not ids:
        raise MoleculeError(f"ETKDG could not embed {Chem.MolToSmiles(mol)!r} in 3D (seed {seed})")
    if mmff and rdForceFieldHelpers.MMFFHasAllMoleculeParams(mh):
        rdForceFieldHelpers.MMFFOptimizeMoleculeConfs(mh, numThreads=1, maxIters=500)
    return mh


def arrays_of(mol: Chem.Mol, conf_id: int = -1) -> AtomArrays:
    """Elements, positions and formal charges of one conformer of ``mol``."""
    if mol.GetNumConformers() == 0:
        raise MoleculeError(f"molecule {Chem.MolToSmiles(mol)!r} has no 3D conformer")
    pos = np.asarray(mol.GetConformer(conf_id).GetPositions(), dtype=np.float32)
    return AtomArrays(elements=tuple(a.GetSymbol() for a in mol.GetAtoms()), positions=pos,
                      charges=np.array([a.GetFormalCharge() for a in mol.GetAtoms()], dtype=np.float32))


def atoms_only(arrays: AtomArrays) -> Chem.RWMol:
    """An RDKit molecule with atoms, charges and one conformer, and no bonds yet."""
    mol = Chem.RWMol()
    conf = Chem.Conformer(len(arrays))
    for i, (el, q) in enumerate(zip(arrays.elements, arrays.charges, strict=True)):
        atom = Chem.Atom(el)
        # a charge above the atomic number (H2+ from a noisy sample) breaks RDKit's writers
        atom.SetFormalCharge(min(round(float(q)), atom.GetAtomicNum()))
        atom.SetNoImplicit(True)  # generated atoms carry their hydrogens explicitly
        mol.AddAtom(atom)
        conf.SetAtomPosition(i, [float(v) for v in arrays.positions[i]])
    mol.AddConformer(conf, assignId=True)
    return mol


def allowed_valences(element: str, charge: int) -> tuple[int, ...]:
    base = VALENCES.get(element)
    if base is None:
        return ()
    shift = charge * _CHARGE_SHIFT.get(element, 1)
    return tuple(v + shift for v in base if v + shift >= 0)


@dataclass(frozen=True)
class Perceived:
    """Bonds perceived from 3D: the molecule (bond orders where they could be assigned), per-atom
    stability, and whether RDKit sanitises it."""

    mol: Chem.Mol
    stable_atoms: np.ndarray
    valid: bool
    smiles: str | None  # canonical SMILES of the largest fragment, when valid


def perceive(arrays: AtomArrays) -> Perceived:
    """Bonds from coordinates with RDKit's ``rdDetermineBonds`` (connectivity from covalent radii,
    then xyz2mol bond orders, Kim & Kim 2015), atom stability (total bond order = an allowed valence,
    EDM) and validity: RDKit sanitises the molecule and its largest fragment (EDM's rule) is
    closed-shell (no radical electrons; hydrogens are explicit, so none are added implicitly)."""
    finite = bool(np.isfinite(arrays.positions).all() and np.isfinite(arrays.charges).all())
    if not finite:  # a diverged sample: no molecule, so invalid and no stable atom
        arrays = AtomArrays(elements=arrays.elements, positions=np.zeros_like(arrays.positions),
                            charges=np.zeros_like(arrays.charges))
    mol = atoms_only(arrays)
    n = len(arrays)
    if n == 0 or not finite:
        return Perceived(mol=mol.GetMol(), stable_atoms=np.zeros(n, bool), valid=False, smiles=None)
    rdDetermineBonds.DetermineConnectivity(mol, useHueckel=False)
    degrees = [a.GetDegree() for a in mol.GetAtoms()]
    # xyz2mol enumerates bond-order assignments; an atom with more neighbours than any valence
    # allows makes that search pointless (and slow): such molecules stay single-bonded and fail
    overbonded = any(not allowed_valences(a.GetSymbol(), a.GetFormalCharge())
                     or d > max(allowed_valences(a.GetSymbol(), a.GetFormalCharge()))
                     for a, d in zip(mol.GetAtoms(), degrees, strict=True))
    if not overbonded:
        # no consistent assignment: keep single bonds, the valence check below reports it
        with contextlib.suppress(ValueError, RuntimeError):
            rdDetermineBonds.DetermineBondOrders(mol, charge=round(float(arrays.charges.sum())),
                                                 allowChargedFragments=False, embedChiral=False)
    stable = np.zeros(n, dtype=bool)
    for a in mol.GetAtoms():
        order = sum(b.GetBondTypeAsDouble() for b in a.GetBonds())
        stable[a.GetIdx()] = any(abs(order - v) < 1e-6 for v in allowed_valences(a.GetSymbol(), a.GetFormalCharge()))
    out = mol.GetMol()
    valid, smiles = _sanitised_smiles(out)
    return Perceived(mol=out, stable_atoms=stable, valid=valid, smiles=smiles)


def _sanitised_smiles(mol: Chem.Mol) -> tuple[bool, str | None]:
    try:
        m = Chem.Mol(mol)
        Chem.SanitizeMol(m)
        frags = Chem.GetMolFrags(m, asMols=True, sanitizeFrags=True)
        largest = max(frags, key=lambda f: f.GetNumAtoms())
        if any(a.GetNumRadicalElectrons() for a in largest.GetAtoms()):
            return False, None  # open-shell: RDKit accepts radicals, chemistry datasets hold none
        return True, Chem.MolToSmiles(Chem.RemoveHs(largest), isomericSmiles=False)
    except Exception:  # RDKit raises several types (AtomValenceException, KekulizeException...)
        return False, None


def canonical_smiles(mol: Chem.Mol) -> str:
    """Canonical SMILES without hydrogens or stereo (3D perception assigns no stereo tags)."""
    return Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=False)


def heavy_atom_rmsd(probe: Chem.Mol, ref: Chem.Mol) -> float:
    """Best RMSD over heavy atoms after optimal alignment, symmetry-aware (RDKit GetBestRMS)."""
    from rdkit.Chem import rdMolAlign

    return float(rdMolAlign.GetBestRMS(Chem.RemoveHs(probe), Chem.RemoveHs(ref)))


def with_positions(mol: Chem.Mol, positions: Sequence[np.ndarray]) -> Chem.Mol:
    """A copy of ``mol`` whose conformers are ``positions`` (each ``[N, 3]``)."""
    out = Chem.Mol(mol)
    out.RemoveAllConformers()
    for p in positions:
        conf = Chem.Conformer(out.GetNumAtoms())
        for i, v in enumerate(np.asarray(p, dtype=np.float64)):
            conf.SetAtomPosition(i, v.tolist())
        out.AddConformer(conf, assignId=True)
    return out
