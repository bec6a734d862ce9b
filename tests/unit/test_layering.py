"""The direction of every import between composer's layers (docs/architecture.md, "Layers").

Every module of the package is parsed (not imported) and each of its imports, the function-local
ones and those under TYPE_CHECKING included, is checked against what its layer may import. A
module that belongs to no layer fails too: a new top-level module must be placed first.
"""

from __future__ import annotations

import ast
from pathlib import Path

import composer

PACKAGE = Path(composer.__file__).parent

# Module prefixes of each layer; the longest matching prefix decides. ``composer.backends`` alone
# (the package's __init__) is the selection's; ``composer`` alone (its __init__) is the package's.
EXACT = {"composer.backends": "selection", "composer": "package"}
LAYERS: dict[str, tuple[str, ...]] = {
    "base": ("composer._lazy", "composer.durable", "composer.errors", "composer.faults", "composer.events",
             "composer.image_reference", "composer.labels",
             "composer.names", "composer.owner", "composer.safe_tar", "composer.units"),
    "spec": ("composer.spec",),
    "dockerfile": ("composer.dockerfile",),
    "contract": ("composer.contract",),
    "planner": ("composer.planner",),
    "backends": ("composer.backends",),
    "selection": ("composer.backends.select",),
    "engine": ("composer.engine",),
    "library": ("composer.api", "composer.readiness", "composer.pytest_plugin"),
    "cli": ("composer.cli", "composer.__main__"),
}

# What each layer may import (besides itself). The spec is the bottom: errors and stdlib only.
# The base modules are leaves. The contract may use them and the spec's models, not its loader.
# The planner and the backends meet only in the contract; the engine is handed a backend and
# never makes one. The CLI and the library make one through the selection, and otherwise see
# only the engine, the contract and the spec.
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset(),
    "spec": frozenset({"composer.errors", "composer._lazy"}),
    "dockerfile": frozenset({"base"}),
    "contract": frozenset({"base", "composer.spec.models"}),
    "planner": frozenset({"base", "spec", "contract"}),
    "backends": frozenset({"base", "spec", "contract", "dockerfile"}),
    "selection": frozenset({"base", "contract"}),
    "engine": frozenset({"base", "spec", "contract", "planner"}),
    "library": frozenset({"base", "spec", "contract", "engine", "selection"}),
    "cli": frozenset({"base", "spec", "contract", "engine", "selection"}),
    "package": frozenset({"base", "library"}),
}

# Imports that break the rules today, each to be removed (module, imported module).
KNOWN_VIOLATIONS: frozenset[tuple[str, str]] = frozenset()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imports_of(module: str, source: str, *, is_package: bool = False) -> set[str]:
    """The composer modules ``source`` (the text of ``module``) imports anywhere in its body:
    ``from a import b`` counts as ``a.b`` when that is a module, else as ``a``; ``import composer``
    does not count."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            # ``import composer`` alone (for its path) runs only the package's lazy __init__, as
            # every ``import composer.x`` does; ``from composer import Name`` is the library's API
            found.update(alias.name for alias in node.names if alias.name != "composer")
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            for alias in node.names:
                candidate = f"{origin}.{alias.name}"
                found.add(candidate if _is_module(candidate) else origin)
    return {name for name in found if name == "composer" or name.startswith("composer.")}


def layer_of(module: str) -> str | None:
    if module in EXACT:
        return EXACT[module]
    best: tuple[int, str] | None = None
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), layer)
    return best[1] if best else None


def forbidden(module: str, imported: str) -> bool:
    """Whether ``module`` may not import ``imported``."""
    own, theirs = layer_of(module), layer_of(imported)
    if own is None or own == theirs:
        return own is None
    rules = ALLOWED[own]
    if theirs in rules:
        return False
    return not any(imported == rule or imported.startswith(rule + ".") for rule in rules)


def violations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for imported in imports_of(module, path.read_text(), is_package=path.name == "__init__.py"):
            if imported != module and forbidden(module, imported):
                found.add((module, imported))
    return found


def test_every_module_belongs_to_a_layer() -> None:
    unplaced = sorted(_module_name(path) for path in PACKAGE.rglob("*.py") if layer_of(_module_name(path)) is None)
    assert unplaced == []


def test_imports_point_only_the_allowed_way() -> None:
    new = sorted(violations() - KNOWN_VIOLATIONS)
    assert new == [], "imports against the layering (see docs/architecture.md):\n" + "\n".join(
        f"  {module} -> {imported}" for module, imported in new)


def test_the_known_violations_still_exist() -> None:
    """An entry whose import is gone must leave the list, so that it cannot come back unnoticed."""
    assert sorted(KNOWN_VIOLATIONS - violations()) == []


def test_a_function_local_import_of_the_planner_in_a_backend_is_caught() -> None:
    source = "def observe():\n    from composer.planner.snapshot import observe_project\n"
    imported = imports_of("composer.backends.docker.observe", source)
    assert imported == {"composer.planner.snapshot"}
    assert forbidden("composer.backends.docker.observe", "composer.planner.snapshot")


def test_the_directions_between_layers() -> None:
    assert forbidden("composer.planner.reconcile", "composer.backends.memory")
    assert forbidden("composer.engine", "composer.backends.select")  # the engine is handed a backend
    assert forbidden("composer.cli.lifecycle", "composer.planner.reconcile")
    assert forbidden("composer.api", "composer.backends.native.backend")
    assert forbidden("composer.spec.loader", "composer.events")
    assert forbidden("composer.contract.plan", "composer.spec.loader")
    assert forbidden("composer.contract.observed", "composer.planner.builder")
    assert layer_of("composer.newly_added") is None  # a new top-level module must be placed
    assert layer_of("composer") == "package"
    assert not forbidden("composer.cli.lifecycle", "composer.backends.select")
    assert not forbidden("composer.api", "composer.backends")
    assert forbidden("composer.api", "composer.backends.memory")
    assert not forbidden("composer.backends.docker.backend", "composer.contract.observed")
    assert not forbidden("composer.planner.reconcile", "composer.contract.plan")
    assert not forbidden("composer.contract.backend", "composer.spec.models.service")
    assert imports_of("composer.cli.server", "import composer\n") == set()
    assert imports_of("composer.cli.x", "from composer import Project\n") == {"composer"}
    assert forbidden("composer.cli.x", "composer")
    source = "from ..memory import MemoryBackend\nfrom .. import select\n"
    relative = imports_of("composer.backends.native.backend", source)
    assert relative == {"composer.backends.memory", "composer.backends.select"}
