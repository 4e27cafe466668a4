"""MkDocs hook: the CLI reference page is generated from the argparse parser at build time, so it
cannot drift from the code (a command without help text shows up as an empty section)."""

from __future__ import annotations

import argparse
from typing import Any

MARKER = "<!-- polydiff-cli-reference -->"


def cli_reference() -> str:
    from polydiff.app.cli import build_parser

    parser = build_parser()
    parser.prog = "polydiff"
    out = ["```text", parser.format_help().rstrip(), "```", ""]
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {a.dest: a.help for a in sub._choices_actions}
    for name, cmd in sub.choices.items():
        cmd.prog = f"polydiff {name}"
        out += [f"## `polydiff {name}`", "", helps.get(name) or "", ""]
        out += ["```text", cmd.format_help().rstrip(), "```", ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, **_: Any) -> str:
    return markdown.replace(MARKER, cli_reference()) if MARKER in markdown else markdown
