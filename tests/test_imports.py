"""No import cycles in biocurate/ or flows/: the layers import in one direction only.

The graph is read from the source with ``ast`` (every ``import``, at module top or inside a
function, since a lazy import is still a dependency), so the test needs no module to be imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGES = ("biocurate", "flows")


def module_files(root: Path = ROOT) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the packages (a package is its __init__)."""
    out = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module an imported dotted name belongs to (a name inside a module -> that module)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imported_modules(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``module`` imports, anywhere in its source."""
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package, one level up per extra dot
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1])
                prefix = f"{base}.{node.module}" if node.module else base
            else:
                prefix = node.module
            # "from pkg import sub" imports the submodule when there is one, else a name of pkg
            names = [f"{prefix}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                found.add(target)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {m: imported_modules(m, p, modules) for m, p in modules.items()}


def tangles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one module: each holds a cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:  # Tarjan; the graph is small, recursion is fine
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle (a -> b -> ... -> a) per tangle."""
    return [_cycle_in(component, graph) for component in tangles(graph)]


def _cycle_in(component: set[str], graph: dict[str, set[str]]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first, inside the component)."""
    start = min(component)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return paths[node] + [start]
                if nxt not in paths:
                    paths[nxt] = paths[node] + [nxt]
                    following.append(nxt)
        frontier = following
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def test_the_cycle_finder_names_a_cycle_and_accepts_a_tree():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b", "c"}, "b": {"c"}, "c": set()}) == []


def test_lazy_and_relative_imports_are_edges(tmp_path):
    (tmp_path / "biocurate" / "sub").mkdir(parents=True)
    (tmp_path / "flows").mkdir()
    (tmp_path / "biocurate" / "__init__.py").write_text("")
    (tmp_path / "biocurate" / "a.py").write_text("def f():\n    from biocurate.b import g\n")
    (tmp_path / "biocurate" / "b.py").write_text("from biocurate.sub import c\ng = 1\n")
    (tmp_path / "biocurate" / "sub" / "__init__.py").write_text("from . import c\n")
    (tmp_path / "biocurate" / "sub" / "c.py").write_text("from ..a import f\n")
    (tmp_path / "flows" / "__init__.py").write_text("")
    graph = import_graph(tmp_path)
    assert graph["biocurate.a"] == {"biocurate.b"}
    assert graph["biocurate.b"] == {"biocurate.sub.c"}
    assert graph["biocurate.sub"] == {"biocurate.sub.c"}
    assert graph["biocurate.sub.c"] == {"biocurate.a"}
    assert cycles(graph) == [["biocurate.a", "biocurate.b", "biocurate.sub.c", "biocurate.a"]]


def test_no_import_cycles_in_biocurate_or_flows():
    graph = import_graph()
    found = [f"{' -> '.join(_cycle_in(t, graph))} (all tangled: {', '.join(sorted(t))})" for t in tangles(graph)]
    assert found == [], "import cycles:\n" + "\n".join(found)
