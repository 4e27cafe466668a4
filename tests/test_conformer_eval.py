"""Conformer runs scored like the papers score them: COV-R / MAT-R (GeoDiff; heavy-atom RMSD, symmetry-aware,
grouped by molecular graph) against held-out conformers, beside ETKDG, random coordinates (floor) and real
training conformers (ceiling) on the same graphs; `polydiff sample` writes the conformers as SDF."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

pytest.importorskip("rdkit")
pytest.importorskip("e3nn")
from rdkit import Chem
from rdkit.Chem import AllChem, rdMolAlign

from polydiff.app.cli import main
from polydiff.app.run_model import batch_of
from polydiff.app.runs import Run, load_data
from polydiff.evaluation.baselines import BaselineContext
from polydiff.files import read_safetensors
from polydiff.plugins.specs import NotApplicable
from polydiff_molecule import conformer_metrics as cm
from polydiff_molecule.conformer_baselines import drawn_graphs, etkdg
from polydiff_molecule.conformers import ConformerDataset


def conformers(smiles: str, n: int = 4, seed: int = 1) -> Chem.Mol:
    mol = Chem.AddHs(Chem.MolFromSmiles(smiles))
    assert len(AllChem.EmbedMultipleConfs(mol, numConfs=n, randomSeed=seed)) == n
    return mol


def everything(ds: ConformerDataset):
    return ds.get_batch(torch.arange(len(ds)))


def test_identical_conformers_cover_every_reference_at_zero_rmsd():
    ds = ConformerDataset([conformers("CCCO"), conformers("CC(C)(C)O"), conformers("O")])
    scores = cm.conformer_scores(everything(ds), ds)
    assert scores["cov_r"] == 1.0 and scores["mat_r"] < 1e-4
    assert scores["graphs"] == 2  # water has one heavy atom: not scored


def test_rmsd_matches_rdkit_best_rms_across_conformers_of_a_symmetric_molecule():
    mol = conformers("CC(C)(C)c1ccccc1", n=5)
    [group] = cm.group_by_graph(everything(ConformerDataset([mol]))).values()
    assert len(cm.symmetries(group.mol)) == 6 * 2  # three methyls, a flipped ring
    mine = cm.rmsd_matrix(group.positions, group.positions, cm.symmetries(group.mol))
    heavy = Chem.RemoveHs(mol)
    ids = [c.GetId() for c in heavy.GetConformers()]
    rdkit = np.array([[rdMolAlign.GetBestRMS(Chem.Mol(heavy), heavy, prbId=g, refId=r) for g in ids] for r in ids])
    assert rdkit.max() > 0.1  # distinct conformers
    np.testing.assert_allclose(mine, rdkit, atol=1e-4)


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


@pytest.mark.parametrize("target", [0.3, 0.7])
def test_a_stretched_rotated_copy_has_the_rmsd_of_the_stretch(target):
    mol = conformers("CCOC(C)=O", n=1)  # no heavy-atom symmetry
    ref = everything(ConformerDataset([mol]))
    [group] = cm.group_by_graph(ref).values()
    centred = group.positions[0] - group.positions[0].mean(0)
    eps = target / math.sqrt(np.square(centred).sum(1).mean())  # scaling by 1 + eps moves atoms by eps * radius
    heavy = np.array([a.GetAtomicNum() > 1 for a in mol.GetAtoms()])
    pos = ref.x[0].numpy().astype(np.float64)
    pos[heavy] = (1 + eps) * (pos[heavy] - pos[heavy].mean(0))
    moved = pos @ _rotation(3).T + np.array([1.0, -2.0, 0.5])
    gen = type(ref)(x=torch.from_numpy(moved).float()[None], padding=ref.padding, cond=ref.cond)
    scores = cm.conformer_scores(gen, ConformerDataset([mol]))
    assert scores["mat_r"] == pytest.approx(target, abs=1e-4)
    assert scores["cov_r"] == (1.0 if target < cm.COV_THRESHOLD else 0.0)


def test_symmetric_atoms_swapped_still_match_exactly():
    mol = conformers("CC(C)O", n=1)
    ref = everything(ConformerDataset([mol]))
    methyls = [a.GetIdx() for a in mol.GetAtoms() if a.GetSymbol() == "C" and a.GetDegree() == 4
               and sum(n.GetSymbol() == "H" for n in a.GetNeighbors()) == 3]
    assert len(methyls) == 2
    x = ref.x.clone()
    x[0, methyls] = x[0, methyls[::-1]]  # the two methyl carbons trade places
    gen = type(ref)(x=x, padding=ref.padding, cond=ref.cond)
    [g] = cm.group_by_graph(gen).values()
    [r] = cm.group_by_graph(ref).values()
    assert cm.rmsd_matrix(g.positions, r.positions, cm.symmetries(g.mol))[0, 0] < 1e-4
    assert cm.rmsd_matrix(g.positions, r.positions, np.arange(g.mol.GetNumAtoms())[None])[0, 0] > 0.2


def test_atom_order_of_the_file_does_not_change_the_graph():
    mol = conformers("NCCC(=O)O", n=3)
    order = list(np.random.default_rng(0).permutation(mol.GetNumAtoms()).tolist())
    renumbered = Chem.RenumberAtoms(mol, order)
    scores = cm.conformer_scores(everything(ConformerDataset([renumbered])), ConformerDataset([mol]))
    assert scores["cov_r"] == 1.0 and scores["mat_r"] < 1e-4 and scores["graphs"] == 1


def test_no_shared_graph_is_not_applicable():
    with pytest.raises(NotApplicable, match="held-out reference conformers"):
        cm.conformer_scores(everything(ConformerDataset([conformers("CCCO")])), ConformerDataset([conformers("CCCN")]))


SMILES = ["CCCO", "CC(C)CO", "OCCOC", "NCCCO"]
TINY = ["model.scalars=8", "model.vectors=2", "model.layers=1", "model.width=16", "model.basis=8",
        "train.steps=4", "train.batch_size=8", "train.checkpoint_every=4", "train.warmup_steps=0", "data.holdout=0.3"]


def write_sdf(path, n: int = 5) -> None:
    with Chem.SDWriter(str(path)) as w:
        for i, s in enumerate(SMILES):
            mol = conformers(s, n=n, seed=i + 1)
            AllChem.MMFFOptimizeMoleculeConfs(mol)
            mol.SetProp("_Name", s)
            for c in mol.GetConformers():
                w.write(mol, confId=c.GetId())


def test_conformer_run_on_an_sdf_samples_sdf_and_evaluates_beside_etkdg(tmp_path, capsys):
    write_sdf(tmp_path / "confs.sdf")
    run = tmp_path / "run"
    assert main(["train", "conformer", "data.dataset=sdf", f"data.path={tmp_path / 'confs.sdf'}", *TINY,
                 "--out", str(run), "--quiet"]) == 0
    assert main(["sample", str(run), "--n", "12", "--steps", "3", "--quiet"]) == 0
    [sdf] = (run / "samples").glob("*/conformers.sdf")
    written = list(Chem.SDMolSupplier(str(sdf), sanitize=False, removeHs=False))
    assert len(written) == 12 and all(m.GetNumConformers() == 1 for m in written)
    known = {Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in SMILES}
    assert {Chem.MolToSmiles(Chem.RemoveHs(m, sanitize=False)) for m in written} <= known
    assert all(m.GetProp("_Name").split(": ")[1] in known and m.GetProp("_Name").startswith(f"sample {i}: ")
               for i, m in enumerate(written))  # each record names its molecule
    capsys.readouterr()

    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("cov_r [higher]", "mat_r [lower]", "etkdg", "random_coordinates", "real_conformers"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval.json").read_text())["table"]["rows"]}
    assert set(rows) == {"model", "etkdg", "random_coordinates", "real_conformers"}
    for method, scores in rows.items():
        assert math.isfinite(scores["cov_r"]) and math.isfinite(scores["mat_r"]), method
    # ETKDG and the real conformers place molecules; Gaussian coordinates do not
    assert rows["random_coordinates"]["mat_r"] > max(rows["etkdg"]["mat_r"], rows["real_conformers"]["mat_r"])

    # the baselines answer for the very graphs the model's samples were drawn for (evaluate passes them)
    samples, meta = read_safetensors(next((run / "samples").glob("*.safetensors")), "samples")
    drawn = batch_of(samples)
    train, held = load_data(Run.open(run).config)
    ctx = BaselineContext(train=train, held_out=held, n=12, seed=int(meta["seed"]), cond=dict(drawn.cond),
                          padding=drawn.padding)
    out = etkdg(ctx)
    assert torch.equal(out.cond["edges"], drawn.cond["edges"]) and torch.equal(out.padding, drawn.padding)
    with pytest.raises(NotApplicable, match="no molecular graphs"):
        drawn_graphs(BaselineContext(train=train, held_out=held, n=12))
