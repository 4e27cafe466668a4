"""Tables that fit the terminal (issue 21 item 3): wrap the widest columns, never cut anything."""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest

from polydiff import plugins
from polydiff.app.cli import _plugin_row
from polydiff.tables import format_table, terminal_width

ROWS = [{"name": "euler", "description": "first order"}, {"name": "dpmpp_2m", "description": "second order"}]


def parse(table: str, columns: list[str]) -> list[dict[str, str]]:
    """Rows back from a table: column starts from the header, a row starts where the first column is filled;
    each cell's pieces joined without spaces (a wrapped word may be split)."""
    lines = table.splitlines()
    starts = [lines[0].index(c) for c in columns] + [10**6]
    rows: list[dict[str, str]] = []
    for text in lines[2:]:
        pieces = [text[a:b].strip() for a, b in itertools.pairwise(starts)]
        if pieces[0]:
            rows.append({c: "" for c in columns})
        for c, piece in zip(columns, pieces, strict=True):
            rows[-1][c] += piece.replace(" ", "")
    return rows


def test_a_table_that_fits_is_unchanged():
    assert format_table(ROWS, ["name", "description"], width=100) == textwrap.dedent("""\
        name      description
        --------  ------------
        euler     first order
        dpmpp_2m  second order""")
    assert format_table([], ["name"]) == "(none)"
    assert format_table([{"name": "x"}], ["name", "missing"], width=100).splitlines()[2] == "x"


@pytest.fixture
def failing_plugins(tmp_path, monkeypatch):
    """Two plugins with long failure reasons, so the status column is long (the real 239-column case)."""
    for name, source in {"broken": "import pdtab_dependency_that_is_missing_with_a_rather_long_name\n",
                         "crash": "raise RuntimeError('a bug at import time, described at length ' * 3)\n"}.items():
        (tmp_path / f"pdtab_{name}").mkdir()
        (tmp_path / f"pdtab_{name}" / "__init__.py").write_text(source)
        info = tmp_path / f"pdtab_{name}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pdtab-{name}\nVersion: 1.0\n"
                                       f"Provides-Extra: {name}\n")
        (info / "entry_points.txt").write_text(f"[polydiff]\n{name} = pdtab_{name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    plugins.reset()
    yield
    plugins.reset()
    for m in [m for m in sys.modules if m.startswith("pdtab_")]:
        del sys.modules[m]


@pytest.mark.parametrize("width", [100, 72])
def test_the_plugins_table_fits_and_keeps_every_character(failing_plugins, width):
    columns = ["name", "version", "source", "status", "provides"]
    rows = [_plugin_row(p, full=False) for p in plugins.plugins()]
    natural = format_table(rows, columns, width=10_000)
    assert max(map(len, natural.splitlines())) > 150  # the problem: one line per plugin, far too wide
    table = format_table(rows, columns, width=width)
    assert max(map(len, table.splitlines())) <= width
    assert parse(table, columns) == [{c: str(r[c]).replace(" ", "") for c in columns} for r in rows]
    assert parse(natural, columns) == parse(table, columns)
    assert "Installitwith:pipinstall'pdtab-broken[broken]'" in "".join(table.split())


def test_a_width_too_small_for_the_columns_still_cuts_nothing():
    table = format_table(ROWS, ["name", "description"], width=12)
    assert parse(table, ["name", "description"]) == [{"name": r["name"], "description": r["description"].replace(
        " ", "")} for r in ROWS]
    assert max(map(len, table.splitlines())) == len("dpmpp_2m") + 2 + len("description")  # the floors
    with pytest.raises(ValueError, match="table width must be a positive number"):
        format_table(ROWS, ["name"], width=0)


def test_width_defaults_to_the_terminal_or_100(monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    assert terminal_width() == 100  # pytest captures stdout: not a terminal
    monkeypatch.setenv("COLUMNS", "30")
    assert terminal_width() == 30
    long = [{"name": "x", "description": "word " * 20}]
    assert max(map(len, format_table(long, ["name", "description"]).splitlines())) <= 30
