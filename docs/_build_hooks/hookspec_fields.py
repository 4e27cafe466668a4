"""A griffe extension for the docs build: the hookspecs keep pluggy's ``:return:`` field style (the
test of hook documentation checks it), so their docstrings are parsed as Sphinx-style fields; every
other docstring of the package stays Google style (mkdocs.yml ``docstring_style``)."""

from __future__ import annotations

from typing import Any

import griffe

MODULE = "polydiff.plugins.hookspecs"


class HookspecFields(griffe.Extension):
    """Parse the docstrings of ``polydiff.plugins.hookspecs`` functions with the Sphinx parser."""

    def on_function_instance(self, *, func: griffe.Function, **kwargs: Any) -> None:
        if func.parent is not None and func.parent.path == MODULE and func.docstring is not None:
            func.docstring.parser = griffe.Parser.sphinx
            func.docstring.parser_options = {}  # the Google options (mkdocs.yml) do not apply to it
