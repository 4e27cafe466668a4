"""A broken last record of an SDF is counted, not dropped silently (RDKit's iterator stops before it)."""

import pytest

pytest.importorskip("rdkit")
from rdkit import Chem
from rdkit.Chem import AllChem

from polydiff_molecule.io import read_sdf_records


def test_a_broken_last_record_is_reported(tmp_path):
    path = tmp_path / "ligands.sdf"
    with Chem.SDWriter(str(path)) as w:
        for i, smiles in enumerate(["CCO", "c1ccccc1O"]):
            m = Chem.AddHs(Chem.MolFromSmiles(smiles))
            AllChem.EmbedMolecule(m, randomSeed=i + 1)
            w.write(m)
    with path.open("a") as f:
        f.write("garbage record\n  no atoms\n$$$$\n")
    mols, problems = read_sdf_records(path)
    assert len(mols) == 2 and problems == ["1 record(s) after record 2 could not be read"]
