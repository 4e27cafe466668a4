"""A run's held-out items, recorded when it is trained and checked whenever the run scores held-out
items again (impute, evaluate, resume): if the data's length or polydiff's way of splitting changed, the
held-out items move, the "held-out" ones might be ones the model trained on, and its scores would flatter
it. Only which items are held out is recorded (a count and a digest of their indices), not their values:
a file whose rows change in place, same count, is not caught."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import torch

from polydiff.diffusion.data import DiffusionDataset
from polydiff.diffusion.windows import overlapping
from polydiff.exceptions import ConfigError
from polydiff.files import atomic_write_json, read_json
from polydiff.reporting import report
from polydiff.training.checkpoint import latest_checkpoint

from .runs import Run, load_data

SPLIT = "split.json"


def split_record(held_out: DiffusionDataset) -> dict[str, Any]:
    """How many items were held out, and a digest of which (the indices into the dataset)."""
    indices = getattr(held_out, "indices", None)
    raw = b"" if indices is None else torch.as_tensor(indices).long().numpy().tobytes()
    return {"held_out": len(held_out), "indices_sha256": hashlib.sha256(raw).hexdigest()[:16]}


def save_split(path: Path, held_out: DiffusionDataset) -> None:
    atomic_write_json(path / SPLIT, split_record(held_out))


def run_data(run: Run, *, check: bool = True) -> tuple[DiffusionDataset, DiffusionDataset]:
    """``load_data(run.config)``, checked against the split the run was trained with (``check=False``:
    not checked, for sampling, which scores no held-out item). A run created but not yet trained (by
    ``polydiff compare``) records its split here."""
    train, held_out = load_data(run.config)
    saved = run.path / SPLIT
    if not check or run.config.data.holdout == 0:  # nothing held out: nothing to protect
        return train, held_out
    if saved.is_file():
        if read_json(saved) != split_record(held_out):
            raise ConfigError(f"{run.path}: its held-out items are not the ones it was trained with (the data "
                              "changed length, or this polydiff splits it another way: overlapping windows are "
                              "held out apart from the training ones), so the model may have trained on what it "
                              "would be scored on; train a new run on this data")
    elif latest_checkpoint(run.path) is None:  # created, not trained yet: this is its split
        save_split(run.path, held_out)
    elif _overlapping_windows(held_out):
        report(f"{run.path}: this run keeps no record of its split (made before polydiff recorded one) and its "
               "windows overlap: they were held out at random then and apart from the training ones now, so the "
               "model may have trained on the held-out windows; train a new run for clean scores")
    return train, held_out


def _overlapping_windows(held_out: DiffusionDataset) -> bool:
    root = getattr(held_out, "dataset", held_out)
    starts, sources = getattr(root, "starts", None), getattr(root, "sources", None)
    length = getattr(root, "window_length", None)
    return starts is not None and sources is not None and length is not None and overlapping(starts, sources, length)
