"""What a resumed run must keep: the training keys and run-config sections a checkpoint was written with.

A resumed run equals an uninterrupted one only if everything that shapes the computation is unchanged;
how long and where it runs (steps, checkpoint period, device, ...) and the sampling defaults may change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from polydiff.exceptions import ConfigError

if TYPE_CHECKING:
    from .trainer import TrainConfig

# TrainConfig keys that must match the checkpoint for a resumed run to equal an uninterrupted one;
# the rest (steps, checkpoint_every, keep_checkpoints, log_every, device) may change between sessions
RESUME_KEYS = ("seed", "batch_size", "label_dropout", "conditional", "mask_strategy", "mask_options", "lr", "betas",
               "adam_eps", "weight_decay", "warmup_steps", "lr_decay_steps", "ema_decay", "ema_warmup", "grad_clip",
               "precision")
# run-config keys a resumed run may change: how long and how it runs, and the sampling defaults
RESUMABLE_EDITS = {"train." + k for k in ("steps", "checkpoint_every", "keep_checkpoints", "log_every", "device",
                                          "max_minutes", "max_cpu_seconds", "threads", "log")} | {"sample"}


def check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    """Raise :class:`ConfigError` naming every ``RESUME_KEYS`` value that differs from the checkpoint's."""
    current = dataclasses.asdict(config)
    diffs = []
    for key in RESUME_KEYS:
        if key not in saved:  # a checkpoint written without a config (or before the key existed)
            continue
        old, new = saved[key], current[key]
        if (list(old) if isinstance(old, list | tuple) else old) != (list(new) if isinstance(new, tuple) else new):
            diffs.append(f"train.{key} = {old!r} in the checkpoint but {new!r} now")
    if diffs:
        raise ConfigError(f"cannot resume {path}: {'; '.join(diffs)}. These values must stay fixed for the resumed "
                          "run to equal an uninterrupted one: start a new run with --out DIR (or a new run_dir), "
                          "or restore the checkpoint's value(s)")


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def check_run_config(saved: dict[str, Any] | None, current: dict[str, Any] | None, path: Path) -> None:
    """Raise :class:`ConfigError` naming every run-config value edited since the checkpoint, except the
    ones a resumed run may change (:data:`RESUMABLE_EDITS`)."""
    if saved is None or current is None:  # a checkpoint written without a run config (the Python API)
        return
    old, new = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(current)))
    allowed = lambda key: key in RESUMABLE_EDITS or key.split(".")[0] in RESUMABLE_EDITS  # noqa: E731
    # a key the checkpoint lacks is an option added to polydiff since; off (False, None, 0) is how it ran then
    added_off = lambda key: key not in old and new[key] in (None, False, 0)  # noqa: E731
    diffs = [f"{k} = {old.get(k)!r} in the checkpoint but {new.get(k)!r} now"
             for k in sorted(set(old) | set(new)) if not allowed(k) and old.get(k) != new.get(k) and not added_off(k)]
    if diffs:
        raise ConfigError(f"cannot resume {path}: the run's config.json was edited since this checkpoint "
                          f"({'; '.join(diffs)}); a resumed run must equal an uninterrupted one: restore "
                          "those values, or start a new run with --out DIR")


__all__ = ["RESUMABLE_EDITS", "RESUME_KEYS", "check_resumable", "check_run_config"]
