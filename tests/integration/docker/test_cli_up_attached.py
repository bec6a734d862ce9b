"""Attached ``up`` end to end, through ``python -m composer`` against the real engine: prefixed
logs, exit statuses, cascades and exit codes, Ctrl-C (SIGINT) and failing dependencies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

ENV = {**os.environ, "COMPOSE_ANSI": "never"}


def compose_file(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(text)
    return folder


def composer(folder: Path, project_name: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", "-p", project_name, *args],
                          cwd=folder, capture_output=True, text=True, timeout=timeout, env=ENV)


def popen(folder: Path, project_name: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "composer", "--progress", "plain", "-p", project_name, *args],
                            cwd=folder, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)


def states(api: Any, project_name: str) -> dict[str, dict[str, Any]]:
    """Service -> the engine's State of its container."""
    import docker.errors

    result: dict[str, dict[str, Any]] = {}
    for item in api.containers(all=True, filters={"label": f"com.docker.compose.project={project_name}"}):
        try:
            result[item["Labels"]["com.docker.compose.service"]] = api.inspect_container(item["Id"])["State"]
        except docker.errors.NotFound:
            continue
    return result


def wait_running(api: Any, project_name: str, services: set[str], process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        current = states(api, project_name)
        if services <= set(current) and all(current[name]["Running"] for name in services):
            time.sleep(1.0)  # let the attached process start following
            return
        time.sleep(0.2)
    pytest.fail(f"{services} not running after 60 s")


def test_attached_up_prefixes_lines_of_two_services_and_returns_when_both_exit(
    tmp_path: Path, project_name: str, busybox_image: str,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  one:
    image: {busybox_image}
    command: ["sh", "-c", "echo hello; sleep 1"]
  two:
    image: {busybox_image}
    command: ["sh", "-c", "echo hello; sleep 1"]
""")
    result = composer(folder, project_name, "up")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()  # text mode turned the status lines' leading \r into \n
    assert lines[0] == "Attaching to one-1, two-1"
    assert "one-1  | hello" in lines
    assert "two-1  | hello" in lines
    assert "\x1b[Kone-1 exited with code 0" in lines
    assert "\x1b[Ktwo-1 exited with code 0" in lines


def test_no_log_prefix_and_attach_select_services(tmp_path: Path, project_name: str, busybox_image: str) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  one:
    image: {busybox_image}
    command: ["sh", "-c", "echo from-one; sleep 1"]
  two:
    image: {busybox_image}
    command: ["sh", "-c", "echo from-two; sleep 2"]
""")
    result = composer(folder, project_name, "up", "--attach", "two", "--no-log-prefix")
    assert result.returncode == 0, result.stderr
    assert "from-two" in result.stdout.splitlines()
    assert "from-one" not in result.stdout


def test_exit_code_from_returns_that_services_exit_code(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  job:
    image: {busybox_image}
    command: ["sh", "-c", "echo working; sleep 1; exit 3"]
  server:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    started = time.monotonic()
    result = composer(folder, project_name, "up", "--exit-code-from", "job", "-t", "5")
    assert result.returncode == 3, result.stderr
    assert time.monotonic() - started < 60
    assert "Aborting on container exit..." in result.stderr
    assert not states(docker_api, project_name)["server"]["Running"]


def test_abort_on_container_exit_stops_the_others(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  quick:
    image: {busybox_image}
    command: ["sh", "-c", "echo done; sleep 1"]
  server:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    result = composer(folder, project_name, "up", "--abort-on-container-exit", "-t", "5")
    assert result.returncode == 0, result.stderr  # v2: the first container to exit gives the code
    found = states(docker_api, project_name)
    assert found["server"]["Status"] == "exited"
    assert "server-1 exited with code 143" in result.stdout


def test_abort_on_container_failure_ignores_zero_exits(tmp_path: Path, project_name: str, busybox_image: str) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  ok:
    image: {busybox_image}
    command: ["true"]
  bad:
    image: {busybox_image}
    command: ["sh", "-c", "sleep 2; exit 4"]
  server:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    result = composer(folder, project_name, "up", "--abort-on-container-failure", "-t", "5")
    assert result.returncode == 4, result.stderr


TWO_SLEEPERS = """
services:
  db:
    image: {image}
    command: {command}
    init: {init}
  web:
    image: {image}
    command: {command}
    init: {init}
    depends_on: [db]
"""


def test_sigint_stops_the_stack_gracefully(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", TWO_SLEEPERS.format(image=busybox_image, command='["sleep", "300"]',
                                                             init="true"))
    process = popen(folder, project_name, "up", "-t", "10")
    try:
        wait_running(docker_api, project_name, {"db", "web"}, process)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert time.monotonic() - started < 20
    assert "Gracefully Stopping... press Ctrl+C again to force" in stdout
    found = states(docker_api, project_name)
    assert {name: state["Status"] for name, state in found.items()} == {"db": "exited", "web": "exited"}
    # reverse dependency order: web stopped before db
    assert found["web"]["FinishedAt"] <= found["db"]["FinishedAt"]
    assert stderr.index("web-1  Stopped") < stderr.index("db-1  Stopping")


def test_second_sigint_kills(tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any) -> None:
    # sh as PID 1 ignores SIGTERM: a graceful stop would take the whole 120 s timeout.
    folder = compose_file(tmp_path / "p", TWO_SLEEPERS.format(image=busybox_image,
                                                             command='["sh", "-c", "sleep 300"]', init="false"))
    process = popen(folder, project_name, "up", "-t", "120")
    try:
        wait_running(docker_api, project_name, {"db", "web"}, process)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        time.sleep(2)
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr
    assert time.monotonic() - started < 30
    found = states(docker_api, project_name)
    assert {name: (state["Status"], state["ExitCode"]) for name, state in found.items()} == {
        "db": ("exited", 137), "web": ("exited", 137)}


def test_failing_completed_successfully_dependency_is_one_line_and_exit_1(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  job:
    image: {busybox_image}
    command: ["sh", "-c", "exit 3"]
  web:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    depends_on:
      job:
        condition: service_completed_successfully
""")
    result = composer(folder, project_name, "up")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == 'composer: service "job" didn\'t complete successfully: exit 3'
    assert states(docker_api, project_name)["web"]["Status"] == "created"  # never started, as v2


def test_unhealthy_dependency_is_one_line_and_exit_1(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  db:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    healthcheck:
      test: ["CMD", "false"]
      interval: 1s
      retries: 2
  web:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    depends_on:
      db:
        condition: service_healthy
""")
    result = composer(folder, project_name, "up")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"composer: dependency failed to start: container {project_name}-db-1 is unhealthy"
    assert states(docker_api, project_name)["web"]["Status"] == "created"


def test_wait_returns_once_healthy_and_a_timeout_is_one_line(
    tmp_path: Path, project_name: str, busybox_image: str, docker_api: Any,
) -> None:
    folder = compose_file(tmp_path / "p", f"""
services:
  db:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 30
  slow:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    profiles: [slow]
    healthcheck:
      test: ["CMD", "sleep", "60"]
      interval: 1s
      timeout: 90s
""")
    result = composer(folder, project_name, "up", "--wait", "--wait-timeout", "60")
    assert result.returncode == 0, result.stderr
    assert states(docker_api, project_name)["db"]["Health"]["Status"] == "healthy"
    result = composer(folder, project_name, "--profile", "slow", "up", "--wait", "--wait-timeout", "2")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "composer: application not healthy after 2s"
