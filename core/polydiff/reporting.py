"""One-line reports to the user: what a loader did with their data (items, shapes, what was dropped,
merged, regridded or resampled, and why).

Plugins call :func:`report`; it writes ``polydiff: <message>`` to stderr (stdout stays free for
results and JSON) unless reports are silenced, with ``POLYDIFF_QUIET=1`` in the environment or
:func:`set_quiet` / the :func:`quiet` context manager (tests, library use).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_QUIET: bool | None = None  # None: follow the POLYDIFF_QUIET environment variable


def is_quiet() -> bool:
    """Whether :func:`report` is silenced (``set_quiet`` wins over ``POLYDIFF_QUIET``)."""
    if _QUIET is not None:
        return _QUIET
    return os.environ.get("POLYDIFF_QUIET", "").strip().lower() not in ("", "0", "false", "no")


def set_quiet(flag: bool | None) -> None:
    """Silence (``True``) or enable (``False``) reports; ``None`` follows ``POLYDIFF_QUIET`` again."""
    global _QUIET
    _QUIET = flag


@contextmanager
def quiet(flag: bool = True) -> Iterator[None]:
    """Silence reports inside a ``with`` block (restores the previous setting)."""
    global _QUIET
    before, _QUIET = _QUIET, flag
    try:
        yield
    finally:
        _QUIET = before


def report(message: str) -> None:
    """Print ``polydiff: message`` as one line on stderr, unless quiet; newlines are folded to ``; ``."""
    if is_quiet():
        return
    line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    print(f"polydiff: {line}", file=sys.stderr, flush=True)


__all__ = ["is_quiet", "quiet", "report", "set_quiet"]
