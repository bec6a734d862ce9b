"""Issue 3's remaining CLI flags end to end, through ``python -m composer`` against the real
engine: ``down --rmi``, ``logs --since/--until/-t/--no-color/--index``, ``up --quiet-pull`` and
``events [--json]`` (started in a subprocess, then SIGINT)."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ENV = {**os.environ, "COMPOSE_ANSI": "never"}


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(text)
    return folder


def composer(folder: Path, project_name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", "-p", project_name, *args],
                            cwd=folder, capture_output=True, text=True, timeout=180, env=ENV)
    if check and result.returncode != 0:
        pytest.fail(f"composer {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def image_exists(api: Any, reference: str) -> bool:
    import docker.errors

    try:
        api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_down_rmi_local_removes_the_built_image_only(tmp_path: Path, project_name: str, docker_api: Any,
                                                      busybox_image: str) -> None:
    folder = write(tmp_path, f"""
services:
  built:
    build:
      dockerfile_inline: |
        FROM {busybox_image}
        LABEL composer.test=rmi
    command: ["sleep", "300"]
    init: true
  pulled:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    built = f"{project_name}-built"
    try:
        composer(folder, project_name, "up", "-d", "--build")
        assert image_exists(docker_api, built)
        plan = composer(folder, project_name, "--dry-run", "down", "--rmi", "local").stdout
        assert f"image:{built}:latest, RemoveImage" in plan
        assert busybox_image not in plan
        result = composer(folder, project_name, "down", "--rmi", "local", "-t", "0")
        assert f"Image {built}:latest  Removed" in result.stderr
        assert not image_exists(docker_api, built)
        assert image_exists(docker_api, busybox_image)  # not built by the project: kept
        assert docker_api.containers(all=True, filters={"label": f"com.docker.compose.project={project_name}"}) == []
    finally:
        if image_exists(docker_api, built):
            docker_api.remove_image(built, force=True)


@pytest.fixture
def talker(tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str) -> Path:
    """Two replicas that each print one line, then a second one two seconds later."""
    folder = write(tmp_path, f"""
services:
  talk:
    image: {busybox_image}
    command: ["sh", "-c", "echo first; sleep 2; echo second; sleep 300"]
    init: true
    scale: 2
""")
    composer(folder, project_name, "up", "-d")
    deadline = time.monotonic() + 30
    while composer(folder, project_name, "logs").stdout.count("second") < 2:
        assert time.monotonic() < deadline, "the containers never printed their second line"
        time.sleep(0.3)
    return folder


def test_logs_prefix_timestamps_index_and_no_color(talker: Path, project_name: str) -> None:
    lines = composer(talker, project_name, "logs", "--no-color").stdout.splitlines()
    assert sorted(lines) == ["talk-1  | first", "talk-1  | second", "talk-2  | first", "talk-2  | second"]
    indexed = composer(talker, project_name, "logs", "--index", "2", "-t", "talk").stdout.splitlines()
    assert [line.split(" ", 4)[0] for line in indexed] == ["talk-2", "talk-2"]
    prefix, stamp, text = indexed[0].split(" ", 2)[0], indexed[0].split()[2], indexed[0].split()[3]
    assert (prefix, text) == ("talk-2", "first")
    assert stamp[:4].isdigit()
    assert stamp.endswith("Z")
    assert "T" in stamp
    coloured = subprocess.run([sys.executable, "-m", "composer", "-p", project_name, "logs", "talk"], cwd=talker,
                              capture_output=True, text=True, timeout=60, env={**ENV, "COMPOSE_ANSI": "always"})
    assert "\x1b[36m" in coloured.stdout
    assert "\x1b[0m" in coloured.stdout
    plain = composer(talker, project_name, "logs", "--no-color", "talk", check=False)
    assert "\x1b[" not in plain.stdout
    missing = composer(talker, project_name, "logs", "--index", "2", check=False)
    assert missing.returncode == 1
    assert "--index requires one service to be selected" in missing.stderr
    absent = composer(talker, project_name, "logs", "--index", "5", "talk", check=False)
    assert absent.returncode == 1
    assert 'service "talk" is not running container #5' in absent.stderr


def test_logs_since_and_until(talker: Path, project_name: str) -> None:
    stamped = composer(talker, project_name, "logs", "-t", "--index", "1", "talk").stdout.splitlines()
    first_stamp, second_stamp = (line.split()[2] for line in stamped)
    assert [line.split()[3] for line in stamped] == ["first", "second"]
    # the second line came ~2s after the first: a bound between the two splits them
    after_first = composer(talker, project_name, "logs", "--since", second_stamp, "talk").stdout
    assert "second" in after_first
    assert "first" not in after_first
    before_second = composer(talker, project_name, "logs", "--until", first_stamp, "talk").stdout
    assert "first" in before_second
    assert "second" not in before_second
    assert composer(talker, project_name, "logs", "--since", "1h", "talk").stdout.count("first") == 2
    assert composer(talker, project_name, "logs", "--until", "1h", "talk").stdout == ""
    bad = composer(talker, project_name, "logs", "--since", "garbage", check=False)
    assert bad.returncode == 1
    assert 'invalid value for "since": failed to parse value as time or duration: "garbage"' in bad.stderr


def test_up_quiet_pull_prints_no_pull_progress(tmp_path: Path, project_name: str, docker_api: Any,
                                               local_registry: Any) -> None:
    reference = local_registry.busybox
    folder = write(tmp_path, f"""
services:
  pulled:
    image: {reference}
    pull_policy: always
    command: ["sleep", "300"]
    init: true
""")
    loud = composer(folder, project_name, "up", "-d")
    assert "Pulling" in loud.stderr
    assert "Pulled" in loud.stderr
    composer(folder, project_name, "down", "-t", "0")
    quiet = composer(folder, project_name, "up", "-d", "--quiet-pull")
    assert "Pull" not in quiet.stderr
    assert "Started" in quiet.stderr


def _read_events(process: subprocess.Popen[str], seen: list[dict[str, Any]], until: float) -> None:
    assert process.stdout is not None
    while time.monotonic() < until:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if not ready:
            return
        line = process.stdout.readline()
        if not line:
            return
        seen.append(json.loads(line))


def test_events_json_streams_the_projects_container_events_until_sigint(
    tmp_path: Path, project_name: str, busybox_image: str,
) -> None:
    folder = write(tmp_path, f"""
services:
  one:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
  two:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    process = subprocess.Popen([sys.executable, "-m", "composer", "-p", project_name, "events", "--json"],
                               cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    seen: list[dict[str, Any]] = []
    try:
        time.sleep(1.5)  # let it subscribe; a restart below covers a slow start
        composer(folder, project_name, "up", "-d")
        deadline = time.monotonic() + 60
        restarts = 0
        while {e["service"] for e in seen if e["action"] == "start"} != {"one", "two"}:
            assert time.monotonic() < deadline, f"no start event for each service: {seen}"
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            _read_events(process, seen, time.monotonic() + 3)
            if {e["service"] for e in seen if e["action"] == "start"} != {"one", "two"} and restarts < 3:
                restarts += 1
                composer(folder, project_name, "restart")
        start = next(e for e in seen if e["action"] == "start")
        assert set(start) == {"action", "attributes", "id", "service", "time", "type"}
        assert start["type"] == "container"
        assert len(start["id"]) == 64
        assert start["attributes"]["name"] == f"{project_name}-{start['service']}-1"
        assert start["attributes"]["image"] == busybox_image
        assert not any(key.startswith("com.docker.compose.") for key in start["attributes"])
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=20) == 130
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=20)  # reaps it and closes its pipes
