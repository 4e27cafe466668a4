"""The command line end to end on a tiny molecule run: train -> sample -> evaluate -> impute."""

import json

import pytest

from polydiff.app.cli import main
from polydiff_molecule.io import read_sdf

TINY = ["data.limit=24", "model.scalars=8", "model.vectors=2", "model.layers=1", "model.width=16", "model.basis=8",
        "train.steps=6", "train.batch_size=8", "train.log_every=3", "train.checkpoint_every=6", "train.warmup_steps=2"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "mol"
    assert main(["train", "molecule", *TINY, "--out", str(out), "--quiet"]) == 0
    return out


def test_train_sample_evaluate(run, capsys):
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["modality"] == "molecule" and cfg["model"]["backbone"] == "e3nn" and cfg["data"]["dataset"] == "smiles"
    capsys.readouterr()
    assert main(["sample", str(run), "--sampler", "heun", "--steps", "3", "--n", "6", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "molecules.sdf" in out and "trajectory.png" in out
    sdf = next((run / "samples").rglob("molecules.sdf"))
    mols = read_sdf(sdf, sanitize=False)  # an untrained model writes invalid molecules too
    assert len(mols) == 6 and all(m.GetNumAtoms() >= 1 for m in mols)
    assert main(["evaluate", str(run), "--json", "--likelihood-n", "0", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert "nll_nats_per_dim" not in res  # skipped: the Hutchinson ODE through e3nn is the slow part
    for key in ("atom_stability", "molecule_stability", "validity", "uniqueness", "novelty"):
        assert 0.0 <= res[key] <= 1.0, key
    assert res["distance_w1"] > 0.0  # untrained samples do not match the data's distances
    assert res["n"] == 6 and res["atom_stability"] < 1.0  # six steps of training cannot make chemistry


def test_impute_keeps_the_scaffold(run, capsys):
    capsys.readouterr()
    assert main(["impute", str(run), "--mask", "atom_subset", "--mask-option", "ratio=0.3", "--n-samples", "2",
                 "--n", "2", "--steps", "3", "--quiet"]) == 0
    path = next((run / "imputations").glob("*.safetensors"))
    from polydiff.app.impute_workflow import read_imputation

    imp, meta = read_imputation(path)
    assert meta["mask"] == "atom_subset" and imp.samples.shape[:2] == (2, 2)
    given = imp.given.bool()
    assert (imp.samples[:, 0][given] == imp.truth[given]).all()  # fixed atoms stay exactly in place
    assert list((run / "imputations").glob("*.png"))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--imputations", str(path), "--json", "--quiet"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 0.0 <= res["imputation_validity"] <= 1.0 and res["mae"] > 0


def test_unknown_mask_option_and_bad_smiles(run, tmp_path, capsys):
    assert main(["impute", str(run), "--mask", "atom_subset", "--mask-option", "fraction=0.3", "--quiet"]) == 2
    assert "fraction" in (err := capsys.readouterr().err) and "accepts ratio" in err
    assert main(["train", "molecule", "data.smiles=CCO,C1CC", "--out", str(tmp_path / "bad"), "--quiet"]) == 2
    assert "invalid SMILES 'C1CC'" in capsys.readouterr().err  # one line naming the problem, no traceback


def test_conformers_sample_from_the_cli_given_graphs_drawn_from_the_data(tmp_path, capsys):
    out = tmp_path / "conf"
    tiny = [t for t in TINY if not t.startswith("data.limit")]
    assert main(["train", "conformer", *tiny, "--out", str(out), "--quiet"]) == 0
    assert main(["sample", str(out), "--steps", "3", "--n", "4", "--quiet"]) == 0
    assert "samples:" in capsys.readouterr().out
    from safetensors.torch import load_file

    saved = load_file(str(next((out / "samples").glob("*.safetensors"))))
    assert any(k.startswith("cond.") for k in saved)  # the graphs the coordinates were generated for
