"""Your own molecule files: SDF / XYZ datasets (file or folder) for both modalities, the file's geometry
kept, every skipped molecule counted and named, ``elements=``, and clear errors for empty or flat files."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polydiff import plugins
from polydiff.app.cli import main
from polydiff.diffusion.state import remove_com

pytest.importorskip("rdkit")
from rdkit import Chem
from rdkit.Chem import AllChem

from polydiff_molecule import MoleculeError, decode
from polydiff_molecule.files import load_sdf, load_sdf_conformers, load_xyz, save_conformers
from polydiff_molecule.io import read_sdf

LIGANDS = {"aspirin": "CC(=O)Oc1ccccc1C(=O)O", "paracetamol": "CC(=O)Nc1ccc(O)cc1",
           "nicotine": "CN1CCC[C@H]1c1cccnc1", "caffeine": "Cn1cnc2c1c(=O)n(C)c(=O)n2C",
           "iodo": "Ic1ccc(O)cc1", "boronic": "OB(O)c1ccccc1"}


def _embedded(smiles: str, seed: int) -> Chem.Mol:
    m = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert AllChem.EmbedMolecule(m, randomSeed=seed) == 0
    return m


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An SDF of ligands as RDKit writes them (hydrogens removed), the same with hydrogens, a 2-D drawing,
    an empty file and a folder of XYZ files (one flattened ethanol, one benzene lying in z = 0)."""
    root = tmp_path_factory.mktemp("own")
    with Chem.SDWriter(str(root / "ligands.sdf")) as w, Chem.SDWriter(str(root / "ligands_h.sdf")) as wh:
        for i, (name, smi) in enumerate(LIGANDS.items()):
            m = _embedded(smi, i + 1)
            m.SetProp("_Name", name)
            wh.write(m)
            w.write(Chem.RemoveHs(m))
    flat = Chem.MolFromSmiles("CC(C)Cc1ccc(cc1)C(C)C(=O)O")
    AllChem.Compute2DCoords(flat)
    flat.SetProp("_Name", "ibuprofen_2d")
    with Chem.SDWriter(str(root / "flat.sdf")) as w:
        w.write(flat)
    (root / "empty.sdf").write_text("")
    (root / "xyz").mkdir()
    for i, name in enumerate(("aspirin", "nicotine")):
        Chem.MolToXYZFile(_embedded(LIGANDS[name], i + 7), str(root / "xyz" / f"{name}.xyz"))
    eth = _embedded("CCO", 3)
    pos = eth.GetConformer().GetPositions()
    pos[:, 2] = 0.0
    (root / "xyz" / "ethanol_flat.xyz").write_text(
        f"{len(pos)}\nflat\n" + "".join(f"{a.GetSymbol()} {x:.5f} {y:.5f} 0.0\n" for a, (x, y, _) in
                                        zip(eth.GetAtoms(), pos, strict=True)))
    ring = [(np.cos(k * np.pi / 3), np.sin(k * np.pi / 3)) for k in range(6)]
    atoms = [("C", 1.39 * c, 1.39 * s) for c, s in ring] + [("H", 2.47 * c, 2.47 * s) for c, s in ring]
    (root / "xyz" / "benzene.xyz").write_text("12\nplanar\n" + "".join(f"{e} {x:.5f} {y:.5f} 0.00000\n"
                                                                       for e, x, y in atoms))
    return root


def test_sdf_keeps_the_file_geometry_adds_hydrogens_and_names_what_it_skips(files) -> None:
    ds = load_sdf(path=str(files / "ligands.sdf"))
    assert len(ds) == 4  # iodo and boronic hold I and B, outside the default vocabulary
    assert "2 skipped for elements outside the vocabulary (B: 1, I: 1; add them with elements=B,I): boronic, iodo" \
        in ds.summary
    assert "hydrogens added to 6 molecule(s)" in ds.summary
    file_mols = read_sdf(files / "ligands.sdf")
    aspirin = decode(ds.get_batch(torch.tensor([0])))[0]
    heavy = np.array([e != "H" for e in aspirin.elements])
    ref = file_mols[0].GetConformer().GetPositions()  # the file's heavy atoms: first, in order, after AddHs
    got = aspirin.positions[heavy]
    np.testing.assert_allclose(got - got.mean(0), ref - ref.mean(0), atol=1e-4)  # not re-embedded
    small = load_sdf(path=str(files / "ligands.sdf"), max_heavy_atoms=12)
    assert len(small) == 2 and "2 skipped above max_heavy_atoms=12" in small.summary
    assert "aspirin (13)" in small.summary and "caffeine (14)" in small.summary


def test_elements_option_extends_the_vocabulary_and_decodes_back(files) -> None:
    ds = load_sdf(path=str(files / "ligands_h.sdf"), elements="I,B")
    assert len(ds) == 6 and ds.elements[-2:] == ("B", "I") and "skipped" not in ds.summary
    back = decode(ds.get_batch(torch.arange(len(ds))))
    want = [tuple(a.GetSymbol() for a in m.GetAtoms()) for m in read_sdf(files / "ligands_h.sdf")]
    assert [m.elements for m in back] == want
    with pytest.raises(MoleculeError, match="'Xx' is not an element symbol"):
        load_sdf(path=str(files / "ligands_h.sdf"), elements="Xx")


def test_xyz_folder_skips_flat_geometry_but_keeps_a_planar_molecule(files) -> None:
    ds = load_xyz(path=str(files / "xyz"))
    assert len(ds) == 3 and "3 XYZ file(s)" not in ds.summary and "4 XYZ file(s)" in ds.summary
    assert "1 with flat 2-D coordinates skipped" in ds.summary and "ethanol_flat" in ds.summary
    names = sorted(f.stem for f in (files / "xyz").glob("*.xyz") if f.stem != "ethanol_flat")
    assert names == ["aspirin", "benzene", "nicotine"]
    lines = (files / "xyz" / "aspirin.xyz").read_text().splitlines()[2:]
    file_pos = torch.tensor([[float(v) for v in line.split()[1:4]] for line in lines])
    mask = torch.ones(1, len(file_pos), 1)
    got = decode(ds.get_batch(torch.tensor([0])))[0].positions
    np.testing.assert_allclose(got, remove_com(file_pos[None], mask)[0].numpy(), atol=1e-4)


def test_empty_and_flat_files_raise_the_plugin_error(files) -> None:
    with pytest.raises(MoleculeError, match="empty.sdf is empty"):
        load_sdf(path=str(files / "empty.sdf"))
    with pytest.raises(MoleculeError, match="flat 2-D coordinates.*ibuprofen_2d"):
        load_sdf(path=str(files / "flat.sdf"))
    with pytest.raises(MoleculeError, match="flat 2-D coordinates"):
        load_sdf_conformers(path=str(files / "flat.sdf"))
    with pytest.raises(MoleculeError, match="does not exist"):
        load_sdf(path=str(files / "nope.sdf"))
    with pytest.raises(MoleculeError, match="needs a file or a folder"):
        load_sdf()


def test_registered_for_both_modalities(files) -> None:
    for modality in ("molecule", "conformer"):
        for name in ("sdf", "xyz"):
            assert "path" in plugins.get_dataset(modality, name).options
    conf = plugins.get_dataset("conformer", "sdf").build(path=str(files / "ligands_h.sdf"))
    assert len(conf) == 4 and "(B: 1, I: 1)" in conf.summary
    mol = Chem.MolFromMolBlock(Chem.MolToMolBlock(conf.mols[0]), removeHs=False)
    assert mol.GetNumBonds() == conf.mols[0].GetNumBonds()


def test_conformer_samples_are_written_as_sdf_with_their_graph(files, tmp_path) -> None:
    conf = load_sdf_conformers(path=str(files / "ligands_h.sdf"))
    batch = conf.get_batch(torch.arange(len(conf)))
    (path,) = save_conformers(batch, tmp_path)
    written = list(Chem.SDMolSupplier(str(path), removeHs=False))
    assert len(written) == len(conf) and all(m is not None for m in written)  # sanitised: graph and H intact
    for m, ref in zip(written, conf.mols, strict=True):
        assert Chem.MolToSmiles(Chem.RemoveHs(m), isomericSmiles=False) == \
            Chem.MolToSmiles(Chem.RemoveHs(ref), isomericSmiles=False)
        pos, ref_pos = m.GetConformer().GetPositions(), ref.GetConformer().GetPositions()
        np.testing.assert_allclose(pos - pos.mean(0), ref_pos - ref_pos.mean(0), atol=1e-4)


def test_cli_trains_a_conformer_model_on_an_sdf_and_samples_sdf(files, tmp_path, capsys) -> None:
    out = tmp_path / "run"
    tiny = ["model.scalars=8", "model.vectors=2", "model.layers=1", "model.width=16", "model.basis=8",
            "train.steps=2", "train.batch_size=4", "train.warmup_steps=1", "data.holdout=0"]
    assert main(["train", "conformer", "data.dataset=sdf", f"data.path={files / 'ligands_h.sdf'}", *tiny,
                 "--out", str(out), "--quiet"]) == 0
    assert "polydiff: conformer 'ligands_h.sdf'" in capsys.readouterr().err
    assert main(["sample", str(out), "--n", "3", "--steps", "2", "--quiet"]) == 0
    sdf = next((out / "samples").rglob("conformers.sdf"))
    mols = read_sdf(sdf, sanitize=False)
    assert len(mols) == 3 and all(m.GetNumBonds() > 0 for m in mols)


def test_two_vocabularies_with_one_packed_width_are_an_error_not_a_guess(files, monkeypatch) -> None:
    from polydiff_molecule import data

    monkeypatch.setattr(data, "_VOCABULARIES", {})  # this test's datasets only
    mols = read_sdf(files / "ligands_h.sdf")[:2]
    arrays = [data.arrays_of(m) for m in mols]
    plain = data.MoleculeDataset(arrays, ["a", "b"], max_atoms=30)  # 30 atoms x (3 + 9 + 1) = 390
    assert decode(plain.get_batch(torch.tensor([0])))[0].elements == arrays[0].elements
    data.MoleculeDataset(arrays, ["a", "b"], max_atoms=26, elements=data.vocabulary("I,B"))  # 26 x 15 = 390
    with pytest.raises(MoleculeError, match="fit 2 loaded vocabularies"):
        decode(plain.get_batch(torch.tensor([0])))
