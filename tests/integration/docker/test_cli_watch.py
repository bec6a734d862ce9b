"""``watch`` and ``up --watch`` on the docker backend, against the real engine: sync (initial,
new, changed, ignored, deleted), restart, sync+exec and rebuild, through the CLI (tests/support/watch.py
has the checks both backends share)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.support.watch import WatchProcess, check_restart_and_exec, check_sync, until, write_project

COMPOSER = [sys.executable, "-m", "composer", "--progress", "plain"]


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any) -> Iterator[Path]:
    folder = tmp_path / f"cw{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    yield folder
    remove_project(docker_api, folder.name)


def reader(project: str) -> Any:
    def read(script: str) -> str:
        done = subprocess.run(["docker", "exec", f"{project}-web-1", "sh", "-c", script], capture_output=True,
                              text=True, timeout=30, check=False)
        return done.stdout

    return read


def test_watch_syncs_restarts_and_execs(folder: Path, busybox_image: str) -> None:
    write_project(folder, busybox_image)
    watch = WatchProcess([*COMPOSER, "watch"], folder)
    try:
        watch.wait_for("Watch enabled")
        read = reader(folder.name)
        check_sync(folder, read, watch)
        check_restart_and_exec(folder, read, watch)
    finally:
        code = watch.interrupt()
    assert code == 130, watch.errors
    assert any(line.startswith('Syncing service "web" after ') for line in watch.lines), watch.lines
    # Ctrl-C leaves the containers running, as v2's watch does
    assert reader(folder.name)("echo alive") == "alive\n"


def test_rebuild_rebuilds_and_recreates(folder: Path, busybox_image: str) -> None:
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY v.txt /v.txt\n")
    (folder / "v.txt").write_text("v1\n")
    (folder / "compose.yaml").write_text("""
services:
  web:
    build: .
    command: ["sleep", "600"]
    init: true
    develop:
      watch:
        - path: ./v.txt
          action: rebuild
""")
    watch = WatchProcess([*COMPOSER, "watch"], folder)
    try:
        watch.wait_for("Watch enabled", timeout=120)
        read = reader(folder.name)
        assert read("cat /v.txt") == "v1\n"
        watch.edit(lambda: (folder / "v.txt").write_text("v2\n"), "a rebuild")
        until(read, "cat /v.txt 2>/dev/null", "v2\n", "a rebuild", timeout=120)
        watch.wait_for('service(s) ["web"] successfully built')
        assert any("Rebuilding service(s) [\"web\"] after changes were detected..." in line for line in watch.lines)
    finally:
        watch.interrupt()


def test_up_watch_follows_logs_and_syncs(folder: Path, busybox_image: str) -> None:
    write_project(folder, busybox_image)
    watch = WatchProcess([*COMPOSER, "up", "--watch"], folder)
    try:
        watch.wait_for("Watch enabled")
        read = reader(folder.name)
        watch.edit(lambda: (folder / "app" / "new.txt").write_text("attached\n"), "a sync under up --watch")
        until(read, "cat /srv/new.txt 2>/dev/null", "attached\n", "a sync under up --watch")
        watch.edit(lambda: (folder / "restart.txt").write_text("1\n"), "a restart under up --watch")
        watch.wait_for('service(s) ["web"] restarted')
        until(read, "cat /starts 2>/dev/null", "started\nstarted\n", "a restart under up --watch")
        watch.edit(lambda: (folder / "app" / "later.txt").write_text("still\n"), "a sync after the restart")
        until(read, "cat /srv/later.txt 2>/dev/null", "still\n", "a sync after the restart")
        assert watch.process.poll() is None  # the attached up follows the restarted container
    finally:
        code = watch.interrupt()
    assert code == 130, (watch.lines, watch.errors)
    assert any("Attaching to web-1" in line for line in watch.lines), watch.lines
    # Ctrl-C stops the attached up's containers
    state = subprocess.run(["docker", "inspect", "-f", "{{.State.Running}}", f"{folder.name}-web-1"],
                           capture_output=True, text=True, check=False)
    assert state.stdout.strip() == "false"


def test_watch_errors_are_one_line(folder: Path, busybox_image: str) -> None:
    (folder / "compose.yaml").write_text(f"services:\n  web:\n    image: {busybox_image}\n")
    done = subprocess.run([*COMPOSER, "watch", "--no-up"], cwd=folder, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode != 0
    assert done.stderr.strip().splitlines()[-1].endswith(
        "none of the selected services is configured for watch, consider setting a 'develop' section")
    assert "Traceback" not in done.stderr
