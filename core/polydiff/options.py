"""The one place options are checked: a config section, a dataset's or backbone's options, a sampler's
or a mask strategy's, from a file, the CLI or Python. Unknown keys are named with the valid ones (and a
close match); values are converted to the type of the declared default ("3" -> 3 from the CLI)."""

from __future__ import annotations

import difflib
import inspect
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

from polydiff.exceptions import ConfigError


def did_you_mean(name: str, valid: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(valid), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def coerce(value: Any, annotation: Any, key: str) -> Any:
    """Check ``value`` against a type annotation, converting CLI strings ("3", "true") as needed."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key} = {value!r} is not valid; choose one of: {', '.join(map(str, args))}")
        return value
    if origin in (typing.Union, types.UnionType):
        is_none = value is None or (isinstance(value, str) and value.lower() in ("none", "null"))
        if is_none and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"{key}: bad value {value!r}")
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a table/mapping, got {value!r}")
        return dict(value)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key} must be a list, got {value!r}")
        return tuple(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        try:
            out = annotation(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be {'an integer' if annotation is int else 'a number'}, "
                              f"got {value!r}") from None
        if annotation is int and isinstance(value, float) and out != value:
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return out
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    return value


def check_options(given: Mapping[str, Any], defaults: Mapping[str, Any], section: str, owner: str,
                  reserved: typing.Iterable[str] = ()) -> dict[str, Any]:
    """Validate plugin options against the defaults a spec declares (types follow the defaults).

    ``reserved``: the section's own keys, which a plugin may not reuse as option names (they sit
    side by side in the config file)."""
    clash = sorted(set(defaults) & set(reserved))
    if clash:
        raise ConfigError(f"{owner} declares option(s) {', '.join(clash)}, which [{section}] already uses; "
                          "the plugin must rename them")
    out = dict(defaults)
    for key, value in given.items():
        if key not in defaults:
            valid = ", ".join(sorted(defaults)) or "(none)"
            raise ConfigError(f"unknown key {section}.{key}{did_you_mean(key, defaults)}: {owner} accepts {valid}")
        default = defaults[key]
        out[key] = value if default is None else coerce(value, type(default), f"{section}.{key}")
    return out


def signature_options(fn: Callable[..., Any], *, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """The keyword options of a builder and their defaults, read from its signature (the ONE source of
    a spec's ``options``: the builder's defaults cannot drift from what ``polydiff list`` shows)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):  # a builtin or C function without a readable signature: no options
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty
            and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in exclude}


class _FromSignature(Mapping[str, Any]):
    """An empty, hashable mapping (a dataclass default) that a spec replaces with its signature's options."""

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "FROM_SIGNATURE"


FROM_SIGNATURE: Mapping[str, Any] = _FromSignature()
"""A spec's ``options`` default: read them from its ``build`` / ``fn`` with :func:`signature_options`."""


__all__ = ["FROM_SIGNATURE", "check_options", "coerce", "did_you_mean", "signature_options"]
