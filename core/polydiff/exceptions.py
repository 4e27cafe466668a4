"""Errors every layer may raise; the CLI turns them into one-line messages with exit code 2."""

from __future__ import annotations


class ConfigError(ValueError):
    """A config key or value is wrong; the message names it and what is valid."""


class NotApplicable(ValueError):
    """Raised by a metric or baseline that does not apply to this dataset (e.g. ``true_nll`` without a
    known mixture); the message is the reason, shown instead of a number."""


__all__ = ["ConfigError", "NotApplicable"]
