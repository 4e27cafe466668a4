"""Molecule files: SDF / MOL / XYZ readers and writers (RDKit), and the CML of Debian's
``chemical-structures-data``. Readers raise :class:`~polydiff_molecule.chem.MoleculeError` naming the
file and the record that could not be read."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from rdkit import Chem

from .chem import AtomArrays, MoleculeError, atoms_only

CML_NS = "{http://www.xml-cml.org/schema}"
_CML_ORDERS = {"1": Chem.BondType.SINGLE, "2": Chem.BondType.DOUBLE, "3": Chem.BondType.TRIPLE,
               "A": Chem.BondType.AROMATIC, "S": Chem.BondType.SINGLE, "D": Chem.BondType.DOUBLE,
               "T": Chem.BondType.TRIPLE}


def _exists(path: str | Path) -> Path:
    p = Path(path)
    if not p.is_file():
        raise MoleculeError(f"no such molecule file: {p}")
    return p


def read_sdf(path: str | Path, *, remove_hs: bool = False, sanitize: bool = True) -> list[Chem.Mol]:
    """All records of an SDF (or a single MOL block), hydrogens kept, each with its 3D conformer.
    ``sanitize=False`` reads chemically invalid records too (generated samples are written as they are)."""
    mols, problems = read_sdf_records(path, remove_hs=remove_hs, sanitize=sanitize)
    if problems:
        raise MoleculeError(f"{path}: {problems[0]}")
    return mols


def read_sdf_records(path: str | Path, *, remove_hs: bool = False,
                     sanitize: bool = True) -> tuple[list[Chem.Mol], list[str]]:
    """The readable records of an SDF and one sentence per unreadable one (``"record 3 (name): ..."``).

    Raises:
        MoleculeError: the file is empty or holds no readable record at all.
    """
    p = _exists(path)
    if p.stat().st_size == 0:
        raise MoleculeError(f"{p} is empty: an SDF holds MOL blocks, each ending with a '$$$$' line")
    try:
        supplier = Chem.SDMolSupplier(str(p), removeHs=remove_hs, sanitize=sanitize)
    except OSError as e:
        raise MoleculeError(f"{p}: RDKit cannot open it as an SDF ({e})") from None
    mols, problems = [], []
    expected, seen = len(supplier), 0  # counted before iterating: afterwards RDKit reports what it yielded
    for i, mol in enumerate(supplier):
        seen = i + 1
        if mol is None:
            problems.append(f"record {i + 1} is not a valid MOL block (RDKit could not parse or sanitise it)")
        elif mol.GetNumConformers() == 0:
            problems.append(f"record {i + 1} has no coordinates")
        else:
            mols.append(mol)
    if expected > seen:  # RDKit's iterator stops early at a broken last record: count it, never drop it
        problems.append(f"{expected - seen} record(s) after record {seen} could not be read")
    if not mols:
        raise MoleculeError(f"{p}: no molecule record could be read (is it an SDF/MOL file?)"
                            + (f"; {problems[0]}" if problems else ""))
    return mols, problems


def read_mol(path: str | Path) -> Chem.Mol:
    """One MOL file."""
    p = _exists(path)
    mol = Chem.MolFromMolFile(str(p), removeHs=False)
    if mol is None:
        raise MoleculeError(f"{p}: not a valid MOL file (RDKit could not parse or sanitise it)")
    return mol


def write_sdf(mols: Iterable[Chem.Mol], path: str | Path, *, names: Iterable[str] | None = None) -> Path:
    """Write molecules (all their conformers) to one SDF; returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    name_list = list(names) if names is not None else None
    with Chem.SDWriter(str(p)) as w:
        for i, mol in enumerate(mols):
            if name_list is not None:
                mol.SetProp("_Name", name_list[i])
            for conf in mol.GetConformers():
                w.write(mol, confId=conf.GetId())
    return p


def read_xyz(path: str | Path) -> list[AtomArrays]:
    """A (multi-frame) XYZ file: per frame a count line, a comment line and ``El x y z`` lines."""
    p = _exists(path)
    lines = p.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            n = int(lines[i].split()[0])
        except ValueError:
            raise MoleculeError(f"{p}:{i + 1}: expected an atom count, got {lines[i]!r}") from None
        body = lines[i + 2:i + 2 + n]
        if len(body) < n:
            raise MoleculeError(f"{p}: frame at line {i + 1} promises {n} atoms, the file holds {len(body)}")
        els, pos = [], []
        for j, line in enumerate(body):
            parts = line.split()
            try:
                els.append(parts[0].capitalize())
                pos.append([float(v) for v in parts[1:4]])
                Chem.Atom(els[-1])  # validates the symbol
            except (IndexError, ValueError, RuntimeError):
                raise MoleculeError(f"{p}:{i + 3 + j}: expected 'Element x y z', got {line!r}") from None
        out.append(AtomArrays(tuple(els), np.asarray(pos, np.float32).reshape(n, 3), np.zeros(n, np.float32)))
        i += 2 + n
    if not out:
        raise MoleculeError(f"{p}: no XYZ frames found")
    return out


def write_xyz(molecules: Iterable[AtomArrays], path: str | Path) -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w") as f:
        for k, m in enumerate(molecules):
            f.write(f"{len(m)}\nmolecule {k}\n")
            for el, (x, y, z) in zip(m.elements, m.positions.tolist(), strict=True):
                f.write(f"{el:<2} {x: .6f} {y: .6f} {z: .6f}\n")
    return p


def read_cml(path: str | Path) -> Chem.Mol:
    """A CML molecule (atoms with ``x3/y3/z3``, optional ``formalCharge``, bonds with ``order``), as
    written by Debian's chemical-structures-data."""
    p = _exists(path)
    try:
        root = ET.parse(p).getroot()
    except ET.ParseError as e:
        raise MoleculeError(f"{p}: not well-formed XML ({e})") from None
    atoms = root.findall(f".//{CML_NS}atom")
    if not atoms:
        raise MoleculeError(f"{p}: no <atom> elements (not a CML molecule?)")
    ids, els, pos, charges = [], [], [], []
    for a in atoms:
        try:
            ids.append(a.attrib["id"])
            els.append(a.attrib["elementType"])
            pos.append([float(a.attrib[k]) for k in ("x3", "y3", "z3")])
            charges.append(float(a.attrib.get("formalCharge", 0)))
        except (KeyError, ValueError):
            raise MoleculeError(f"{p}: atom {a.attrib.get('id', '?')} lacks elementType or 3D coordinates "
                                "(x3, y3, z3)") from None
    mol = atoms_only(AtomArrays(tuple(els), np.asarray(pos, np.float32), np.asarray(charges, np.float32)))
    index = {k: i for i, k in enumerate(ids)}
    for b in root.findall(f".//{CML_NS}bond"):
        refs = b.attrib.get("atomRefs2", "").split()
        order = _CML_ORDERS.get(b.attrib.get("order", "1"))
        if len(refs) != 2 or order is None or refs[0] not in index or refs[1] not in index:
            raise MoleculeError(f"{p}: bad bond {b.attrib}")
        mol.AddBond(index[refs[0]], index[refs[1]], order)
    out = mol.GetMol()
    try:
        Chem.SanitizeMol(out)
    except Exception as e:
        raise MoleculeError(f"{p}: RDKit cannot sanitise the molecule: {e}") from None
    return out
