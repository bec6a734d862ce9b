"""The native backend's modules import each other one way only: no loop, even through a
function-local import (the loops containers <-> backend and namespaces <-> networking are gone)."""

from __future__ import annotations

import ast
from pathlib import Path

import composer.backends.native

PACKAGE = "composer.backends.native"
ROOT = Path(composer.backends.native.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join((PACKAGE, *parts)).removesuffix(".__init__")


def runtime_imports(tree: ast.Module, modules: set[str]) -> set[str]:
    """The package's modules ``tree`` imports when run (``if TYPE_CHECKING:`` blocks left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in modules)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found & modules


def test_no_import_loop_among_native_modules() -> None:
    paths = {module_name(path): path for path in ROOT.rglob("*.py")}
    modules = set(paths)
    graph = {name: runtime_imports(ast.parse(path.read_text()), modules) - {name} for name, path in paths.items()}
    graph = {name: {m for m in edges if not name.startswith(f"{m}.")} for name, edges in graph.items()}  # parents
    loops = []
    state: dict[str, int] = {}

    def walk(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                loops.append(" -> ".join([*trail[trail.index(other):], other]))
            elif other not in state:
                walk(other, [*trail, other])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            walk(name, [name])
    assert loops == []
