"""hookspecs.py is the reference documentation: every hook must say what it returns and since when."""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable

from polydiff import plugins
from polydiff.plugins import hookspecs
from polydiff.plugins.hookspecs import hookspec


def hookspecs_of(module: types.ModuleType) -> dict[str, Callable[..., object]]:
    """The functions of ``module`` marked with polydiff's :data:`hookspec`."""
    return {name: fn for name, fn in vars(module).items()
            if name.startswith("polydiff_") and callable(fn) and hasattr(fn, "polydiff_spec")}


def undocumented(module: types.ModuleType) -> list[str]:
    """One line per documentation gap: no docstring, no ``:return:``, no ``versionadded``, an
    undescribed parameter or a missing return annotation."""
    problems = []
    for name, fn in sorted(hookspecs_of(module).items()):
        doc = inspect.getdoc(fn) or ""
        if not doc:
            problems.append(f"{name}: no docstring")
            continue
        sig = inspect.signature(fn)
        missing = [m for m in (":return:", "versionadded") if m not in doc]
        missing += [f"parameter {p!r}" for p in sig.parameters if not re.search(rf"\b{p}\b", doc)]
        if sig.return_annotation is inspect.Signature.empty:
            missing.append("return annotation")
        if missing:
            problems.append(f"{name}: docstring lacks {', '.join(missing)}")
    return problems


def test_every_hookspec_is_documented():
    assert len(hookspecs_of(hookspecs)) >= 7
    assert undocumented(hookspecs) == []
    for fn in hookspecs_of(hookspecs).values():
        assert re.search(r"versionadded:: \d+\.\d+", inspect.getdoc(fn) or "")


def test_docs_check_fails_on_undocumented_hooks():
    fake = types.ModuleType("fake_hookspecs")

    @hookspec
    def polydiff_register_nothing():
        pass

    @hookspec
    def polydiff_register_half(limit: int) -> list[str]:
        """Return things. :return: a list. ``versionadded:: 0.2``"""
        return []

    def polydiff_not_a_spec() -> None:
        """Not marked, so not checked."""

    for fn in (polydiff_register_nothing, polydiff_register_half, polydiff_not_a_spec):
        setattr(fake, fn.__name__, fn)
    assert undocumented(fake) == ["polydiff_register_half: docstring lacks parameter 'limit'",
                                  "polydiff_register_nothing: no docstring"]


def test_every_hook_feeds_a_registry_with_its_documented_type():
    specs = hookspecs_of(hookspecs)
    assert set(specs) == set(plugins.KINDS_BY_HOOK)
    for kind, (hook, cls, _) in plugins.KINDS.items():
        assert inspect.signature(specs[hook]).return_annotation == f"list[{cls.__name__}]", kind
        assert cls.__name__ in (inspect.getdoc(specs[hook]) or ""), f"{hook} docstring should name {cls.__name__}"


def test_every_first_party_plugin_has_a_docs_page_in_the_site():
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    entry_points = tomllib.loads((root / "pyproject.toml").read_text())["project"]["entry-points"]["polydiff"]
    nav = (root / "mkdocs.yml").read_text()
    for name in [*entry_points, "points"]:
        page = root / "docs" / "plugins" / f"{name}.md"
        assert page.is_file() and len(page.read_text()) > 500, f"docs/plugins/{name}.md is missing or a stub"
        assert f"plugins/{name}.md" in nav, f"docs/plugins/{name}.md is not in the mkdocs.yml nav"
