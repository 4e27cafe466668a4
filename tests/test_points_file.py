"""The points modality on the user's own file: CSV (header, gaps, junk) or NPY, from the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from polydiff.app.cli import main
from polydiff.exceptions import ConfigError
from polydiff.modalities.points import load_file

TINY = ["train.steps=4", "train.batch_size=32", "train.checkpoint_every=4", "model.width=16", "model.depth=1",
        "sample.n=64", "sample.steps=4", "data.holdout=0.25"]


def _csv(tmp_path, rows, header="x,y,label"):
    path = tmp_path / "points.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_a_csv_with_a_header_and_gaps_loads_the_complete_rows_and_says_so(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = [f"{a:.3f},{b:.3f},{c}" for a, b, c in zip(rng.normal(size=20), rng.normal(size=20), "ab" * 10, strict=True)]
    rows[3] = "0.5,,a"  # a gap: that row is dropped and counted
    ds = load_file(path=str(_csv(tmp_path, rows)), columns="x,y")
    assert len(ds) == 19 and ds.sample_shape == (2,)
    err = capsys.readouterr().err
    assert "19 points of 2 dimensions (x, y)" in err and "1 row(s) with an empty or non-finite cell dropped" in err


def test_junk_cells_and_wrong_columns_are_named(tmp_path):
    path = _csv(tmp_path, ["1,2,a", "3,nil,b"])
    with pytest.raises(ConfigError, match=r"row 3, column 'y': 'nil' is not a number"):
        load_file(path=str(path), columns="x,y")
    with pytest.raises(ConfigError, match="no column.s. z; it has x, y, label"):
        load_file(path=str(path), columns="x,z")
    with pytest.raises(ConfigError, match="'a' is not a number"):
        load_file(path=str(path))  # every column, the label column included
    (tmp_path / "x.txt").write_text("1,2\n")
    with pytest.raises(ConfigError, match="use a .csv or .npy file"):
        load_file(path=str(tmp_path / "x.txt"))


def test_a_points_file_trains_samples_and_evaluates_from_the_cli(tmp_path, capsys):
    rng = np.random.default_rng(1)
    np.save(tmp_path / "pts.npy", rng.normal(size=(200, 3)).astype(np.float32))
    run = tmp_path / "run"
    assert main(["train", "points", "data.dataset=file", f"data.path={tmp_path / 'pts.npy'}", *TINY,
                 "--out", str(run), "--quiet"]) == 0
    assert main(["evaluate", str(run), "--likelihood-n", "0", "--quiet"]) == 0
    out = capsys.readouterr().out
    table = json.loads((run / "eval.json").read_text())["table"]
    rows = {r["method"]: r for r in table["rows"]}
    for method in ("model", "gaussian_fit", "real_points"):  # floor and ceiling beside the model
        assert rows[method]["scores"]["sliced_w2"] is not None, method
    assert "known mixture" in table["metrics"]["true_nll"]["note"]  # no true density: noted, not a crash
    assert rows["exact_denoiser"]["note"].startswith("skipped") and "gaussian_fit" in out
