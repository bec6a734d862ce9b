"""``scale``, ``volumes``, ``down SERVICE...`` and ``ps --format`` on the docker backend (the checks
are tests/support/commands.py's, shared with the native backend's), and ``volumes`` side by side
with v2."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.support.commands import STACK, check_commands, check_run_flags, check_run_remove_orphans

V2 = str(Path(sys.executable).parent / "docker-compose")


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    folder = tmp_path / f"cv{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "compose.yaml").write_text(STACK.format(image=busybox_image))
    yield folder
    remove_project(docker_api, folder.name)


def runner(folder: Path, command: list[str]) -> Any:
    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*command, *args], cwd=folder, capture_output=True, text=True, timeout=120,
                              check=False)
        if check:
            assert done.returncode == 0, (args, done.stderr)
        return done

    return run


def test_commands(folder: Path, docker_api: Any) -> None:
    check_commands(runner(folder, [sys.executable, "-m", "composer", "--progress", "plain"]), folder.name)
    assert docker_api.volumes(filters={"label": f"com.docker.compose.project={folder.name}"})["Volumes"] in (None, [])


def test_run_flags(folder: Path) -> None:
    check_run_flags(runner(folder, [sys.executable, "-m", "composer"]), folder)


def test_run_remove_orphans(folder: Path) -> None:
    check_run_remove_orphans(runner(folder, [sys.executable, "-m", "composer"]), folder)


def test_run_build_builds_first(folder: Path, busybox_image: str, docker_api: Any) -> None:
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY v.txt /v.txt\n")
    (folder / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    run = runner(folder, [sys.executable, "-m", "composer", "--progress", "plain"])
    (folder / "v.txt").write_text("one\n")
    assert run("run", "--rm", "-T", "app", "cat", "/v.txt").stdout == "one\n"
    (folder / "v.txt").write_text("two\n")
    assert run("run", "--rm", "-T", "app", "cat", "/v.txt").stdout == "one\n"  # the image as it was
    assert run("run", "--rm", "-T", "--build", "app", "cat", "/v.txt").stdout == "two\n"


def test_volumes_as_v2_lists_them(folder: Path) -> None:
    ours, theirs = runner(folder, [sys.executable, "-m", "composer"]), runner(folder, [V2])
    ours("up", "-d")
    for args in ((), ("db",), ("-q",), ("--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Mountpoint}}")):
        mine, v2s = ours("volumes", *args).stdout.splitlines(), theirs("volumes", *args).stdout.splitlines()
        assert sorted(mine) == sorted(v2s), args  # v2 lists them in the engine's order
    mine = {row["Name"]: row for row in map(json.loads, ours("volumes", "--format", "json").stdout.splitlines())}
    v2s = {row["Name"]: row for row in map(json.loads, theirs("volumes", "--format", "json").stdout.splitlines())}
    assert set(mine) == set(v2s) == {f"{folder.name}_data", f"{folder.name}_other"}
    for name, row in mine.items():
        assert set(row["Labels"].split(",")) == set(v2s[name]["Labels"].split(","))  # v2's order is random
        assert {**row, "Labels": ""} == {**v2s[name], "Labels": ""}
