"""Fixtures shared by the unit tests of more than one package (planner, spec)."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from composer.spec import load_project
from composer.spec.models import Project

LoadFn = Callable[[str], Project]


@pytest.fixture
def load(tmp_path: Path) -> LoadFn:
    """Write ``compose.yaml`` into tmp_path and load it as project ``demo``."""

    def _load(text: str) -> Project:
        (tmp_path / "compose.yaml").write_text(textwrap.dedent(text))
        return load_project(files=[str(tmp_path / "compose.yaml")], environment={},
                            working_directory=str(tmp_path), project_name="demo")

    return _load
