"""Chemistry and files: SMILES, ETKDG, bond perception, SDF / MOL / XYZ / CML readers and writers."""

import numpy as np
import pytest
import torch
from rdkit import Chem

from polydiff_molecule.chem import AtomArrays, MoleculeError, arrays_of, embed, mol_from_smiles, perceive
from polydiff_molecule.data import SPEC, decode, embed_smiles, encode, load_chemical_structures
from polydiff_molecule.io import read_cml, read_mol, read_sdf, read_xyz, write_sdf, write_xyz


def test_invalid_smiles_names_the_string():
    with pytest.raises(MoleculeError, match=r"invalid SMILES 'C1CC'"):
        mol_from_smiles("C1CC")
    with pytest.raises(MoleculeError, match="invalid SMILES"):
        embed_smiles(["CCO", "c1ccccc"], cache=False, progress=False)  # checked before any embedding


def test_etkdg_is_reproducible_and_cached():
    a = embed_smiles(["CCO", "c1ccncc1"], seed=3, progress=False)
    b = embed_smiles(["CCO", "c1ccncc1"], seed=3, progress=False)  # from the SDF cache
    c = embed_smiles(["CCO", "c1ccncc1"], seed=3, cache=False, progress=False)
    for x, y, z in zip(a, b, c, strict=True):
        assert np.allclose(arrays_of(x).positions, arrays_of(y).positions, atol=1e-4)
        assert np.allclose(arrays_of(x).positions, arrays_of(z).positions, atol=1e-4)
    d = embed_smiles(["CCO"], seed=4, cache=False, progress=False)[0]
    assert not np.allclose(arrays_of(a[0]).positions, arrays_of(d).positions, atol=1e-2)


def test_perception_accepts_real_geometry_and_rejects_random():
    mols = embed_smiles(["CC(=O)O", "c1ccccc1O", "C#N", "C[NH3+]"], progress=False)
    for mol in mols:
        p = perceive(arrays_of(mol))
        assert p.valid and p.stable_atoms.all(), Chem.MolToSmiles(mol)
        assert p.smiles == Chem.MolToSmiles(Chem.RemoveHs(mol), isomericSmiles=False)
    rng = np.random.default_rng(0)
    a = arrays_of(mols[1])
    noisy = [perceive(AtomArrays(a.elements, rng.normal(size=a.positions.shape).astype(np.float32) * 1.5, a.charges))
             for _ in range(20)]
    assert sum(p.valid for p in noisy) <= 2 and np.mean([p.stable_atoms.mean() for p in noisy]) < 0.7
    diverged = a.positions.copy()
    diverged[0, 0] = np.nan  # a sample that blew up scores as invalid, it does not crash the metrics
    for bad in (AtomArrays(a.elements, diverged, a.charges), AtomArrays(a.elements, a.positions, a.charges * np.nan)):
        p = perceive(bad)
        assert not p.valid and p.smiles is None and p.stable_atoms.shape == (len(a),) and not p.stable_atoms.any()


def test_encode_decode_round_trip_with_zero_com_and_zero_padding():
    mols = [arrays_of(m) for m in embed_smiles(["C", "CCO", "C[NH3+]"], progress=False)]
    fields = encode(mols, 12)
    x = SPEC.pack(fields)
    padding = SPEC.padding_mask(torch.tensor([len(m) for m in mols]), 12)
    assert (x * (1 - padding)).abs().max() == 0
    pos, real = fields["pos"], SPEC.unpack(padding)["pos"]
    com = (pos * real).sum(1) / real.sum(1)
    assert com.abs().max() < 1e-5
    from polydiff.diffusion.state import Batch

    back = decode(Batch(x=x, padding=padding))
    for m, b in zip(mols, back, strict=True):
        assert m.elements == b.elements and np.array_equal(m.charges, b.charges)
        d = lambda p: np.linalg.norm(p[:, None] - p[None], axis=-1)  # noqa: E731
        assert np.allclose(d(m.positions), d(b.positions), atol=1e-5)  # same geometry, CoM moved
    assert back[2].charges.tolist().count(1.0) == 1  # the ammonium's formal charge survives


def test_sdf_mol_xyz_round_trips(tmp_path):
    mols = embed_smiles(["CCO", "c1ccoc1"], progress=False)
    path = write_sdf(mols, tmp_path / "m.sdf", names=["ethanol", "furan"])
    back = read_sdf(path)
    assert [m.GetProp("_Name") for m in back] == ["ethanol", "furan"]
    for a, b in zip(mols, back, strict=True):
        assert Chem.MolToSmiles(a) == Chem.MolToSmiles(b)
        assert np.allclose(arrays_of(a).positions, arrays_of(b).positions, atol=1e-3)  # 4 decimals in SDF
    Chem.MolToMolFile(mols[0], str(tmp_path / "e.mol"))
    assert read_mol(tmp_path / "e.mol").GetNumAtoms() == mols[0].GetNumAtoms()
    arrays = [arrays_of(m) for m in mols]
    frames = read_xyz(write_xyz(arrays, tmp_path / "m.xyz"))
    assert [f.elements for f in frames] == [a.elements for a in arrays]
    assert np.allclose(frames[1].positions, arrays[1].positions, atol=1e-5)


def test_bad_files_give_clear_errors(tmp_path):
    bad = tmp_path / "bad.sdf"
    bad.write_text("not a molecule\n$$$$\n")
    with pytest.raises(MoleculeError, match="record 1 is not a valid MOL block"):
        read_sdf(bad)
    with pytest.raises(MoleculeError, match="no such molecule file"):
        read_sdf(tmp_path / "missing.sdf")
    (tmp_path / "bad.xyz").write_text("2\ncomment\nC 0 0 0\nXx 1 1\n")
    with pytest.raises(MoleculeError, match=r"bad.xyz:4: expected 'Element x y z'"):
        read_xyz(tmp_path / "bad.xyz")
    (tmp_path / "bad.cml").write_text("<molecule><atomArray>")
    with pytest.raises(MoleculeError, match="not well-formed XML"):
        read_cml(tmp_path / "bad.cml")


CML = """<?xml version="1.0"?>
<molecule xmlns="http://www.xml-cml.org/schema" id="water">
  <atomArray>
    <atom id="a1" elementType="O" x3="0.0" y3="0.0" z3="0.117"/>
    <atom id="a2" elementType="H" x3="0.0" y3="0.757" z3="-0.467"/>
    <atom id="a3" elementType="H" x3="0.0" y3="-0.757" z3="-0.467"/>
  </atomArray>
  <bondArray><bond atomRefs2="a1 a2" order="1"/><bond atomRefs2="a1 a3" order="1"/></bondArray>
</molecule>"""


def test_cml_reader_and_missing_debian_data(tmp_path):
    (tmp_path / "water.cml").write_text(CML)
    mol = read_cml(tmp_path / "water.cml")
    assert Chem.MolToSmiles(Chem.RemoveHs(mol)) == "O" and mol.GetNumAtoms() == 3
    ds = load_chemical_structures(root=str(tmp_path))
    assert len(ds) == 1 and ds.smiles == ["O"]
    with pytest.raises(MoleculeError, match="apt-get install chemical-structures-data"):
        load_chemical_structures(root=str(tmp_path / "nowhere"))


def test_unknown_element_is_named():
    mol = embed(mol_from_smiles("[SiH4]"), seed=0)
    with pytest.raises(MoleculeError, match="element 'Si' is not in the vocabulary"):
        encode([arrays_of(mol)], 8)
