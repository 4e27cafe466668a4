"""Series results beside their baselines (mean, LOCF, linear interpolation, ridge) on the same windows
and mask, and the media `polydiff impute` writes: a CSV of quantiles in data units with feature names
and time stamps, and a picture in data units."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from polydiff import plugins

pytest.importorskip("statsmodels")
from polydiff.app.cli import main
from polydiff.diffusion.data import holdout_split
from polydiff.diffusion.imputation import Imputation
from polydiff.evaluation.baselines import BaselineContext, score_imputation
from polydiff_timeseries import from_array
from polydiff_timeseries.media import save_imputation

TINY = ["data.dataset=co2", "data.length=26", "data.stride=26", "data.holdout=0.1", "model.channels=8",
        "model.layers=1", "model.heads=2", "model.time_dim=8", "model.feature_dim=4", "model.emb_dim=8",
        "train.steps=2", "train.batch_size=8", "train.conditional=true", "train.mask_strategy=mix",
        "train.device=cpu", "train.checkpoint_every=2", "train.warmup_steps=0"]


def _read_csv(path):
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_impute_and_evaluate_print_the_series_baselines_and_write_media(tmp_path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", "timeseries", *TINY, "--out", str(run), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["impute", str(run), "--mask", "forecast", "--mask-option", "horizon=6", "--n-samples", "4",
                 "--n", "5", "--sampler", "ddim", "--steps", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("mean", "locf", "linear", "ridge", "crps [lower]", "mae [lower]"):
        assert label in out, label
    path = next((run / "imputations").glob("*.safetensors"))
    assert main(["evaluate", str(run), "--imputations", str(path), "--quiet"]) == 0
    assert "ridge" in capsys.readouterr().out
    rows = {r["method"]: r["scores"] for r in json.loads((run / "eval-imputation.json").read_text())["table"]["rows"]}
    # co2 rises steadily: carrying the last value forward over 6 weeks is within a few ppm
    assert 0 < rows["locf"]["mae"] < 10
    table = _read_csv(path.with_suffix(".csv"))
    assert {r["feature"] for r in table} == {"co2"}
    held = [r for r in table if r["held_out"] == "1"]
    assert held and all(300 < float(r["truth"]) < 400 for r in held)  # ppm, not model units
    assert all(float(r["q05"]) <= float(r["q50"]) <= float(r["q95"]) for r in table)
    assert path.with_name(path.stem + "-data-units.png").stat().st_size > 1000


def test_baselines_are_scored_on_the_same_targets_in_data_units(tmp_path) -> None:
    t = np.arange(400, dtype=np.float64)
    values = np.stack([10 + t * 0.5, 100 + 20 * np.sin(t / 5)])  # [K, T] in data units
    ds = from_array(values.T, length=40, features=["ramp", "wave"])  # [T, K] cut into windows of 40
    train, held_out = holdout_split(ds, 0.25, seed=0)
    batch = held_out.get_batch(torch.arange(len(held_out)))
    target = torch.zeros_like(batch.x)
    target[..., 15:25] = 1  # a 10-step gap inside every window
    truth = batch.x
    imp = Imputation(samples=truth[:, None].repeat(1, 2, 1, 1), truth=truth, given=1 - target, target=target)
    board = score_imputation(imp, BaselineContext(train=train, held_out=held_out, n=len(imp)),
                             **plugins.scoring("timeseries"))
    rows = {r.method: r.scores for r in board.rows}
    assert rows["model"]["mae"] == 0  # the 'model' is the truth
    # the ramp is exactly linear: linear interpolation beats LOCF and the mean, in data units
    assert rows["linear"]["mae"] < rows["locf"]["mae"] < rows["mean"]["mae"]

    ds.timestamps = [[f"2020-01-{1 + (i + j) % 28:02d}" for j in range(40)] for i in range(len(ds))]
    files = save_imputation(imp, held_out, tmp_path / "gap")
    table = _read_csv(files[0])
    assert {r["feature"] for r in table} == {"ramp", "wave"} and table[0]["time"].startswith("2020-01-")
    first = held_out.indices[0].item()
    assert table[0]["dataset_row"] == str(first) and table[0]["time"] == ds.timestamps[first][0]
    ramp = [r for r in table if r["item"] == "0" and r["feature"] == "ramp"]
    assert float(ramp[1]["truth"]) - float(ramp[0]["truth"]) == pytest.approx(0.5)  # data units
