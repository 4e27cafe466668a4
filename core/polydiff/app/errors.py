"""How the command line reports a failure: one line naming the problem and the fix, never a traceback.

Errors a user can cause (configs, files, checkpoints, disks) exit with code 2; an interrupt with 130;
anything else is a polydiff bug, reported as such with exit code 1. ``POLYDIFF_DEBUG=1`` re-raises
instead, so the traceback is there when it is wanted.
"""

from __future__ import annotations

import errno
import sys

from polydiff.plugins.registry import DuplicateNameError, UnknownNameError
from polydiff.training.checkpoint import CheckpointError

from .config import ConfigError

USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, UnknownNameError, DuplicateNameError, CheckpointError,
                                                 ValueError, OSError, FloatingPointError, MemoryError)
_OS_FIXES = {
    errno.ENOSPC: "free some space or write to another disk (--out)",
    errno.EDQUOT: "free some space or write to another disk (--out)",
    errno.EACCES: "check the permissions, or write somewhere else (--out)",
    errno.EPERM: "check the permissions, or write somewhere else (--out)",
    errno.EROFS: "the file system is read-only: write somewhere else (--out)",
    errno.ENOENT: "check the path",
    errno.EISDIR: "give the path of a file, not a directory",
    errno.ENOTDIR: "a part of the path is a file, not a directory: check the path",
}


def describe(e: BaseException) -> str:
    """The whole message of ``e``; for OS errors, the file, the problem and the fix."""
    if isinstance(e, OSError) and e.strerror:
        where = f"{e.filename}: " if e.filename else ""
        fix = _OS_FIXES.get(e.errno or 0)
        return f"{where}{e.strerror}" + (f"; {fix}" if fix else "")
    if isinstance(e, MemoryError):
        return "out of memory; lower --n, sample.batch_size or train.batch_size"
    text = str(e)
    if isinstance(e, KeyError) and not isinstance(e, UnknownNameError):  # str(KeyError): the quoted key alone
        text = f"missing key {text}"
    return text or type(e).__name__


def report_error(e: BaseException) -> int:
    """Print ``e`` as one line on stderr; return the exit code."""
    if isinstance(e, KeyboardInterrupt):
        print("polydiff: interrupted", file=sys.stderr)
        return 130
    if isinstance(e, USER_ERRORS):
        one_line = " ".join(part.strip() for part in describe(e).splitlines() if part.strip())
        print(f"polydiff: error: {one_line}", file=sys.stderr)
        return 2
    print(f"polydiff: internal error: {type(e).__name__}: {describe(e)}\n"
          "This is a bug in polydiff or a plugin; rerun with POLYDIFF_DEBUG=1 for the traceback and report it.",
          file=sys.stderr)
    return 1


__all__ = ["USER_ERRORS", "describe", "report_error"]
