"""A run's held-out items, recorded when it is trained and checked whenever the run loads its data
again (resume, sample, impute, evaluate): if the data files or polydiff's way of splitting changed, the
"held-out" items might be ones the model trained on, and its scores would flatter it."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from polydiff.diffusion.data import DiffusionDataset
from polydiff.exceptions import ConfigError
from polydiff.files import atomic_write_json, read_json
from polydiff.reporting import report

from .runs import Run, load_data

SPLIT = "split.json"


def split_record(held_out: DiffusionDataset) -> dict[str, Any]:
    """How many items were held out, and a digest of which (the indices into the dataset)."""
    indices = getattr(held_out, "indices", None)
    digest = hashlib.sha256(b"" if indices is None else indices.long().numpy().tobytes()).hexdigest()[:16]
    return {"held_out": len(held_out), "indices_sha256": digest}


def save_split(path: Path, held_out: DiffusionDataset) -> None:
    atomic_write_json(path / SPLIT, split_record(held_out))


def run_data(run: Run) -> tuple[DiffusionDataset, DiffusionDataset]:
    """``load_data(run.config)``, checked against the split the run was trained with."""
    train, held_out = load_data(run.config)
    saved = run.path / SPLIT
    if saved.is_file():
        if read_json(saved) != split_record(held_out):
            raise ConfigError(f"{run.path}: its held-out items are not the ones it was trained with (the data "
                              "changed, or this polydiff splits it another way: overlapping windows are held out "
                              "apart from the training ones), so the model may have trained on what it would be "
                              "scored on; train a new run on this data")
    elif getattr(held_out, "starts", None) is not None:  # windows, split by a polydiff that kept no record
        report(f"{run.path}: this run keeps no record of its split (made before polydiff recorded one); if its "
               "windows overlap, they were held out at random then and apart from the training ones now, so the "
               "model may have trained on the held-out windows: train a new run for clean scores")
    return train, held_out
