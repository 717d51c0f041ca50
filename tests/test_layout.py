"""The house, read from the source with ``ast``: the torch line, no import cycle, small modules, small rooms.

Every import counts, at the top of a module or inside a function: a deferred import hides a dependency from a
reader, not from this test.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Installed import names -> folders (setup.cfg's package_dir).
ROOMS = {"zoo.plugins": ROOT / "plugins", "zoo.exports": ROOT / "exports", "zoo": ROOT / "zoo"}
#: The deployment side: what a machine with neither torch nor the trainer runs.
DEPLOYMENT = ("zoo.exports.bundle", "zoo.exports.deploy", "zoo.exports.variants", "zoo.exports.card",
              "zoo.exports.runtimes", "zoo.exports.serve")
#: What the deployment side must never import.
TRAINING_SIDE = ("torch", "sklearn", "zoo.training", "zoo.exports.export")
#: Facades that import everything by design: the package ``zoo`` and its Python API.
FACADES = {"zoo", "zoo.api"}


def module_name(path: Path) -> str:
    for package, folder in ROOMS.items():
        if folder in path.parents and not (package == "zoo" and ROOMS["zoo.plugins"] in path.parents):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            return ".".join([package, *parts])
    raise ValueError(path)


MODULES = {module_name(p): p for folder in ROOMS.values() for p in folder.rglob("*.py")}


def imports(path: Path) -> Iterator[tuple[str, ast.AST, bool]]:
    """(imported module, node, inside a function) for every import in ``path``, resolved to a module where
    ``from package import name`` names a submodule."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = set()
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            inside.update(id(node) for node in ast.walk(fn) if isinstance(node, (ast.Import, ast.ImportFrom)))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node, id(node) in inside
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                yield (child if child in MODULES else node.module), node, id(node) in inside


def first_party(name: str) -> str | None:
    """The module of ours that ``name`` is, or is inside."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def test_the_deployment_side_never_imports_torch_the_trainer_or_the_export_side():
    offenders = []
    for name, path in MODULES.items():
        if name.startswith(DEPLOYMENT):
            for target, node, _ in imports(path):
                if any(target == t or target.startswith(t + ".") for t in TRAINING_SIDE):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {target}")
    assert offenders == []


def graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {name: set() for name in MODULES if name not in FACADES}
    for name in edges:
        for target, _, _ in imports(MODULES[name]):
            ours = first_party(target)
            if ours and ours != name and ours not in FACADES:
                edges[name].add(ours)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in edges:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_even_counting_imports_inside_functions():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_a_back_import():
    edges = graph()
    edges["zoo.exports.bundle.layout"] = edges["zoo.exports.bundle.layout"] | {"zoo.exports.bundle.manifest"}
    assert any("zoo.exports.bundle.layout" in c for c in cycles(edges))


def test_few_imports_are_deferred_and_each_says_why():
    """Imports sit at the top of a module, where the import graph is the architecture; a command body (and the
    API facade) may defer one that would make ``zoo --help`` or ``import zoo`` pay for numpy, onnx or torch."""
    deferred = [(name, node) for name, path in MODULES.items()
                for target, node, inside in imports(path) if inside and first_party(target)]
    assert len({id(node) for _, node in deferred}) <= 40, [f"{n}:{node.lineno}" for n, node in deferred]


@pytest.mark.parametrize("folder", sorted({p.parent for p in MODULES.values()}), ids=lambda p: str(p.relative_to(ROOT)))
def test_small_modules_in_small_rooms(folder):
    modules = sorted(folder.glob("*.py"))
    assert len(modules) <= 12, [m.name for m in modules]
    for module in modules:
        assert len(module.read_text(encoding="utf-8").splitlines()) <= 500, module


def test_each_bundle_file_name_is_spelled_in_one_module():
    for literal in ('"model.onnx"', '"manifest.json"', '"report.html"', '"evaluation.npz"', '"checkpoint.pt"',
                    '"onnxruntime-cpu"', '"zoo-exports"'):
        spelled = sorted(str(p.relative_to(ROOT)) for p in MODULES.values()
                         if literal in p.read_text(encoding="utf-8"))
        assert len(spelled) <= 2, (literal, spelled)
