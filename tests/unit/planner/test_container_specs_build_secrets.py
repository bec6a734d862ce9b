"""build.secrets into BuildSpec.secrets: ids as v2 hands them to BuildKit (the grant's target,
else its source), a file or a variable's value, and v2's message for an unset variable."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer.contract.backend import BuildSecret
from composer.errors import PlanError
from composer.planner.container_specs import build_secrets, build_spec
from composer.spec import load_project
from composer.spec.models import Project

COMPOSE = """
services:
  app:
    build:
      context: .
      secrets:
        - token
        - source: fromfile
          target: npmrc
secrets:
  token:
    environment: TOKEN
  fromfile:
    file: ./secret.txt
"""


def load(tmp_path: Path, environment: dict[str, str]) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(COMPOSE))
    (tmp_path / "secret.txt").write_text("from a file")
    return load_project(files=[str(tmp_path / "compose.yaml")], environment=environment,
                        working_directory=str(tmp_path), project_name="demo")


def test_ids_and_sources(tmp_path: Path) -> None:
    project = load(tmp_path, {"TOKEN": "s3cr3t"})
    found = build_secrets(project, project.service("app"))
    assert found == {"token": BuildSecret(value=b"s3cr3t"), "npmrc": BuildSecret(file=str(tmp_path / "secret.txt"))}
    assert found["npmrc"].read() == b"from a file"
    assert "s3cr3t" not in repr(found)  # a value is never shown
    spec = build_spec("demo", project.service("app"), project=project)
    assert spec.secrets == found
    assert build_spec("demo", project.service("app")).secrets == {}


def test_an_unset_variable_is_v2s_message(tmp_path: Path) -> None:
    project = load(tmp_path, {})
    with pytest.raises(PlanError, match=r'^environment variable "TOKEN" required by secret "demo_token" is not set$'):
        build_secrets(project, project.service("app"))
