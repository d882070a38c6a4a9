"""The project's import graph, read from the source (every import, function-level ones
included), and the layer rules it must keep.

Layers, bottom to top: `storewise` (the shared vocabulary) < `intake` < `features` <
`inference` (what crosses the registry) < `training` < `reports` < `privacy` < `cli`;
`serving` sits on `inference` and `storewise` alone, so the service never loads training
code. `python -m tests.layers` prints the violations and exits 1 if there are any (`make lint`).
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = (
    "storewise",
    "intake",
    "features",
    "inference",
    "training",
    "reports",
    "privacy",
    "cli",
    "serving",
)
# what each package may import (besides itself); anything else is a violation
ALLOWED = {
    "storewise": set(),
    "intake": {"storewise"},
    "features": {"storewise", "intake"},
    "inference": {"storewise"},
    "training": {"storewise", "intake", "features", "inference"},
    "reports": {"storewise", "intake", "features", "inference"},
    "privacy": {"storewise", "intake", "features", "inference"},
    "cli": {"storewise", "intake", "features", "inference", "training", "reports", "privacy"},
    "serving": {"storewise", "inference"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict[str, Path]:
    modules = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            modules[module_name(path)] = path
    return modules


def imports_of(path: Path, known: set[str]) -> set[str]:
    """The project modules `path` imports, anywhere in the file (TYPE_CHECKING blocks and
    function bodies too): `from a.b import c` names `a.b.c` when that is a module, else `a.b`."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        for name in names:
            if name in known:
                found.add(name)
    # `from a.b import c` where c is a module: the edge goes to a.b.c, not to the package a.b
    return {name for name in found if not any(other.startswith(name + ".") for other in found)}


def graph() -> dict[str, set[str]]:
    modules = project_modules()
    known = set(modules)
    return {name: imports_of(path, known) - {name} for name, path in modules.items()}


class _Tarjan:
    """Tarjan's strongly connected components over a dict of edges."""

    def __init__(self, edges: dict[str, set[str]]) -> None:
        self.edges = edges
        self.index: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.stack: list[str] = []
        self.on_stack: set[str] = set()
        self.found: list[list[str]] = []

    def visit(self, node: str) -> None:
        self.index[node] = self.low[node] = len(self.index)
        self.stack.append(node)
        self.on_stack.add(node)
        for target in self.edges.get(node, ()):
            if target not in self.index:
                self.visit(target)
                self.low[node] = min(self.low[node], self.low[target])
            elif target in self.on_stack:
                self.low[node] = min(self.low[node], self.index[target])
        if self.low[node] == self.index[node]:
            self.pop_component(node)

    def pop_component(self, root: str) -> None:
        component = []
        while True:
            member = self.stack.pop()
            self.on_stack.discard(member)
            component.append(member)
            if member == root:
                break
        if len(component) > 1:
            self.found.append(sorted(component))


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member, each sorted."""
    sys.setrecursionlimit(10_000)
    search = _Tarjan(edges)
    for node in sorted(edges):
        if node not in search.index:
            search.visit(node)
    return search.found


def package_edges(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = defaultdict(set)
    for source, targets in edges.items():
        for target in targets:
            if source.split(".")[0] != target.split(".")[0]:
                packages[source.split(".")[0]].add(target.split(".")[0])
    return dict(packages)


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    problems = []
    for source, targets in sorted(edges.items()):
        package = source.split(".")[0]
        for target in sorted(targets):
            other = target.split(".")[0]
            if other != package and other not in ALLOWED[package]:
                problems.append(
                    f"{source} imports {target}: {package} may import only {sorted(ALLOWED[package])}"
                )
    return problems


def problems() -> list[str]:
    edges = graph()
    found = [f"import cycle between modules: {' <-> '.join(cycle)}" for cycle in cycles(edges)]
    found += [
        f"import cycle between packages: {' <-> '.join(cycle)}" for cycle in cycles(package_edges(edges))
    ]
    return found + layer_violations(edges)


if __name__ == "__main__":
    listed = problems()
    for line in listed:
        print(line)
    print(f"{len(listed)} layer problem(s) in {len(graph())} modules")
    sys.exit(1 if listed else 0)
