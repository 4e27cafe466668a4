"""Everything in examples/ runs, at tiny sizes: the Python quick start, a sampler registered from a
script, the third-party plugin of the tutorial (through a real entry point), every modality's
example config and the comparison grid."""

import importlib.util
from pathlib import Path

import pytest

from polydiff import plugins
from polydiff.app.cli import main
from polydiff.testing import check_backbone, check_modality

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_python_quickstart():
    scores = _load("quickstart").main(steps=150)
    assert all(v > 0 for v in scores.values()) and len(scores) == 4


def test_custom_sampler_from_a_script():
    try:
        nll = _load("custom_sampler").main()
        assert "midpoint" in [s.name for s in plugins.samplers()]
        assert nll < 3.0  # 15 NFE on the ring's exact denoiser; Heun at 15 NFE gets about 2.8
    finally:
        plugins.reset()


def test_tutorial_plugin_end_to_end(trajectories_installed, tmp_path, capsys):
    status = {p.name: p.status for p in plugins.plugins()}
    assert status["trajectories"] == "ok"
    report = check_modality("trajectories", dataset_options={"n": 64})
    assert report["batch_shape"] == [4, 32, 2]
    check_backbone(plugins.get_backbone("pathnet"), plugins.get_dataset("trajectories", "lissajous").build(n=16))
    out = tmp_path / "run"
    tiny = ["train.steps=30", "train.batch_size=64", "train.checkpoint_every=30", "data.n=256", "model.width=16",
            "model.depth=2", "sample.n=64", "sample.steps=4"]
    assert main(["train", "trajectories", *tiny, "--out", str(out), "--quiet"]) == 0
    assert main(["sample", str(out), "--quiet"]) == 0
    assert main(["evaluate", str(out), "--json", "--quiet"]) == 0
    assert '"roughness_gap"' in capsys.readouterr().out
    assert main(["impute", str(out), "--mask", "last_points", "--mask-option", "count=4", "--n", "8",
                 "--n-samples", "3", "--quiet"]) == 0
    assert "imputations:" in capsys.readouterr().out


def _example_configs() -> list[Path]:
    return sorted(EXAMPLES.glob("*.toml"))


@pytest.mark.parametrize("config", _example_configs(), ids=lambda p: p.stem)
def test_modality_example_configs_train_and_sample(config, tmp_path):
    import tomllib

    modality = tomllib.loads(config.read_text())["modality"]
    if modality not in {m.name for m in plugins.modalities()}:
        status = {p.name: p.status for p in plugins.plugins()}.get(modality, "not installed")
        pytest.skip(f"the {modality} plugin is {status}")
    out = tmp_path / "run"
    tiny = ["train.steps=2", "train.batch_size=4", "train.checkpoint_every=2", "train.log_every=1", "sample.n=2",
            "sample.steps=2", "data.holdout=0.5"]
    assert main(["train", "--config", str(config), *tiny, "--out", str(out), "--quiet"]) == 0
    from polydiff.app.runs import Run

    if Run.open(out).config.train.conditional:
        assert main(["impute", str(out), "--n", "2", "--n-samples", "2", "--steps", "2", "--quiet"]) == 0
    else:
        assert main(["sample", str(out), "--quiet"]) == 0


def test_comparison_grid_example_runs_tiny(tmp_path, capsys):
    import tomllib

    grid = tomllib.loads((EXAMPLES / "grids" / "small.toml").read_text())
    missing = set(grid["modalities"]) - {m.name for m in plugins.modalities()}
    if missing:
        pytest.skip(f"plugins not installed: {', '.join(sorted(missing))}")
    assert len(grid["modalities"]) >= 3
    out = tmp_path / "grid"
    tiny = ['seeds=[0]', 'schedules=["edm"]', 'weightings=["edm"]', 'samplers=["euler"]', "nfe=[2]", "n_samples=8",
            "likelihood=4", "train.steps=2", "train.batch_size=4", "modalities.points.train.batch_size=4",
            "modalities.timeseries.impute.n=4", "modalities.timeseries.impute.n_samples=2"]
    assert main(["compare", str(EXAMPLES / "grids" / "small.toml"), *tiny, "--out", str(out), "--quiet"]) == 0
    report = (out / "report.md").read_text()
    for modality in grid["modalities"]:
        assert f"## {modality} " in report
    assert "## timeseries (dataset sines): crps, lower is better" in report
