"""`polydiff report` shows each modality's baselines, floors and ceilings beside the configurations,
scored on the same held-out items as the cells' models."""

import csv

from polydiff.app.cli import main

GRID = """
seeds = [0]
schedules = ["edm"]
parameterizations = ["edm"]
weightings = ["edm"]
samplers = ["euler"]
nfe = [4]
n_samples = 64
likelihood = 0
[train]
steps = 10
batch_size = 64
checkpoint_every = 10
log_every = 10
[modalities.points]
data = { dataset = "ring", n = 512 }
model = { width = 16, depth = 1 }
"""


def test_report_has_the_baseline_rows(tmp_path, capsys):
    grid = tmp_path / "grid.toml"
    grid.write_text(GRID)
    out = tmp_path / "res"
    assert main(["compare", str(grid), "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    assert "does a configuration beat doing nothing clever?" in report
    for name in ("exact_denoiser", "fresh_data", "gaussian_fit"):
        assert f"| {name} |" in report, name
    with (out / "baselines.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    fresh = [float(r["value"]) for r in rows if r["method"] == "fresh_data" and r["metric"] == "sliced_w2"]
    assert len(fresh) == 1 and 0 < fresh[0] < 1  # fresh ring data is close to held-out ring data
