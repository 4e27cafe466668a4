"""The bad inputs of issue 17 as data: each case prepares its files in a scratch directory and names the
command line, and what the one-line error must mention. ``tests/test_cli_errors.py`` runs them through
``polydiff.app.cli.main``; ``python tests/bad_inputs.py`` prints the before/after table for a release note.

A case is ``(name, setup, argv, expected)``: ``setup(scratch, run)`` writes files (``run`` is a trained
tiny points run copied into ``scratch/run``), ``argv`` may use ``{s}`` (scratch) and ``{run}``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

Setup = Callable[[Path, Path], None]


def nothing(scratch: Path, run: Path) -> None:
    pass


def write(name: str, data: bytes | str) -> Setup:
    def setup(scratch: Path, run: Path) -> None:
        p = scratch / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data if isinstance(data, bytes) else data.encode())
    return setup


def edit_json(name: str, change: Callable[[dict], None]) -> Setup:
    def setup(scratch: Path, run: Path) -> None:
        p = run / name if not name.startswith("ckpt/") else _ckpt(run) / name[5:]
        data = json.loads(p.read_text())
        change(data)
        p.write_text(json.dumps(data))
    return setup


def _ckpt(run: Path) -> Path:
    return run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()


def truncate_model(scratch: Path, run: Path) -> None:
    f = _ckpt(run) / "ema.safetensors"
    f.write_bytes(f.read_bytes()[:100])


def foreign_checkpoint(scratch: Path, run: Path) -> None:
    """Another run's checkpoints (a wider network) copied over this run's."""
    other = scratch / "other"
    shutil.copytree(run, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["model"]["width"] = 24
    (run / "config.json").write_text(json.dumps(cfg))  # this run now declares a model the checkpoint is not


def other_run_samples(scratch: Path, run: Path) -> None:
    other = scratch / "other"
    shutil.copytree(run, other)
    (other / ".polydiff-run").write_text(json.dumps({"run_id": "0" * 32, "modality": "points"}))
    from polydiff.app.cli import main

    assert main(["sample", str(other), "--n", "20", "--steps", "2", "--quiet"]) == 0


def disk_full(monkeypatch_target: str) -> Setup:
    def setup(scratch: Path, run: Path) -> None:
        pass
    setup.fault = monkeypatch_target  # type: ignore[attr-defined]
    return setup


CASES: list[tuple[str, Setup, list[str], str]] = [
    ("config file missing", nothing, ["train", "--config", "{s}/nope.toml"], "nope.toml"),
    ("config file is a directory", nothing, ["train", "--config", "{s}"], "is a directory"),
    ("config file not UTF-8", write("c.toml", b"modality = \"points\"\n# \xff\xfe\n"),
     ["train", "--config", "{s}/c.toml"], "not UTF-8"),
    ("config file bad TOML", write("c.toml", "modality = [\n"), ["train", "--config", "{s}/c.toml"], "not valid TOML"),
    ("config file bad YAML", write("c.yaml", "a: [\n"), ["train", "--config", "{s}/c.yaml"], "not valid YAML"),
    ("config file a JSON list", write("c.json", "[1, 2]"), ["train", "--config", "{s}/c.json"], "table/mapping"),
    ("config file .txt", write("c.txt", "x"), ["train", "--config", "{s}/c.txt"], ".toml"),
    ("unknown modality", nothing, ["train", "pointz", "--out", "{s}/r"], "did you mean"),
    ("unknown section", nothing, ["train", "points", "--out", "{s}/r", "trian.steps=5"], "did you mean"),
    ("unknown key", nothing, ["train", "points", "--out", "{s}/r", "train.stepz=5"], "did you mean"),
    ("non-number steps", nothing, ["train", "points", "--out", "{s}/r", "train.steps=abc"], "must be an integer"),
    ("float steps", nothing, ["train", "points", "--out", "{s}/r", "train.steps=2.5"], "must be an integer"),
    ("negative lr", nothing, ["train", "points", "--out", "{s}/r", "train.lr=-1"], "train.lr"),
    ("holdout above 1", nothing, ["train", "points", "--out", "{s}/r", "data.holdout=1.5"], "data.holdout"),
    ("override without =", nothing, ["train", "points", "--out", "{s}/r", "--config"], "argument"),
    ("--out is a file", write("f", "x"), ["train", "points", "--out", "{s}/f", "train.steps=2"], "is a file"),
    ("run dir missing", nothing, ["sample", "{s}/none"], "not a polydiff run"),
    ("run dir is a file", write("f", "x"), ["sample", "{s}/f"], "not a polydiff run"),
    ("run config bad JSON", write("run/config.json", "{bad"), ["sample", "{run}"], "not valid JSON"),
    ("run config not UTF-8", write("run/config.json", b"\xff\xfe{}"), ["sample", "{run}"], "not UTF-8"),
    ("run config unknown key", edit_json("config.json", lambda d: d["train"].update(stepz=1)), ["sample", "{run}"],
     "config.json"),
    ("checkpoint truncated", truncate_model, ["sample", "{run}"], "ema.safetensors"),
    ("checkpoint step edited", edit_json("ckpt/state.json", lambda d: d.update(step=999)), ["sample", "{run}"],
     "state.json"),
    ("checkpoint state.json bad JSON", write("run/checkpoints/step_00000004/state.json", "{"), ["sample", "{run}"],
     "state.json"),
    ("foreign checkpoint (shape mismatch)", foreign_checkpoint, ["sample", "{run}"], "does not fit the model"),
    ("--samples missing", nothing, ["evaluate", "{run}", "--samples", "{s}/x.safetensors"], "does not exist"),
    ("--samples is a directory", nothing, ["evaluate", "{run}", "--samples", "{s}"], "is a directory"),
    ("--samples not safetensors", write("x.safetensors", "hello"), ["evaluate", "{run}", "--samples",
                                                                      "{s}/x.safetensors"], "not a readable"),
    ("--samples from another run", other_run_samples, ["evaluate", "{run}", "--samples",
                                                        "{s}/other/samples/heun-karras-2steps-seed0.safetensors"],
     "another run"),
    ("--imputations given samples", other_run_samples, ["evaluate", "{run}", "--imputations",
                                                         "{s}/other/samples/heun-karras-2steps-seed0.safetensors"],
     "not written by `polydiff impute`"),
    ("--imputations missing", nothing, ["evaluate", "{run}", "--imputations", "{s}/i.safetensors"], "does not exist"),
    ("unknown sampler", nothing, ["sample", "{run}", "--sampler", "eulr"], "did you mean"),
    ("sampler option without =", nothing, ["sample", "{run}", "--sampler-option", "s_churn"], "KEY=VALUE"),
    ("unknown sampler option", nothing, ["sample", "{run}", "--sampler-option", "churn=1"], "s_churn"),
    ("sampler option of a wrong type", nothing, ["sample", "{run}", "--sampler-option", "s_churn=fast"],
     "must be a number"),
    ("unknown mask", nothing, ["impute", "{run}", "--mask", "nope"], "mask"),
    ("mask option of a wrong type", nothing, ["impute", "{run}", "--mask", "random_fixed", "--mask-option",
                                              "ratio=half"], "ratio"),
    ("unknown mask option", nothing, ["impute", "{run}", "--mask", "random_fixed", "--mask-option", "ration=0.5"],
     "did you mean"),
    ("label out of range", nothing, ["sample", "{run}", "--label", "99"], "--label"),
    ("--resume a non-run", nothing, ["train", "--resume", "{s}"], "not a polydiff run"),
    ("--resume with a modality", nothing, ["train", "points", "--resume", "{run}"], "--resume"),
    ("--resume after editing [model]", edit_json("config.json", lambda d: d["model"].update(width=24)),
     ["train", "--resume", "{run}"], "model.width"),
    ("--resume after editing [weighting]", edit_json("config.json", lambda d: d["weighting"].update(kind="snr")),
     ["train", "--resume", "{run}"], "weighting.kind"),
    ("grid file missing", nothing, ["compare", "{s}/g.toml", "--out", "{s}/res"], "g.toml"),
    ("grid file bad TOML", write("g.toml", "[[x"), ["compare", "{s}/g.toml", "--out", "{s}/res"], "g.toml"),
    ("report of an empty dir", nothing, ["report", "{s}"], "no finished cells"),
    ("report with a corrupt cell", write("res/cells/a/train.json", "{"), ["report", "{s}/res"], "train.json"),
    ("disk full while writing samples", disk_full("ENOSPC"), ["sample", "{run}", "--n", "10", "--steps", "2"],
     "No space left on device"),
    ("permission denied writing eval.json", disk_full("EACCES"), ["evaluate", "{run}", "--likelihood-n", "0"],
     "Permission denied"),
]


def table(before: dict[str, str], after: dict[str, str]) -> str:
    lines = ["| bad input | before | after |", "|---|---|---|"]
    lines += [f"| {name} | {before.get(name, '')} | {after.get(name, '')} |" for name, *_ in CASES]
    return "\n".join(lines)
