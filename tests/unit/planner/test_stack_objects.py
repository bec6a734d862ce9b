"""Secrets and configs of a stack: read from file, environment or content, named by content."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.errors import SpecValidationError
from composer.planner.stack_objects import MAX_OBJECT_BYTES, stack_objects
from composer.spec import load_project


def _load(folder: Path, text: str, environment: dict[str, str]) -> object:
    (folder / "compose.yaml").write_text(text)
    return load_project(files=[str(folder / "compose.yaml")], environment=environment, working_directory=str(folder),
                        project_name="demo")


def test_each_source_and_the_names(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"from a file")
    project = _load(tmp_path, """
services:
  app:
    image: busybox
    secrets: [fromfile, fromenv, named]
    configs: [inline]
secrets:
  fromfile: {file: ./a.txt}
  fromenv: {environment: TOKEN}
  named: {file: ./a.txt, name: my-own-name}
configs:
  inline: {content: "x=1"}
""", {"TOKEN": "from env"})
    found = stack_objects(project)  # type: ignore[arg-type]
    assert found[("secret", "fromfile")].data == b"from a file"
    assert found[("secret", "fromenv")].data == b"from env"
    assert found[("config", "inline")].data == b"x=1"
    assert found[("secret", "named")].name == "my-own-name"  # the user's name is kept: no digest
    assert found[("secret", "fromfile")].name.startswith("demo_fromfile-")
    # The same content under another key is another object; the same key and content, the same name.
    assert found[("secret", "fromfile")].name != found[("secret", "fromenv")].name
    assert stack_objects(project)[("secret", "fromfile")].name == found[("secret", "fromfile")].name  # type: ignore[arg-type]
    assert found[("secret", "fromfile")].labels["com.docker.stack.namespace"] == "demo"


def test_unreadable_missing_and_too_large_are_refused_with_the_key(tmp_path: Path) -> None:
    text = "services:\n  app:\n    image: busybox\n    secrets: [s]\nsecrets:\n  s: {%s}\n"
    with pytest.raises(SpecValidationError, match="environment variable NOPE is not set"):
        stack_objects(_load(tmp_path, text % "environment: NOPE", {}))  # type: ignore[arg-type]
    (tmp_path / "big").write_bytes(b"x" * (MAX_OBJECT_BYTES + 1))
    with pytest.raises(SpecValidationError, match="larger than Swarm's limit of 500 KiB"):
        stack_objects(_load(tmp_path, text % "file: ./big", {}))  # type: ignore[arg-type]
