"""Checkpoints: one directory per step, safetensors + JSON only (no pickles), written atomically.

Layout::

    run_dir/checkpoints/step_00000100/
        model.safetensors      # the denoiser's state_dict
        ema.safetensors        # the EMA weights (what sampling uses)
        optimizer.safetensors  # optimizer state tensors, flattened as "state.<param>.<key>"
        state.json             # step, config, versions, sha256 of every file, non-tensor state
    run_dir/checkpoints/latest # name of the newest complete checkpoint

A checkpoint is built in a temporary sibling directory, fsynced, then renamed into place, and only
then does ``latest`` move (itself by an atomic rename); a crash at any point leaves either the old
or the new checkpoint complete, never a half-written one that :func:`latest_checkpoint` returns.
Re-saving an existing step first renames the old copy aside (``.tmp-old-step_N-PID``), renames the
new one into place, and only then deletes the old one; a crash between the two renames leaves the
old copy aside: :func:`latest_checkpoint` still finds it and :func:`remove_stale_temporaries` restores it.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

FILES = ("model.safetensors", "ema.safetensors", "optimizer.safetensors")
STEP_DIR = re.compile(r"^step_(\d{8,})$")
TMP_PREFIX = ".tmp-"
OLD_PREFIX = f"{TMP_PREFIX}old-"  # the previous copy of a step being re-saved, until the new one is in place
SET_ASIDE = re.compile(rf"^{re.escape(OLD_PREFIX)}(step_\d{{8,}})-\d+$")


class CheckpointError(RuntimeError):
    """A checkpoint is corrupt, truncated or incomplete; the message names the file and the fix."""


@dataclass
class Checkpoint:
    """What :func:`read_checkpoint` returns: state dicts ready for ``load_state_dict``."""

    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    optimizer: dict[str, Any]
    state: dict[str, Any]
    path: Path

    @property
    def step(self) -> int:
        return int(self.state["step"])


def checkpoints_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_name(step: int) -> str:
    return f"step_{step:08d}"


# -- writing ------------------------------------------------------------------------------------
def _tensors(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """CPU, contiguous, and un-aliased: safetensors refuses tensors that share memory (tied weights)."""
    out, seen = {}, set()
    for k, v in state.items():
        t = v.detach().cpu().contiguous()
        key = (t.untyped_storage().data_ptr(), t.storage_offset())
        out[k] = t.clone() if key in seen else t
        seen.add(key)
    return out


def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Optimizer ``state_dict`` -> (tensors named ``state.<param>.<key>``, JSON-able rest)."""
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, per_param in state_dict["state"].items():
        for key, value in per_param.items():
            if isinstance(value, Tensor):
                tensors[f"state.{pid}.{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return _tensors(tensors), {"param_groups": state_dict["param_groups"], "scalars": scalars}


def unflatten_optimizer(tensors: dict[str, Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = value
    for pid, values in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": meta["param_groups"]}


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    if os.name == "nt" and path.is_dir():  # Windows cannot open a directory to fsync it
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _state_digest(state: dict[str, Any]) -> str:
    """sha256 of state.json's own content (step, config, hashes...), so an edited step is caught too."""
    body = {k: v for k, v in state.items() if k != "state_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    _fsync(path)


def versions() -> dict[str, str]:
    from polydiff._version import __version__

    return {"polydiff": __version__, "torch": torch.__version__, "safetensors": safetensors.__version__,
            "python": platform.python_version()}


def save_checkpoint(run_dir: str | Path, *, step: int, model: dict[str, Tensor], ema: dict[str, Tensor],
                    optimizer: dict[str, Any], config: dict[str, Any] | None = None,
                    extra: dict[str, Any] | None = None, keep: int | None = None) -> Path:
    """Write ``checkpoints/step_XXXXXXXX`` atomically, point ``latest`` at it, keep the newest ``keep``."""
    root = checkpoints_dir(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / step_name(step)
    tmp = root / f"{TMP_PREFIX}{step_name(step)}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    opt_tensors, opt_meta = flatten_optimizer(optimizer)
    for name, tensors in zip(FILES, (_tensors(model), _tensors(ema), opt_tensors), strict=True):
        save_file(tensors, str(tmp / name))
        _fsync(tmp / name)
    state: dict[str, Any] = {"step": step, "config": config or {}, "versions": versions(), "optimizer": opt_meta,
                             "extra": extra or {}, "sha256": {name: _sha256(tmp / name) for name in FILES}}
    state["state_sha256"] = _state_digest(state)
    _write_json(tmp / "state.json", state)  # written last: its presence marks a complete directory
    _fsync(tmp)
    old = None
    if final.exists():  # re-saving a step (e.g. after a resume): set the old copy aside, delete it last
        old = root / f"{OLD_PREFIX}{step_name(step)}-{os.getpid()}"
        os.replace(final, old)  # a crash before the next rename: `old` is restored
    os.replace(tmp, final)
    _fsync(root)
    if old is not None:
        shutil.rmtree(old)
    pointer = root / f"{TMP_PREFIX}latest-{os.getpid()}"
    pointer.write_text(final.name + "\n")
    _fsync(pointer)
    os.replace(pointer, root / "latest")
    _fsync(root)
    if keep is not None:
        for old_dir in _complete(root)[:-keep]:
            shutil.rmtree(old_dir, ignore_errors=True)
    return final


# -- reading ------------------------------------------------------------------------------------
def _step_name(path: Path) -> str:
    """``step_N`` of a checkpoint directory, or of a copy set aside by a re-save."""
    m = SET_ASIDE.match(path.name)
    return m.group(1) if m else path.name


def _step(path: Path) -> int:
    return int(_step_name(path)[5:])


def _complete(root: Path) -> list[Path]:
    """Complete checkpoint directories (named step_N, with a state.json), oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and STEP_DIR.match(p.name) and (p / "state.json").is_file()]
    return sorted(found, key=_step)


def _set_aside(root: Path) -> list[Path]:
    """Complete copies that a crashed re-save set aside while their ``step_N`` is missing, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if SET_ASIDE.match(p.name) and not (root / _step_name(p)).exists()
             and (p / "state.json").is_file()]
    return sorted(found, key=_step)


def list_checkpoints(run_dir: str | Path) -> list[Path]:
    return _complete(checkpoints_dir(run_dir))


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint directory of a run, or ``None``.

    Follows the ``latest`` pointer when it names a complete checkpoint; otherwise (pointer missing,
    or its checkpoint deleted) the highest complete ``step_*`` directory. Temporary directories of
    an interrupted write are never returned, with one exception: when a re-save of step N crashed
    between its two renames, the old copy set aside (``.tmp-old-step_N-PID``) is the only copy of
    step N and counts as step N (it is read-only here: :func:`remove_stale_temporaries` renames it back).
    """
    root = checkpoints_dir(run_dir)
    found = sorted(_complete(root) + _set_aside(root), key=_step)
    pointer = root / "latest"
    if pointer.is_file():
        name = pointer.read_text().strip()
        cand = root / name
        if STEP_DIR.match(name) and (cand / "state.json").is_file():
            # a newer complete one can exist if the pointer update was the step that crashed
            return found[-1] if found and _step(found[-1]) > _step(cand) else cand
    return found[-1] if found else None


def _fix(path: Path) -> str:
    return (f"delete {path} to resume from the previous checkpoint "
            f"(`rm -r {path}`; the `latest` pointer then falls back to the newest remaining one)")


def read_checkpoint(path: str | Path, *, verify: bool = True) -> Checkpoint:
    """Load a checkpoint directory; with ``verify`` every file's sha256 is checked against state.json.

    Raises:
        CheckpointError: a file is missing, truncated, corrupt or unreadable (names the file and the fix).
    """
    path = Path(path)
    state_file = path / "state.json"
    try:
        state = json.loads(state_file.read_text())
        hashes = state["sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{state_file} is missing or unreadable ({e}); {_fix(path)}") from e
    if verify and "state_sha256" in state and state["state_sha256"] != _state_digest(state):
        raise CheckpointError(f"{state_file} was edited (its content no longer matches its sha256); {_fix(path)}")
    try:
        int(state["step"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{state_file} has no valid step; {_fix(path)}") from e
    loaded: dict[str, dict[str, Tensor]] = {}
    for name in FILES:
        file = path / name
        if not file.is_file():
            raise CheckpointError(f"{file} is missing; {_fix(path)}")
        if verify and _sha256(file) != hashes.get(name):
            raise CheckpointError(f"{file} is corrupt or truncated (sha256 does not match state.json); {_fix(path)}")
        try:
            loaded[name] = load_file(str(file))
        except Exception as e:  # safetensors raises several types for a damaged header
            raise CheckpointError(f"{file} is not a readable safetensors file ({e}); {_fix(path)}") from e
    optimizer = unflatten_optimizer(loaded["optimizer.safetensors"], state.get("optimizer", {"param_groups": []}))
    return Checkpoint(model=loaded["model.safetensors"], ema=loaded["ema.safetensors"], optimizer=optimizer,
                      state=state, path=path)


def _restore_set_aside(root: Path) -> None:
    """Rename back into place the copies a crashed re-save set aside (see :func:`save_checkpoint`)."""
    for p in _set_aside(root):
        final = root / _step_name(p)
        if not final.exists():  # two crashed re-saves of one step: restore one copy, sweep the other
            os.replace(p, final)
            _fsync(root)


def remove_stale_temporaries(run_dir: str | Path) -> None:
    """Delete temporary directories left by a crashed write (call on one process only).

    A complete copy that an interrupted re-save set aside, while its ``step_N`` is missing, is
    renamed back to ``step_N`` rather than deleted.
    """
    root = checkpoints_dir(run_dir)
    _restore_set_aside(root)  # before the sweep below: a step's only copy is never deleted
    if root.is_dir():
        for p in root.iterdir():
            if p.name.startswith(TMP_PREFIX):
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


__all__ = ["Checkpoint", "CheckpointError", "latest_checkpoint", "list_checkpoints", "read_checkpoint",
           "remove_stale_temporaries", "save_checkpoint"]
