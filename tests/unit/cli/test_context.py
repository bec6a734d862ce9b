"""composer.cli.context: the project and its name as v2 resolves them, and the cli modules' imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import composer.cli
from composer.cli.context import CommandContext
from composer.cli.parser import build_parser
from composer.errors import ComposerError, SpecValidationError


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, no COMPOSE_* variable, a cache of the test's own."""
    work = tmp_path / "Work Dir"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES"):
        monkeypatch.delenv(name, raising=False)
    return work


def _context(*argv: str) -> CommandContext:
    return CommandContext(build_parser().parse_args([*argv, "ps"]))


def test_without_a_compose_file_the_name_is_p_then_compose_project_name(
        folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ComposerError):  # neither: v2's "no configuration file provided"
        _context().project_or_name()
    assert _context("-p", "given").project_or_name() == (None, "given")
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "from-env")
    assert _context().project_or_name() == (None, "from-env")
    assert _context("-p", "given").project_or_name() == (None, "given")


@pytest.mark.parametrize("name", ["Upper", "-dash", "a b", "é"])
def test_a_name_given_without_a_compose_file_is_validated_as_the_loader_does(
        folder: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    # Before, ps/down/kill... and logs/events took -p as it was (and never COMPOSE_PROJECT_NAME).
    with pytest.raises(SpecValidationError, match=f'invalid project name "{name}"'):
        _context(f"--project-name={name}").project_or_name()
    with pytest.raises(SpecValidationError, match=f'invalid project name "{name}"'):
        _context(f"--project-name={name}").project_name()
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", name)
    with pytest.raises(SpecValidationError, match=f'invalid project name "{name}"'):
        _context().project_or_name()


def test_with_a_compose_file_the_loader_decides(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (folder / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    project, name = _context().project_or_name()
    assert project is not None
    assert name == project.name == "workdir"  # the folder's name, normalised
    (folder / "compose.yaml").write_text("name: named\nservices:\n  web:\n    image: busybox\n")
    assert _context().project_or_name()[1] == "named"
    monkeypatch.setenv("COMPOSE_PROJECT_NAME", "from-env")
    assert _context().project_or_name()[1] == "from-env"
    assert _context("-p", "given").project_or_name()[1] == "given"


def test_project_name_takes_p_without_reading_the_files(folder: Path) -> None:
    (folder / "compose.yaml").write_text("services: [not, a, mapping]\n")
    assert _context("-p", "given").project_name() == "given"
    with pytest.raises(ComposerError):
        _context().project_name()


def test_the_cli_modules_import_each_other_without_a_cycle() -> None:
    """Downward only: commands -> the command modules -> context and helpers (imports inside
    functions included, which a cycle at import time would not show)."""
    folder = Path(composer.cli.__file__).parent
    modules = {path.stem: path for path in folder.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for stem, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found |= {name.removeprefix("composer.cli.") for name in names if name.startswith("composer.cli.")}
        graph[stem] = (found & modules.keys()) - {stem}

    def reaches(start: str, target: str, seen: set[str]) -> bool:
        for follower in graph[start] - seen:
            seen.add(follower)
            if follower == target or reaches(follower, target, seen):
                return True
        return False

    assert sorted(stem for stem in graph if reaches(stem, stem, set())) == []
