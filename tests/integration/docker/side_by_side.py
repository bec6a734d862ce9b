"""One Compose file created by composer and by Compose v2 on the same dockerd, and the two
projects' containers, networks and volumes inspected side by side: the tests of
tests/integration/docker/test_keys_<family>.py check each key's field in both, so that a key is
shown to reach the engine as v2 sends it (and with the value the file asked for, so that a key
both tools dropped fails too)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project

V2 = Path(sys.executable).parent / "docker-compose"
ENV = {**os.environ, "COMPOSE_ANSI": "never", "COMPOSER_BACKEND": "docker", "COMPOSER_SERVER": "0"}
PROJECT = "{project}"
"""In a field's path: the project's name (a network's key in NetworkSettings.Networks)."""


def v2_binary() -> str:
    binary = str(V2) if V2.exists() else shutil.which("docker-compose")
    if binary is None:
        pytest.fail("Docker Compose v2 (the docker-compose binary next to the venv's python) is missing")
    return binary


def run(tool: str, folder: Path, project: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``composer`` or ``v2`` with ``args`` in ``folder``, as project ``project``."""
    command = ([sys.executable, "-m", "composer", "--progress", "quiet"] if tool == "composer"
               else [v2_binary(), "--progress", "quiet"])
    return subprocess.run([*command, "-p", project, *args], cwd=folder, capture_output=True, text=True,
                          timeout=180, env=ENV)


@dataclass
class Side:
    """What one tool made: inspections by container name without the project (``app-1``), and by
    network and volume key."""

    project: str
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)


def value(inspected: Mapping[str, Any], path: str, project: str) -> Any:
    """The field at ``path`` (``/``-separated: label keys hold dots), ``None`` when it is missing."""
    found: Any = inspected
    for part in path.replace(PROJECT, project).split("/"):
        if not isinstance(found, Mapping) or part not in found:
            return None
        found = found[part]
    return found


@dataclass
class Pair:
    composer: Side
    v2: Side

    def check(self, kind: str, name: str, expected: Mapping[str, Any]) -> None:
        """Each path of ``expected`` holds its value in both tools' ``kind`` (containers, networks,
        volumes) ``name``: every mismatch is listed at once."""
        wrong = []
        for path, want in expected.items():
            mine = value(getattr(self.composer, kind)[name], path, self.composer.project)
            theirs = value(getattr(self.v2, kind)[name], path, self.v2.project)
            if not (mine == _named(want, self.composer.project) and theirs == _named(want, self.v2.project)):
                wrong.append(f"{name} {path}: composer {mine!r}, v2 {theirs!r}, the file asks {want!r}")
        assert not wrong, "\n".join(wrong)


def _named(want: Any, project: str) -> Any:
    """``want`` with ``{project}`` in its strings replaced by the project's name."""
    return json.loads(json.dumps(want).replace(PROJECT, project))


def _inspect(api: Any, project: str) -> Side:
    side = Side(project)
    selector = {"label": f"com.docker.compose.project={project}"}
    for item in api.containers(all=True, filters=selector):
        inspected = api.inspect_container(item["Id"])
        side.containers[inspected["Name"].lstrip("/").removeprefix(f"{project}-")] = inspected
    for item in api.networks(filters=selector):
        inspected = api.inspect_network(item["Id"])
        side.networks[inspected["Labels"]["com.docker.compose.network"]] = inspected
    for item in (api.volumes(filters=selector) or {}).get("Volumes") or []:
        inspected = api.inspect_volume(item["Name"])
        side.volumes[inspected["Labels"]["com.docker.compose.volume"]] = inspected
    return side


def side_by_side(folder: Path, project: str, api: Any, compose: str, *args: str) -> Pair:
    """Write ``compose`` (dedented), run ``args`` (``create`` by default) with each tool in turn as
    a project of its own, and return what each made; each project is inspected, then removed
    (pass or fail) before the other tool runs, so that both may use the same subnets and ports."""
    (folder / "compose.yaml").write_text(textwrap.dedent(compose))
    sides = []
    for tool, name in (("composer", project), ("v2", f"{project}-v2")):
        try:
            result = run(tool, folder, name, *(args or ("create",)))
            assert result.returncode == 0, (tool, result.stderr)
            sides.append(_inspect(api, name))
        finally:
            remove_project(api, name)
    return Pair(*sides)
