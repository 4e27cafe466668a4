"""`polydiff compare` / `report`: a grid trains each cell once, measures every sampler x NFE, resumes,
shards across independent workers, and reports means with intervals, ranks and plots."""

import subprocess
import sys

import pytest

from polydiff.app.cli import main
from polydiff.app.compare import collect, load_grid, mean_ci
from polydiff.app.config import ConfigError

GRID = """
seeds = [0, 1]
schedules = ["edm", {{ name = "vp_cosine" }}]
parameterizations = ["edm"]
weightings = ["edm", {{ kind = "min_snr", gamma = 5.0 }}]
samplers = ["euler", "dpmpp_2m"]
nfe = [3, 6]
n_samples = 64
likelihood = {likelihood}
[train]
steps = 20
batch_size = 64
checkpoint_every = 10
log_every = 10
[modalities.points]
data = {{ dataset = "ring", n = 512 }}
model = {{ width = 16, depth = 1 }}
"""


@pytest.fixture
def grid_file(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID.format(likelihood=16))
    return path


def test_grid_cells_and_validation(grid_file, tmp_path):
    grid = load_grid(str(grid_file))
    assert len(grid.cells) == 2 * 2 * 2 and grid.measurements_per_cell() == 4
    labels = {(c.schedule, c.weighting) for c in grid.cells}
    assert ("vp_cosine", "min_snr(gamma=5.0)") in labels
    assert len({c.slug for c in grid.cells}) == len(grid.cells)
    cell = next(c for c in grid.cells if c.weighting.startswith("min_snr"))
    assert cell.config.weighting.kind == "min_snr" and cell.config.weighting.gamma == 5.0
    assert cell.config.train.steps == 20 and cell.config.train.seed in (0, 1)
    bad = tmp_path / "bad.toml"
    bad.write_text(GRID.format(likelihood=0).replace('"euler"', '"eulr"'))
    with pytest.raises(KeyError, match="did you mean 'euler'"):
        load_grid(str(bad))
    bad.write_text(GRID.format(likelihood=0).replace("width = 16", "widht = 16"))
    with pytest.raises(ConfigError, match=r"\[modalities.points\].*widht"):
        load_grid(str(bad))
    bad.write_text(GRID.format(likelihood=0).replace("steps = 20\n", ""))
    with pytest.raises(ConfigError, match="budget"):
        load_grid(str(bad))


def test_compare_runs_resumes_and_reports(grid_file, tmp_path, capsys):
    out = tmp_path / "res"
    grid_file.write_text(GRID.format(likelihood=16).replace('["edm", { kind = "min_snr", gamma = 5.0 }]', '["edm"]'))
    assert main(["compare", str(grid_file), "--out", str(out), "--quiet"]) == 0
    assert "report:" in capsys.readouterr().out
    rows = collect(out)
    evals = [r for r in rows if r["metric"] == "sliced_w2"]
    assert len(evals) == 4 * 4 and {r["nfe"] for r in evals} == {3, 6}
    assert all(r["value"] > 0 for r in evals)
    assert len([r for r in rows if r["metric"] == "nll_nats_per_dim"]) == 4
    assert any(r["metric"].startswith("loss@sigma") for r in rows)
    # a rerun recomputes nothing: every file keeps its modification time
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("cells/*/eval/*.json")}
    assert main(["compare", str(grid_file), "--out", str(out), "--quiet"]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("cells/*/eval/*.json")} == stamps
    # a lost measurement is recomputed alone
    victim = next(iter(stamps))
    victim.unlink()
    assert main(["compare", str(grid_file), "--out", str(out), "--quiet"]) == 0
    assert victim.exists() and all(p.stat().st_mtime_ns == t for p, t in stamps.items() if p != victim)
    report = (out / "report.md").read_text()
    assert "## points (dataset ring): sliced_w2, lower is better" in report
    assert "± " in report and "Ranks across modalities" in report and "Mean rank of each choice" in report
    assert (out / "plots" / "points.png").stat().st_size > 5000
    header = (out / "measurements.csv").read_text().splitlines()[0]
    assert header.startswith("modality,dataset,schedule,parameterization,weighting,seed")
    # the grid directory belongs to its grid
    other = tmp_path / "other.toml"
    other.write_text(GRID.format(likelihood=0).replace('["edm", { kind = "min_snr", gamma = 5.0 }]', '["edm"]'))
    assert main(["compare", str(other), "--out", str(out), "--quiet"]) == 2
    assert "different grid" in capsys.readouterr().err


def test_shards_run_as_independent_processes(tmp_path, grid_file):
    out = tmp_path / "sharded"
    grid_file.write_text(GRID.format(likelihood=0).replace('["edm", { kind = "min_snr", gamma = 5.0 }]', '["edm"]')
                         .replace("seeds = [0, 1]", "seeds = [0]"))
    cmd = [sys.executable, "-m", "polydiff.app.cli", "compare", str(grid_file), "--out", str(out), "--quiet"]
    workers = [subprocess.Popen([*cmd, "--shard", f"{i}/2"]) for i in range(2)]
    assert [w.wait(timeout=300) for w in workers] == [0, 0]
    assert not (out / "report.md").exists()  # shard workers leave the report to the merge step
    assert main(["report", str(out)]) == 0
    rows = collect(out)
    assert {r["schedule"] for r in rows} == {"edm", "vp_cosine"}
    assert len([r for r in rows if r["metric"] == "sliced_w2"]) == 2 * 4
    listed = subprocess.run([*cmd, "--list", "--shard", "1/2"], capture_output=True, text=True, check=True).stdout
    assert listed.splitlines()[0].startswith("1\t") and "2 training cells" in listed


def test_mean_ci_is_the_student_t_interval():
    m, h = mean_ci([1.0, 2.0, 3.0])
    assert m == 2.0 and h == pytest.approx(4.303 * 1.0 / 3**0.5, rel=1e-4)
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_report_without_results_is_a_clear_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished cells" in capsys.readouterr().err
