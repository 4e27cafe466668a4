"""The import graph of the core, read from the source (AST): the maths never imports the plugin host, the
trainer or the app; and no import cycle exists beyond the one the layered restructure (issue 19) removes.

Imports under ``if TYPE_CHECKING:`` do not count; imports inside functions (lazy ones) do.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core" / "polydiff"

# pure maths: schedules, parameterizations, losses, noise, samplers, guidance, likelihood, masks, states
MATHS = {"schedules", "parameterization", "losses", "noise", "samplers", "multistep", "_stepping", "guidance",
         "likelihood", "masking", "state", "data", "_utils", "gmm"}
ABOVE_MATHS = {"plugins", "_host", "builtin", "hookspecs", "_registry", "_plugin_guard", "training", "objective",
               "checkpoint", "train_metrics", "resume", "distributed", "config", "runs", "run_model", "run_grids",
               "workflows", "impute_workflow", "cli", "api", "compare", "animation", "baselines", "files", "errors",
               "points", "polydiff"}
# the one cycle left: sampling resolves sampler names through the plugin host, whose built-ins import the
# imputation metrics and the points modality (issue 19 moves the built-in specs and name resolution up a layer)
KNOWN_CYCLE = {"_host", "baselines", "builtin", "imputation", "plugins", "points", "sampling"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in CORE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            targets: list[str] = []
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")
                    base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module") and node.args \
                    and isinstance(node.args[0], ast.Constant):
                targets = [str(node.args[0].value)]
            for target in targets:
                while target and target not in modules:
                    target = target.rsplit(".", 1)[0] if "." in target else ""
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    for v in graph:
        if v not in index:
            visit(v)
    return found


def short(name: str) -> str:
    return name.removeprefix("polydiff.").split(".")[0] if name != "polydiff" else name


def test_the_maths_imports_nothing_above_it():
    graph = import_graph()
    bad = sorted(f"{m} imports {t}" for m, targets in graph.items() if short(m) in MATHS
                 for t in targets if short(t) in ABOVE_MATHS)
    assert not bad, bad


def test_no_import_cycle_but_the_known_one():
    found = [{short(m) for m in comp} for comp in cycles(import_graph())]
    assert all(comp <= KNOWN_CYCLE for comp in found), found


def test_the_checker_sees_a_cycle_and_an_upward_import():
    graph = {"polydiff.a": {"polydiff.b"}, "polydiff.b": {"polydiff.a"}, "polydiff.c": set()}
    assert cycles(graph) == [{"polydiff.a", "polydiff.b"}]
    assert "polydiff.config" in import_graph()["polydiff.runs"]  # relative imports are resolved
