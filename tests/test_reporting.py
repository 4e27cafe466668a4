"""polydiff.report: one 'polydiff: ' line on stderr, silenced by POLYDIFF_QUIET / set_quiet / quiet()."""

from __future__ import annotations

import polydiff
from polydiff.reporting import is_quiet, quiet, report, set_quiet


def test_report_is_one_prefixed_line_on_stderr(capsys) -> None:
    polydiff.report("loaded 3 items\n  2 skipped")
    out = capsys.readouterr()
    assert out.out == "" and out.err == "polydiff: loaded 3 items; 2 skipped\n"


def test_quiet_by_environment_setter_and_context(capsys, monkeypatch) -> None:
    monkeypatch.setenv("POLYDIFF_QUIET", "1")
    report("hidden")
    monkeypatch.setenv("POLYDIFF_QUIET", "0")
    report("shown")
    assert capsys.readouterr().err == "polydiff: shown\n"
    try:
        set_quiet(True)
        report("hidden")
        with quiet(False):
            report("inside")
        assert is_quiet()  # the context restored the setting
    finally:
        set_quiet(None)
    assert not is_quiet() and capsys.readouterr().err == "polydiff: inside\n"
