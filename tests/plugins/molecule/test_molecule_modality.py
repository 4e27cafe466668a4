"""The modality through the conformance kit; metrics against baselines; masks; pictures and files."""

import numpy as np
import torch

from polydiff import plugins
from polydiff.diffusion.state import Batch
from polydiff.testing import check_modality
from polydiff_molecule import metrics as mm
from polydiff_molecule.conformers import load_conformers
from polydiff_molecule.data import SPEC
from polydiff_molecule.io import read_sdf
from polydiff_molecule.masks import atom_subset, positions_only
from polydiff_molecule.plots import plot_molecules, save_molecules

PNG = b"\x89PNG\r\n\x1a\n"


def test_modality_conforms():
    report = check_modality("molecule", dataset_options={"limit": 12})
    assert report["backbone"] == "e3nn" and report["metric"] == "validity" and report["metric_value"] == 1.0


def _scrambled(batch: Batch, seed: int) -> Batch:
    fields = SPEC.unpack(batch.x.clone())
    fields["pos"] = torch.randn(fields["pos"].shape, generator=torch.Generator().manual_seed(seed)) * 1.2
    return Batch(x=SPEC.project(SPEC.pack(fields), batch.padding), padding=batch.padding)


def test_metrics_separate_data_from_random_coordinates(small):
    data = small.get_batch(torch.arange(len(small)))
    good = {name: getattr(mm, name)(data, small) for name in ("atom_stability", "molecule_stability", "validity")}
    assert good == {"atom_stability": 1.0, "molecule_stability": 1.0, "validity": 1.0}
    assert mm.uniqueness(data, small) == 1.0 and mm.novelty(data, small) == 0.0  # the data is not novel
    assert mm.distance_w1(data, small) < 1e-6 and mm.bond_length_w1(data, small) < 1e-6
    rand = _scrambled(data, 0)
    assert mm.validity(rand, small) < 0.3 and mm.atom_stability(rand, small) < 0.8
    assert mm.molecule_stability(rand, small) < 0.3
    assert mm.distance_w1(rand, small) > 0.1


def test_coverage_matching_of_etkdg_against_itself():
    ds = load_conformers(smiles="CCCCO,CC(=O)OCC", n_conformers=4)
    from rdkit import Chem

    def confs(mol):
        out = []
        for c in mol.GetConformers():
            m = Chem.Mol(mol)
            m.RemoveAllConformers()
            m.AddConformer(Chem.Conformer(c), assignId=True)
            out.append(m)
        return out

    refs = confs(ds.mols[0])
    cov, mat = mm.coverage_matching(refs, refs, threshold=0.5)
    assert cov == 1.0 and mat < 1e-3  # every reference matches itself
    cov2, mat2 = mm.coverage_matching(refs[:1], refs, threshold=0.01)  # one conformer cannot cover distinct ones
    rmsd = [mm.heavy_atom_rmsd(refs[0], r) for r in refs]
    assert cov2 == np.mean([r < 0.01 for r in rmsd]) and abs(mat2 - np.mean(rmsd)) < 1e-9 and mat2 > 0.05


def test_mask_strategies_pick_whole_atoms(small):
    batch = small.get_batch(torch.arange(8))
    g = torch.Generator().manual_seed(0)
    target = atom_subset(batch.padding, g, ratio=0.5)
    assert ((target <= batch.padding) & ((target == 0) | (target == 1))).all()
    parts = SPEC.unpack(target)
    atoms = parts["pos"][..., 0]
    for name in ("pos", "atom_types", "charges"):  # an atom is held out with all of its fields
        assert torch.equal(parts[name].amin(-1), atoms) and torch.equal(parts[name].amax(-1), atoms)
    n = SPEC.unpack(batch.padding)["pos"][..., 0].sum(1)
    assert torch.equal(atoms.sum(1), (0.5 * n).round().clamp(min=1))
    conf = SPEC.unpack(positions_only(batch.padding, g))
    assert conf["atom_types"].sum() == 0 and torch.equal(conf["pos"], SPEC.unpack(batch.padding)["pos"])
    assert plugins.get_mask_strategy("atom_subset").bind({"ratio": 0.25})(batch.padding, g).sum() > 0


def test_pictures_and_sdf_files(small, tmp_path):
    data = small.get_batch(torch.arange(6))
    noisy = _scrambled(data, 1)
    plot_molecules(noisy, data, tmp_path / "grid.png")  # invalid molecules must still be drawn
    assert (tmp_path / "grid.png").read_bytes()[:8] == PNG and (tmp_path / "grid.png").stat().st_size > 5000
    paths = save_molecules(data, tmp_path / "out")
    mols = read_sdf(paths[0])
    assert len(mols) == 6 and all(m.GetProp("_Name").startswith(f"sample {i} ") for i, m in enumerate(mols))
    sizes = SPEC.unpack(data.padding)["pos"][..., 0].sum(1).tolist()
    assert [m.GetNumAtoms() for m in mols] == sizes
    assert np.isfinite(mols[0].GetConformer().GetPositions()).all()
    save_molecules(noisy, tmp_path / "noisy")  # garbage is written too, with names that say so
    assert "invalid" in (tmp_path / "noisy" / "molecules.sdf").read_text()
    assert len(read_sdf(tmp_path / "noisy" / "molecules.sdf", sanitize=False)) == 6
