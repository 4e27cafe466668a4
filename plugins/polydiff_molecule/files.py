"""Your own molecule files as datasets: ``sdf`` and ``xyz`` (a file or a folder of them), for the
``molecule`` and the ``conformer`` modalities. The geometry is the file's (never re-embedded).

What is kept, and what is not (every case is counted and named in the one-line load summary):

* SDF records RDKit cannot read, and XYZ frames whose bonds RDKit cannot perceive from the
  coordinates (``rdDetermineBonds``; a charged XYZ molecule, a broken geometry), are skipped;
* flat coordinates (an SDF marked 2-D, or all z = 0 in a molecule with a tetrahedral atom) are
  skipped: a 2-D drawing cannot train a 3-D model (embed it instead: ``data.dataset=smiles``);
* molecules with elements outside the vocabulary (``elements=`` extends it, ``molecule`` modality)
  or more than ``max_heavy_atoms`` heavy atoms (0: no limit) are skipped;
* ``hydrogens = "add"`` (SDF): records drawn without hydrogens get them, placed by RDKit from the
  file's heavy-atom geometry (the state has every atom explicit); ``"keep"``: as in the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rdkit import Chem
from rdkit.Chem import rdDetermineBonds

from polydiff import report

from .chem import AtomArrays, MoleculeError, atoms_only, perceive
from .conformers import ConformerDataset
from .data import ELEMENTS, MoleculeDataset, _listed, from_mols, screen, vocabulary
from .io import read_sdf_records, read_xyz

SDF_SUFFIXES = (".sdf", ".sd", ".mol")
HYDROGENS = ("add", "keep")


def molecule_files(path: str, suffixes: tuple[str, ...], dataset: str) -> list[Path]:
    """``path`` itself, or the files with ``suffixes`` in the folder ``path`` (sorted, not recursive)."""
    if not path:
        raise MoleculeError(f"the {dataset} dataset needs a file or a folder: set data.path=...")
    p = Path(path).expanduser()
    if p.is_file():
        return [p]
    if not p.is_dir():
        raise MoleculeError(f"{p} does not exist (data.path must be a {'/'.join(suffixes)} file or a folder of them)")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in suffixes)
    if not files:
        raise MoleculeError(f"no {'/'.join(suffixes)} files in {p}")
    return files


def _label(mol: Chem.Mol, fallback: str) -> str:
    name = mol.GetProp("_Name").strip() if mol.HasProp("_Name") else ""
    return name or fallback


def is_flat(mol: Chem.Mol) -> bool:
    """A 2-D drawing: a conformer marked 2-D, or all z = 0 where an atom has four or more neighbours
    (a tetrahedral centre cannot lie in a plane; a planar molecule at z = 0 is real 3-D data)."""
    for conf in mol.GetConformers():
        if not conf.Is3D():
            return True
        z = np.asarray(conf.GetPositions())[:, 2]
        if np.allclose(z, 0.0, atol=1e-4) and any(a.GetTotalDegree() >= 4 for a in mol.GetAtoms()):
            return True
    return False


def _flat_arrays(arrays: AtomArrays) -> bool:
    """:func:`is_flat` for bare XYZ atoms: all z = 0 and an atom with four or more neighbours by distance."""
    if not np.allclose(arrays.positions[:, 2], 0.0, atol=1e-4):
        return False
    mol = atoms_only(arrays)
    rdDetermineBonds.DetermineConnectivity(mol, useHueckel=False)
    return any(a.GetDegree() >= 4 for a in mol.GetAtoms())


def read_molecules(path: str, kind: str, *, hydrogens: str = "add", limit: int = 0) -> tuple[list[Chem.Mol], list[str]]:
    """Molecules (explicit H, a conformer each) from SDF or XYZ files, and notes of what was skipped."""
    if hydrogens not in HYDROGENS:
        raise MoleculeError(f"hydrogens must be one of {', '.join(HYDROGENS)}, got {hydrogens!r}")
    if limit < 0:
        raise MoleculeError(f"limit must be >= 0 (0 = every molecule), got {limit}")
    files = molecule_files(path, SDF_SUFFIXES if kind == "sdf" else (".xyz",), kind)
    mols: list[Chem.Mol] = []
    unreadable: list[str] = []
    flat: list[str] = []
    added = 0
    for f in files:
        where = f.name if len(files) > 1 or kind == "xyz" else ""
        if kind == "sdf":
            found, problems = read_sdf_records(f)
            unreadable += [f"{where} {p}".strip() for p in problems]
            named = [(m, _label(m, f"{where}#{i + 1}")) for i, m in enumerate(found)]
        else:
            named = []
            for i, arrays in enumerate(read_xyz(f)):
                label = f.stem if i == 0 else f"{f.stem}#{i + 1}"
                if _flat_arrays(arrays):
                    flat.append(label)
                    continue
                perceived = perceive(arrays)
                if not perceived.valid:
                    unreadable.append(f"{label}: no valid bonds perceived from the coordinates")
                    continue
                mol = Chem.Mol(perceived.mol)
                Chem.SanitizeMol(mol)
                mol.SetProp("_Name", label)
                named.append((mol, label))
        for mol, label in named:
            if is_flat(mol):
                flat.append(label)
                continue
            if hydrogens == "add" and any(a.GetTotalNumHs() for a in mol.GetAtoms()):
                mol = Chem.AddHs(mol, addCoords=True)
                added += 1
            mol.SetProp("_Name", label)
            mols.append(mol)
    notes = [f"{len(files)} {kind.upper()} file(s) from {path}"]
    if limit and len(mols) > limit:
        notes.append(f"first {limit} of {len(mols)} molecules kept (limit={limit})")
        mols = mols[:limit]
    if added:
        notes.append(f"hydrogens added to {added} molecule(s) drawn without them (RDKit, from the file's heavy-atom "
                     "geometry; hydrogens=keep to keep the file's atoms)")
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable record(s) skipped: {_listed(unreadable, 4)}")
    if flat:
        notes.append(f"{len(flat)} with flat 2-D coordinates skipped (a 3-D model needs 3-D geometry; embed them "
                     f"with data.dataset=smiles): {_listed(flat)}")
    if not mols:
        raise MoleculeError(f"{path}: no usable 3-D molecule; " + "; ".join(notes[1:]))
    return mols, notes


def load_sdf(*, path: str = "", max_heavy_atoms: int = 0, elements: str = "", hydrogens: str = "add",
             limit: int = 0) -> MoleculeDataset:
    """``data.dataset = "sdf"`` (molecule): every record of an SDF file, or of the SDF/MOL files in a folder,
    one sample per record, with the file's coordinates and formal charges. ``elements``: symbols added
    to the vocabulary (``"I,B"``)."""
    mols, notes = read_molecules(path, "sdf", hydrogens=hydrogens, limit=limit)
    return from_mols(mols, max_heavy_atoms=max_heavy_atoms, name=Path(path).name, elements=vocabulary(elements),
                     notes=notes)


def load_xyz(*, path: str = "", max_heavy_atoms: int = 0, elements: str = "", limit: int = 0) -> MoleculeDataset:
    """``data.dataset = "xyz"`` (molecule): every frame of an XYZ file, or of the XYZ files in a folder
    (all atoms explicit, neutral; bonds perceived from the coordinates for SMILES and novelty)."""
    mols, notes = read_molecules(path, "xyz", hydrogens="keep", limit=limit)
    return from_mols(mols, max_heavy_atoms=max_heavy_atoms, name=Path(path).name, elements=vocabulary(elements),
                     notes=notes)


def conformers_of(mols: list[Chem.Mol], notes: list[str], *, max_heavy_atoms: int, name: str) -> ConformerDataset:
    """A conformer dataset of the molecules in the vocabulary and size limit (the rest counted)."""
    kept, dropped = screen(mols, ELEMENTS, max_heavy_atoms, extendable=False)  # the graph's vocabulary is fixed
    if not kept:
        raise MoleculeError(f"{name}: no molecule left of {len(mols)}: " + "; ".join(dropped))
    dataset = ConformerDataset(kept)
    sizes = [m.GetNumAtoms() for m in kept]
    summary = "; ".join([f"conformer {name!r}", *notes, f"{len(dataset)} conformer(s) of {len(set(dataset.smiles))} "
                         f"distinct molecule(s), {len(kept)} record(s) kept of {len(mols)}, {min(sizes)}-{max(sizes)} "
                         f"atoms (padded to {dataset.max_atoms}), "
                         f"vocabulary {','.join(ELEMENTS)}", *dropped])
    setattr(dataset, "summary", summary)  # noqa: B010  (ConformerDataset declares no summary of its own)
    report(summary)
    return dataset


def load_sdf_conformers(*, path: str = "", max_heavy_atoms: int = 0, hydrogens: str = "add",
                        limit: int = 0) -> ConformerDataset:
    """``data.dataset = "sdf"`` (conformer): the records' graphs and 3-D coordinates, one sample each."""
    mols, notes = read_molecules(path, "sdf", hydrogens=hydrogens, limit=limit)
    return conformers_of(mols, notes, max_heavy_atoms=max_heavy_atoms, name=Path(path).name)


def load_xyz_conformers(*, path: str = "", max_heavy_atoms: int = 0, limit: int = 0) -> ConformerDataset:
    """``data.dataset = "xyz"`` (conformer): graphs perceived from the coordinates, one sample per frame."""
    mols, notes = read_molecules(path, "xyz", hydrogens="keep", limit=limit)
    return conformers_of(mols, notes, max_heavy_atoms=max_heavy_atoms, name=Path(path).name)


def save_conformers(samples: object, directory: Path) -> list[Path]:
    """Write conformer samples as ``conformers.sdf``: each sample's graph (``cond["atom_types"]``,
    ``cond["edges"]``: bond classes 1-4) with its generated coordinates, named ``sample i: SMILES``
    (the graph's heavy-atom SMILES, stereochemistry not given). Formal charges are not part
    of the graph: a record RDKit cannot sanitise without them is written unsanitised (aromatic bonds
    kept as bond type 4)."""
    from polydiff.diffusion import Batch

    from .conformer_metrics import heavy_graph
    from .conformers import POS_SPEC

    assert isinstance(samples, Batch)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    pos = POS_SPEC.unpack(samples.x.detach().float().cpu())["pos"]
    types, edges = samples.cond["atom_types"].cpu(), samples.cond["edges"].cpu()
    orders = {1: Chem.BondType.SINGLE, 2: Chem.BondType.DOUBLE, 3: Chem.BondType.TRIPLE, 4: Chem.BondType.AROMATIC}
    path = directory / "conformers.sdf"
    with Chem.SDWriter(str(path)) as w:
        for i in range(len(samples)):
            real = types[i].sum(-1) > 0
            n = int(real.sum())
            elements = tuple(ELEMENTS[int(t)] for t in types[i][:n].argmax(-1))
            mol = atoms_only_mol(elements, pos[i][:n].numpy())
            for a in range(n):
                for b in range(a + 1, n):
                    c = int(edges[i, a, b])
                    if c in orders:
                        mol.AddBond(a, b, orders[c])
            out = mol.GetMol()
            out.SetProp("_Name", f"sample {i}: {heavy_graph(types[i], edges[i])[0]}")  # which molecule it is
            try:
                Chem.SanitizeMol(out)
                w.SetKekulize(True)
            except Exception:  # RDKit raises several types; charges are not in the graph
                w.SetKekulize(False)
            w.write(out)
    return [path]


def atoms_only_mol(elements: tuple[str, ...], positions: np.ndarray) -> Chem.RWMol:
    return atoms_only(AtomArrays(elements, np.asarray(positions, np.float32), np.zeros(len(elements), np.float32)))
