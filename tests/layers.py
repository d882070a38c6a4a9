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


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


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
