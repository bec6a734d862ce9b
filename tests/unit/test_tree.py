"""The unit test tree mirrors the package tree: the tests of ``composer/a/b.py`` are in
``tests/unit/a/test_b.py``, or ``test_b_<aspect>.py`` when one module has several kinds of test
(fuzzing, hostile input). A newcomer finds the test of a module by its name; this keeps it so."""

from __future__ import annotations

from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
PACKAGE = REPOSITORY / "composer"
UNIT = REPOSITORY / "tests" / "unit"

# Tests that check a property of the whole package rather than one module, with why.
WHOLE_PACKAGE = {
    "test_layering.py": "the import direction between the layers (docs/architecture.md)",
    "test_public_api.py": "what composer/__init__.py exports, across every public module",
    "test_tree.py": "this file",
    "backends/native/test_import_loops.py": "the native package imports without a cycle",
}


def _module_of(test: Path) -> Path | None:
    """The module or package a test file names, or None."""
    folder = PACKAGE / test.parent.relative_to(UNIT)
    words = test.stem.removeprefix("test_").split("_")
    for end in range(len(words), 0, -1):  # the longest name that exists: test_container_plans -> container_plans
        name = "_".join(words[:end])
        if (folder / f"{name}.py").is_file() or (folder / name / "__init__.py").is_file():
            return folder / name
    return None


def test_every_unit_test_is_named_after_the_module_it_tests() -> None:
    tests = sorted(UNIT.rglob("test_*.py"))
    assert len(tests) > 40
    strays = [str(test.relative_to(UNIT)) for test in tests
              if test.relative_to(UNIT).as_posix() not in WHOLE_PACKAGE and _module_of(test) is None]
    assert strays == [], f"unit tests named after no module of composer/: {strays}"


def test_every_test_folder_is_a_package_folder() -> None:
    folders = sorted(path for path in UNIT.rglob("*") if path.is_dir() and any(path.glob("test_*.py")))
    missing = [str(folder.relative_to(UNIT)) for folder in folders
               if not (PACKAGE / folder.relative_to(UNIT) / "__init__.py").is_file()]
    assert missing == []


def test_the_mirror_rule_catches_a_stray() -> None:
    assert _module_of(UNIT / "spec" / "test_loader_fuzz.py") == PACKAGE / "spec" / "loader"
    store = PACKAGE / "backends" / "native" / "image" / "store"
    assert _module_of(UNIT / "backends" / "native" / "image" / "test_store.py") == store
    assert _module_of(UNIT / "native" / "test_store.py") is None  # the old place: not a package folder
    assert _module_of(UNIT / "cli" / "test_containers.py") is None  # cli has no containers module any more
