"""Find import cycles among the project's own modules (``ircbot/`` and ``plugins/``).

Run: ``python scripts/import_cycles.py`` (exit 1 and one line per cycle if there is any).

Every ``import`` statement counts, wherever it is: at module level, inside a function (the
usual way a cycle is hidden: it only moves the import to a later moment) or under
``if TYPE_CHECKING:`` (a cycle the type checker sees is still two modules that each need the
other). ``from pkg import name`` is an edge to ``pkg.name`` when that is a module, else to
``pkg``. A module's implicit import of its parent package is not an edge: Python runs a
package's ``__init__`` first whatever the child imports, and that is no mutual need.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"ircbot": "ircbot", "plugins": "plugins"}  # folder -> package name in the checkout
ALIASES = {"ircbot_plugins": "plugins"}  # the installed name of plugins/ (setup.cfg)


def module_files(root: Path) -> dict[str, Path]:
    """Every module of the project's packages by dotted name (``pkg/__init__.py`` is ``pkg``)."""
    found = {}
    for folder, package in PACKAGES.items():
        if not (root / folder).is_dir():
            continue
        for path in sorted((root / folder).rglob("*.py")):
            parts = [package, *path.relative_to(root / folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _canonical(name: str) -> str:
    head, dot, tail = name.partition(".")
    return ALIASES.get(head, head) + dot + tail


def _known(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of ``name`` that is one of ours (``a.b.func`` -> ``a.b``)."""
    parts = _canonical(name).split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules that module ``name`` imports anywhere in its text."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _known(alias.name, modules)
                if target:
                    found.add(target)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                drop = node.level - 1 if is_package else node.level
                base = base[: len(base) - drop] if drop else base
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = _canonical(node.module or "")
            for alias in node.names:
                sub = f"{stem}.{alias.name}"
                target = sub if sub in modules else _known(stem, modules)
                if target:
                    found.add(target)
    found.discard(name)
    return found


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    modules = module_files(root)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        # Recursion depth is bounded by the number of modules (a few dozen).
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
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def a_path(graph: dict[str, set[str]], component: Iterable[str]) -> list[str]:
    """The shortest closed path through a component's first module: the imports to look at."""
    members = set(component)
    start = min(members)
    came_from: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for nxt in sorted(graph[node] & members):
                if nxt == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(came_from[path[-1]])
                    return [*reversed(path), start]
                if nxt not in came_from:
                    came_from[nxt] = node
                    following.append(nxt)
        frontier = following
    raise ValueError(f"{sorted(members)} is not a cycle")


def report(graph: dict[str, set[str]]) -> Iterator[str]:
    for component in cycles(graph):
        yield "cycle: " + " -> ".join(a_path(graph, component))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--graph", action="store_true", help="print every edge too")
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout (default: this one)")
    args = parser.parse_args(argv)
    graph = import_graph(args.root)
    if args.graph:
        for name in sorted(graph):
            for target in sorted(graph[name]):
                print(f"{name} -> {target}")
    lines = list(report(graph))
    for line in lines:
        print(line)
    print(f"{len(graph)} modules, {sum(map(len, graph.values()))} imports, {len(lines)} cycles")
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
