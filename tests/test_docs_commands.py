"""Every ``polydiff ...`` command line in a fenced code block of README.md and docs/ runs as written.

The commands of one page run in order in one scratch directory (a page's ``sample runs/ring`` uses the
run its ``train ... --out runs/ring`` made), with flags appended that shrink the work (2 training steps,
4 samples) and change nothing else: argparse keeps the last value of a flag and later ``key=value``
overrides win. ``<file>`` and ``<stem>`` placeholders become the newest matching file.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pytest

from polydiff.app.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^```([a-z]*)\s*$")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
RUN_MARK = "<!-- docs-test: run -->"

TRAIN = ["train.steps=2", "train.checkpoint_every=2", "train.log_every=1", "train.batch_size=8",
         "train.warmup_steps=0", "train.max_minutes=none"]
GRID = ["train.steps=2", "train.max_minutes=none", "seeds=[0]", "nfe=[2]", "samplers=[\"euler\"]", "n_samples=8",
        "likelihood=0", "schedules=[\"edm\"]", "weightings=[\"edm\"]", "train.batch_size=8"]
TINY = {"sample": ["--n", "4", "--steps", "2", "--quiet"], "impute": ["--n", "2", "--n-samples", "2", "--steps", "2",
                                                                      "--quiet"],
        "quickstart": ["--steps", "2", "--quiet"], "compare": [*GRID, "--quiet"]}


def commands(page: Path) -> list[list[str] | str]:
    """A page's steps in order: the ``polydiff`` command lines of its shell code blocks, as argument
    lists, and the Python blocks marked ``<!-- docs-test: run -->`` (they make the files the commands
    read), as source text."""
    out: list[list[str] | str] = []
    lang, pending, marked, code = None, "", False, []
    for raw in page.read_text().splitlines():
        if raw.strip() == RUN_MARK:
            marked = True
            continue
        fence = FENCE.match(raw.strip())
        if fence:
            if lang is None:
                lang = fence.group(1)
            else:
                if lang == "python" and marked:
                    out.append("\n".join(code))
                lang, marked, code = None, False, []
            continue
        if lang == "python":
            code.append(raw)
        if lang not in ("bash", "sh", "shell", "console", ""):
            continue
        line = pending + raw
        if line.endswith("\\"):  # a command continued on the next line
            pending = line[:-1] + " "
            continue
        pending = ""
        for part in re.split(r"&&|;", line):
            words = shlex.split(part, comments=True)
            while words and ENV.match(words[0]):
                words = words[1:]
            if words and words[-1] == "&":
                words = words[:-1]
            if words[:1] == ["polydiff"]:
                out.append(words[1:])
    return out if any(isinstance(step, list) for step in out) else []


def shrink(argv: list[str]) -> list[str]:
    cmd = argv[0] if argv else ""
    if cmd == "train" and "--resume" not in argv:
        return [*argv, *TRAIN]
    if cmd == "evaluate" and "--imputations" not in argv and "--likelihood-n" not in argv:
        return [*argv, "--likelihood-n", "4", "--quiet"]
    return [*argv, *TINY.get(cmd, [])]


def resolve_placeholders(argv: list[str], cwd: Path) -> list[str]:
    out = []
    for arg in argv:
        if "<file>" in arg or "<stem>" in arg:
            pattern = arg.replace("<file>", "*").replace("<stem>", "*")
            found = sorted(cwd.glob(pattern), key=lambda p: p.stat().st_mtime)
            assert found, f"no file matches {arg} (the page's earlier commands should have made one)"
            arg = str(found[-1].relative_to(cwd))
        out.append(arg)
    return out


CASES = [(p, c) for p in PAGES if (c := commands(p))]


def test_the_pages_have_commands():
    names = {p.name for p, _ in CASES}
    assert {"README.md", "index.md", "compare.md"} <= names
    assert sum(isinstance(step, list) for _, c in CASES for step in c) >= 30


@pytest.fixture(scope="module")
def shared_results(tmp_path_factory):
    """Comparison results shared by the pages: the same grid command on three pages resumes instead of
    training its cells again (the resume is what `polydiff compare` promises)."""
    return tmp_path_factory.mktemp("results")


@pytest.mark.parametrize("page,cmds", CASES, ids=[str(p.relative_to(ROOT)) for p, _ in CASES])
def test_every_documented_command_runs(page, cmds, tmp_path, monkeypatch, capsys, request, shared_results):
    if page.name == "tutorial-plugin.md":  # the page has the reader `pip install -e examples/plugin_trajectories`
        request.getfixturevalue("trajectories_installed")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    shutil.copytree(shared_results, tmp_path / "results", dirs_exist_ok=True)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("POLYDIFF_QUIET", "1")
    for argv in cmds:
        if isinstance(argv, str):  # a marked Python block: the files the page's commands read
            exec(compile(argv, f"{page.name} (python block)", "exec"), {"__name__": "__docs__"})
            continue
        full = resolve_placeholders(shrink(argv), tmp_path)
        try:
            code = main(full)
        except SystemExit as e:
            code = e.code
        err = capsys.readouterr().err
        assert code == 0, f"{page.name}: `polydiff {' '.join(argv)}` failed:\n{err[-2000:]}"
    if (tmp_path / "results").is_dir():
        shutil.copytree(tmp_path / "results", shared_results, dirs_exist_ok=True)
