"""Running plugin code so that nothing it raises takes the host down.

:func:`guarded` runs one piece of plugin code (an import, a hook) and turns every exception it raises,
``SystemExit`` and ``KeyboardInterrupt`` included, into a :class:`PluginCodeError` that the host
records as the plugin's failure, with one exception: a **Ctrl-C from the user** still stops the
program.

The rule that tells the two ``KeyboardInterrupt`` apart: while plugin code runs in the main thread,
the host wraps the current Python ``SIGINT`` handler in one that counts the signals it receives (and
then calls the wrapped handler, which raises ``KeyboardInterrupt`` as usual). A ``KeyboardInterrupt``
that escapes plugin code is the user's when a ``SIGINT`` arrived during that code (it is re-raised),
and the plugin's own when none did (``raise KeyboardInterrupt`` in the plugin: it marks the plugin
unavailable). In other threads, and when ``SIGINT`` is ignored or left to the operating system
(``SIG_IGN`` / ``SIG_DFL``), a Ctrl-C never becomes a ``KeyboardInterrupt`` there, so every one comes
from plugin code. ``_thread.interrupt_main()`` simulates a signal and counts as the user's.
"""

from __future__ import annotations

import importlib.metadata
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

_lock = threading.Lock()
_depth = 0  # nested guarded blocks in the main thread
_previous: Any = None  # the handler we wrapped
_sigints = 0  # SIGINTs received while our handler was installed (monotonic)


class PluginCodeError(Exception):
    """Plugin code raised ``exc`` (any exception but the user's Ctrl-C)."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(describe(exc))
        self.exc = exc


def describe(exc: BaseException) -> str:
    """``"Type: message"`` (``"Type"`` alone when there is no message), whole and on one line."""
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyboardInterrupt):
        text = text or "raised by the plugin's own code, not by a Ctrl-C"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _sigints
    _sigints += 1
    handler = _previous if callable(_previous) else signal.default_int_handler
    handler(signum, frame)


@contextmanager
def _watch_sigint() -> Iterator[Callable[[], bool]]:
    """Yields ``interrupted()``: whether a SIGINT arrived since the block began."""
    global _depth, _previous
    installed = False
    if threading.current_thread() is threading.main_thread():
        with _lock:
            if _depth == 0:
                current = signal.getsignal(signal.SIGINT)
                if callable(current) and current is not _on_sigint:
                    try:
                        signal.signal(signal.SIGINT, _on_sigint)
                        _previous = current
                    except ValueError:  # not the main interpreter
                        pass
            _depth += 1
            installed = True
    start = _sigints
    try:
        yield lambda: _sigints != start
    finally:
        if installed:
            with _lock:
                _depth -= 1
                if _depth == 0 and _previous is not None:
                    if signal.getsignal(signal.SIGINT) is _on_sigint:  # a plugin may have set its own
                        signal.signal(signal.SIGINT, _previous)
                    _previous = None


def guarded(fn: Callable[[], T]) -> T:
    """``fn()``; whatever it raises becomes :class:`PluginCodeError`, except the user's Ctrl-C."""
    with _watch_sigint() as interrupted:
        try:
            return fn()
        except KeyboardInterrupt as e:
            if interrupted():
                raise
            raise PluginCodeError(e) from e
        except BaseException as e:  # SystemExit, GeneratorExit, exotic BaseException subclasses too
            raise PluginCodeError(e) from e


def _top(module: str) -> str:
    return module.split(".")[0]


def import_failure(exc: BaseException, module: str, dist: importlib.metadata.Distribution | None,
                   extra: str | None) -> tuple[str, str | None]:
    """``(reason, install command or None)`` for a plugin ``module`` that failed to import.

    The install command is given only when the cause is a missing module other than the plugin's own
    package: ``pip install 'dist[extra]'`` when the distribution declares the extra, else
    ``pip install dist``. A missing module inside the plugin's own package is a bug in the plugin (its
    real error is shown); a missing plugin package means its distribution is broken (reinstall it).
    """
    reason = describe(exc)
    missing = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    if not missing:
        return reason, None
    if _top(missing) == _top(module):
        if module == missing or module.startswith(missing + "."):
            owner = f"{dist.metadata['Name']} {dist.version}" if dist is not None else "its distribution"
            return f"{reason} (the entry point names a module that is not installed: reinstall {owner})", None
        return reason, None
    if dist is None:  # a plugin module from the working directory: its error names what is missing
        return reason, None
    extras = dist.metadata.get_all("Provides-Extra") or []
    name = dist.metadata["Name"]
    return reason, (f"pip install '{name}[{extra}]'" if extra in extras else f"pip install {name}")


def check_module_name(name: str) -> str | None:
    """Why ``name`` is not an importable dotted module name (None when it is)."""
    if name.endswith(".py") or "/" in name or "\\" in name:
        stem = name.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".py")
        return f"{name!r} is a file name; give the module name (e.g. {stem!r}), importable from the working directory"
    if not name or not all(part.isidentifier() for part in name.split(".")):
        return f"{name!r} is not a module name (dotted Python identifiers, e.g. 'my_plugin' or 'pkg.plugin')"
    return None


__all__ = ["PluginCodeError", "check_module_name", "describe", "guarded", "import_failure"]
