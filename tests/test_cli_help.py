"""Every command and every option of the CLI says what it does (``polydiff CMD --help``)."""

from __future__ import annotations

import argparse

from polydiff.app.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: list[str]):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield " ".join([*path, name]), "(the command itself)", helps.get(name)
                yield from _walk(sub, [*path, name])
        elif action.dest != "help":
            yield " ".join(path), "/".join(action.option_strings) or action.dest, action.help


def test_every_command_and_option_has_help_text():
    found = list(_walk(build_parser(), ["polydiff"]))
    assert len(found) > 40  # the walk reaches the subcommands' options
    missing = [f"{cmd}: {opt}" for cmd, opt, text in found if not text or not text.strip()]
    assert not missing, missing
