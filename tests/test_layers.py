"""The import graph of the core, read from the source (AST): each subpackage is a layer that imports only
the layers below it (the maths never imports the plugin host, the trainer or the app); no import cycle;
first-party plugins import only the public API (``polydiff`` and its subpackages).

Imports under ``if TYPE_CHECKING:`` do not count; imports inside functions (lazy ones) do.
"""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core" / "polydiff"
PLUGINS = Path(__file__).resolve().parents[1] / "plugins"

# the layers, bottom to top: a module imports only modules of its own layer or the layers below it
LAYERS = [
    {"_utils", "_version", "exceptions", "options", "reporting", "tables", "files"},  # base: errors, options, files
    {"diffusion"},  # the maths: states, schedules, parameterizations, losses, noise, samplers, sampling, imputation
    {"nn"},  # network building blocks
    {"evaluation"},  # baselines and the scoreboard (given metrics and baselines; no registry)
    {"modalities"},  # the core's own modality (points): datasets, metrics, pictures
    {"training"},  # objective, trainer, checkpoints, distributed
    {"plugins"},  # contracts (specs, hookspecs), registry, host; builtin: the only place built-in specs are made
    {"app"},  # config, runs, workflows, CLI, compare, Python API
    {"testing"},  # the conformance kit for plugin test suites
    {"polydiff"},  # the package's public names
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


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


def test_every_core_module_has_a_layer():
    assert not sorted(m for m in import_graph() if short(m) not in RANK)


def test_no_module_imports_a_layer_above_its_own():
    graph = import_graph()
    bad = sorted(f"{m} imports {t}" for m, targets in graph.items() for t in targets if RANK[short(t)] > RANK[short(m)])
    assert not bad, bad


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_first_party_plugins_import_only_the_public_api():
    """``polydiff`` and its subpackages (``polydiff.diffusion``, ``polydiff.plugins``, ...), never a module
    inside one: what a subpackage's ``__init__`` exports is the API a third-party plugin can rely on."""
    public = {"polydiff", *(f"polydiff.{p.name}" for p in CORE.iterdir() if (p / "__init__.py").is_file())}
    bad = []
    for path in sorted(PLUGINS.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            bad += [f"{path.relative_to(PLUGINS)}: {n}" for n in names
                    if n.split(".")[0] == "polydiff" and n not in public]
    assert not bad, bad


def test_the_checker_sees_a_cycle_and_an_upward_import():
    graph = {"polydiff.a": {"polydiff.b"}, "polydiff.b": {"polydiff.a"}, "polydiff.c": set()}
    assert cycles(graph) == [{"polydiff.a", "polydiff.b"}]
    assert "polydiff.app.config" in import_graph()["polydiff.app.runs"]  # relative imports are resolved
    assert RANK[short("polydiff.diffusion.sampling")] < RANK[short("polydiff.plugins.host")]
