"""Every error path of the loader names the file, the line (and column) and the model path.

The second half runs the real CLI (``python -m composer``) on bad inputs: exit code 1, one short
message on stderr with file:line, never a traceback.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from composer.errors import (
    ComposerError,
    EnvFileError,
    ExtendsError,
    IncludeError,
    InterpolationError,
    ProjectNotFoundError,
    SourceLocation,
    SpecError,
    SpecValidationError,
    UsageError,
    YamlSyntaxError,
)
from composer.spec.loader import LoadOptions, load_config
from composer.spec.options import ProjectOptions
from tests.support.host_state import cli_environment


def load_error(tmp_path: Path, text: str, extra: dict[str, str] | None = None) -> SpecError:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    for name, content in (extra or {}).items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content), encoding="utf-8")
    project = ProjectOptions(environment={}, working_directory=str(tmp_path))
    with pytest.raises(SpecError) as info:
        load_config(project, LoadOptions())
    return info.value


# (compose.yaml, other files, error class, file that should be named, "line:column" or "line", model path)
CASES: list[tuple[str, dict[str, str], type[SpecError], str, str, str | None]] = [
    ("services:\n  web:\n    image: a\n    image: b\n", {}, YamlSyntaxError, "compose.yaml", "4:5", None),
    ("services:\n  web: [\n", {}, YamlSyntaxError, "compose.yaml", "3:", None),
    ("services:\n  web:\n    1: x\n", {}, YamlSyntaxError, "compose.yaml", "3:5", None),
    ("services:\n  web:\n    image: ${X:?boom}\n", {}, InterpolationError, "compose.yaml", "3:5", "services.web.image"),
    ("services:\n  web:\n    image: x\n    cpus: ${C:-lots}\n", {}, InterpolationError, "compose.yaml", "4:5",
     "services.web.cpus"),
    ("services:\n  web:\n    image: x\n    ports:\n      - true\n", {}, SpecValidationError, "compose.yaml", "5:9",
     "services.web.ports[0]"),
    ("services:\n  web:\n    image: x\n    ports:\n      - 80\n      - x:80\n", {}, SpecValidationError,
     "compose.yaml", "6:9", "services.web.ports[1]"),
    ("services:\n  web:\n    imagee: x\n", {}, SpecValidationError, "compose.yaml", "3:5", "services.web.imagee"),
    ("services:\n  web:\n    image: x\n    stop_grace_period: 10x\n", {}, SpecValidationError, "compose.yaml", "4:5",
     "services.web.stop_grace_period"),
    ("services:\n  web:\n    image: x\n    networks: [ghost]\n", {}, SpecValidationError, "compose.yaml", "4:",
     "services.web.networks.ghost"),
    ("services:\n  web:\n    image: x\n    depends_on: [web2]\n  web2:\n    image: x\n    depends_on: [web]\n", {},
     SpecValidationError, "compose.yaml", "7:", "services.web2.depends_on.web"),
    ("services:\n  web:\n    image: x\n    extends: ghost\n", {}, ExtendsError, "compose.yaml", "4:5",
     "services.web.extends"),
    ("include:\n  - gone.yaml\nservices:\n  web:\n    image: x\n", {}, IncludeError, "compose.yaml", "2:5",
     "include[0]"),
    ("services:\n  web:\n    image: x\n", {".env": "A=1\nB C=2\n"}, EnvFileError, ".env", "2", None),
    ("services:\n  web:\n    image: x\n    env_file: gone.env\n", {}, EnvFileError, "gone.env", "", None),
    ("- a\n", {}, SpecError, "compose.yaml", "1:1", None),
]


@pytest.mark.parametrize(("text", "extra", "kind", "file", "where", "path"), CASES)
def test_error_names_file_line_and_path(
    tmp_path: Path, text: str, extra: dict[str, str], kind: type[SpecError], file: str, where: str, path: str | None
) -> None:
    error = load_error(tmp_path, text, extra)
    assert type(error) is kind
    message = str(error)
    assert f"{tmp_path / file}:{where}" in message if where else str(tmp_path / file) in message
    if path is not None:
        assert error.path == path
        assert f": {path}: " in message
    assert "\n" not in message


def test_location_of_an_error_in_an_override_file(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n", encoding="utf-8")
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    ports: ['x:1']\n", encoding="utf-8")
    with pytest.raises(SpecValidationError) as info:
        load_config(ProjectOptions(environment={}, working_directory=str(tmp_path)))
    assert str(info.value).startswith(f"{tmp_path / 'compose.override.yaml'}:3:")


def test_project_not_found_has_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ProjectNotFoundError) as info:
        load_config(ProjectOptions(environment={}, working_directory=str(tmp_path)))
    assert info.value.hint is not None


def test_source_location_formats() -> None:
    assert str(SourceLocation("f.yaml")) == "f.yaml"
    assert str(SourceLocation("f.yaml", 3)) == "f.yaml:3"
    assert str(SourceLocation("f.yaml", 3, 7)) == "f.yaml:3:7"


def test_spec_error_formatting() -> None:
    error = SpecValidationError("bad", location=SourceLocation("f.yaml", 2, 4), path="services.web.ports[0]")
    assert str(error) == "f.yaml:2:4: services.web.ports[0]: bad"
    assert str(SpecError("plain")) == "plain"
    assert isinstance(error, ComposerError)
    assert not isinstance(UsageError("u"), SpecError)


# --- through the CLI -----------------------------------------------------------------

BAD_INPUTS: list[tuple[str, str]] = [
    ("services:\n  web:\n    image: a\n    image: b\n", ":4:5"),
    ("services:\n  web:\n    image: ${NOT_SET_ANYWHERE_XYZ:?required}\n", ":3:5: services.web.image"),
    ("services:\n  web:\n    image: x\n    ports:\n      - 80\n      - x:80\n", ":6:9: services.web.ports[1]"),
    ("services:\n  web:\n    image: x\n    networks: [ghost]\n", ":4:"),
    ("services:\n  web:\n    image: x\n    stop_grace_period: ''\n", ":4:5: services.web.stop_grace_period"),
    ("x-a: &a\n  y: *a\nservices:\n  web:\n    image: x\n", ":1:6"),
]


@pytest.mark.parametrize(("text", "where"), BAD_INPUTS)
def test_cli_reports_one_short_line(tmp_path: Path, text: str, where: str) -> None:
    compose = tmp_path / "bad.yaml"
    compose.write_text(text, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "composer", "-f", str(compose), "config"],
        capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False,
        env=cli_environment(),
    )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 3
    assert "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
    assert f"{compose}{where}" in lines[0]
