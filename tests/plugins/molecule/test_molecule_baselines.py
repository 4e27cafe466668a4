"""Molecule results beside their baselines with the same bond perception (random coordinates with the
data's atom types as floor, real molecules as ceiling, random completion), and the SDF of `polydiff
impute`."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("rdkit")
from rdkit import Chem

from polydiff.app.cli import main
from polydiff.app.runs import Run, load_data
from polydiff.evaluation.baselines import BaselineContext
from polydiff_molecule.baselines import random_coordinates

TINY = ["data.limit=24", "model.scalars=8", "model.vectors=2", "model.layers=1", "model.width=16", "model.basis=8",
        "train.steps=2", "train.batch_size=8", "train.checkpoint_every=2", "train.warmup_steps=0",
        "sample.n=8", "sample.steps=2"]


def test_molecule_evaluate_and_impute_print_baseline_rows_and_write_sdf(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "molecule", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("random_coordinates", "real_molecules", "validity [higher]", "floor", "ceiling"):
        assert label in out, label
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval.json").read_text())["table"]["rows"]}
    # the data's own molecules are valid under the same bond perception; random positions are not
    assert rows["real_molecules"]["validity"] > 0.9 > rows["random_coordinates"]["validity"]

    assert main(["impute", str(run), "--mask", "atom_subset", "--mask-option", "ratio=0.3", "--n-samples", "2",
                 "--n", "2", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "random_fill" in out and "imputation_validity [higher]" in out
    sdf = next((run / "imputations").glob("*[0-9].sdf"))
    mols = [m for m in Chem.SDMolSupplier(str(sdf), sanitize=False)]
    assert len(mols) == 4 and mols[0].GetProp("_Name").startswith("item 0 sample 0")
    assert sdf.with_name(sdf.stem + "-data.sdf").is_file() and f"media: {sdf}" in out


def test_random_coordinates_keep_the_atoms_and_are_centred(tmp_path):
    run = tmp_path / "run"
    assert main(["train", "molecule", *TINY, "train.steps=1", "train.checkpoint_every=1", "--out", str(run),
                 "--quiet"]) == 0
    train, held = load_data(Run.open(run).config)
    batch = random_coordinates(BaselineContext(train=train, held_out=held, n=5, seed=3))
    spec = train.spec
    real = spec.unpack(batch.padding)["pos"][..., 0] > 0
    pos = spec.unpack(batch.x)["pos"]
    assert torch.allclose(pos[real].new_zeros(3), (pos * real[..., None]).sum(1).sum(0), atol=1e-4)  # CoM-free
    assert (pos[~real] == 0).all()
    again = random_coordinates(BaselineContext(train=train, held_out=held, n=5, seed=3))
    assert torch.equal(spec.unpack(again.x)["atom_types"], spec.unpack(batch.x)["atom_types"])
