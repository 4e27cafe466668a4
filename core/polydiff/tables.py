"""Plain-text tables that fit the terminal: the widest columns wrap instead of running off the edge."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

DEFAULT_WIDTH = 100
"""Width when the output is not a terminal and ``COLUMNS`` is not set."""
MIN_COLUMN = 8
"""A column is never narrowed below this (or below its header, or its natural width if smaller)."""
SEP = "  "


def terminal_width(default: int = DEFAULT_WIDTH) -> int:
    """``COLUMNS``, else the terminal's width, else ``default`` (not a tty)."""
    return shutil.get_terminal_size((default, 24)).columns


def _fit(natural: list[int], floors: list[int], avail: int) -> list[int]:
    """Narrow the widest column, one character at a time, until the widths fit ``avail``."""
    widths = list(natural)
    while sum(widths) > avail:
        shrinkable = [i for i, w in enumerate(widths) if w > floors[i]]
        if not shrinkable:
            break  # cannot fit: every column is at its floor
        widest = max(shrinkable, key=lambda i: widths[i])
        widths[widest] -= 1
    return widths


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        lines.extend(textwrap.wrap(paragraph, width, break_long_words=True, break_on_hyphens=False) or [""])
    return lines


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], width: int | None = None) -> str:
    """``rows`` (mappings from column name to value, missing ones blank) as a table: a header, a rule of
    dashes, one row per item, columns two spaces apart, trailing spaces stripped.

    Args:
        rows: the items; ``"(none)"`` when empty.
        columns: the keys to show, in order (also the header).
        width: the longest line allowed; default :func:`terminal_width` (100 when not a terminal).
            When the table is wider, the widest columns are narrowed (to no less than
            :data:`MIN_COLUMN`, their header or their natural width) and their cells wrapped onto more
            lines; only a width too small even for that gives longer lines. Nothing is ever cut.
    """
    if not rows:
        return "(none)"
    width = terminal_width() if width is None else width
    if width < 1:
        raise ValueError(f"table width must be a positive number of characters, got {width}")
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    natural = [max(len(c), *(len(line) for r in cells for line in r[i].splitlines() or [""]))
               for i, c in enumerate(columns)]
    floors = [min(n, max(len(c), MIN_COLUMN)) for n, c in zip(natural, columns, strict=True)]
    floors[0] = natural[0]  # the first column names the rows (a method, a metric): never wrapped mid-word
    widths = _fit(natural, floors, width - len(SEP) * (len(columns) - 1))

    def line(values: Sequence[str]) -> str:
        return SEP.join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(list(columns)), line(["-" * w for w in widths])]
    for r in cells:
        wrapped = [_wrap(text, w) for text, w in zip(r, widths, strict=True)]
        for k in range(max(map(len, wrapped))):
            out.append(line([col[k] if k < len(col) else "" for col in wrapped]))
    return "\n".join(out)


__all__ = ["DEFAULT_WIDTH", "MIN_COLUMN", "format_table", "terminal_width"]
