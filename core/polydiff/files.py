"""Reading and writing the files a run owns: atomic writes, and reads whose errors name the file.

Every output polydiff writes (samples, imputations, reports, JSON results) goes to a temporary
sibling first and is renamed into place, so a kill or a full disk never leaves a half-written file
under the final name. Reads raise :class:`~polydiff.app.config.ConfigError` with the file, the problem and
the fix, never a bare ``UnicodeDecodeError: 'utf-8'``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import Tensor

from polydiff.exceptions import ConfigError


def _tmp(path: Path) -> Path:
    return path.with_name(f".tmp-{path.name}-{os.getpid()}")


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary sibling and a rename."""
    path = Path(path)
    tmp = _tmp(path)
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_json(path: str | Path, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, default=float) + "\n")


def atomic_save_tensors(tensors: Mapping[str, Tensor], path: str | Path,
                        metadata: Mapping[str, str] | None = None) -> Path:
    """``safetensors.torch.save_file`` through a temporary sibling and a rename."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = _tmp(path)
    try:
        save_file(dict(tensors), str(tmp), metadata=dict(metadata) if metadata is not None else None)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_text(path: str | Path, what: str = "file") -> str:
    """The text of a UTF-8 file, or a ConfigError naming the file and the problem."""
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a directory; give the path of a file")
    if not p.exists():
        raise ConfigError(f"{what} {p} does not exist; check the path")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{what} {p} is not UTF-8 text ({e}); save it as UTF-8") from e


def read_json(path: str | Path, what: str = "JSON file") -> Any:
    """A JSON file's content, or a ConfigError naming the file, the line and the fix."""
    p = Path(path)
    text = read_text(p, what)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{what} {p} is not valid JSON ({e}); it was edited or truncated: "
                          "restore it, or delete it if polydiff wrote it and can make it again") from e


def read_safetensors(path: str | Path, what: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Tensors and metadata of a ``.safetensors`` file, or a ConfigError naming it."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{what} {p} is a directory; give a .safetensors file written by polydiff")
    if not p.is_file():
        raise ConfigError(f"{what} {p} does not exist; check the path")
    try:
        with safe_open(str(p), "pt") as f:
            meta = dict(f.metadata() or {})
        return load_file(str(p)), meta
    except Exception as e:  # safetensors raises its own error types for a bad header or a truncated file
        raise ConfigError(f"{what} {p} is not a readable .safetensors file ({e}); give a file written by "
                          "polydiff") from e


__all__ = ["atomic_save_tensors", "atomic_write_json", "atomic_write_text", "read_json", "read_safetensors",
           "read_text"]
