"""The container commands end to end, through the CLI, against the real engine: start, restart,
kill, rm, pause/unpause, create, wait, port, top, ls, images, exec, cp, run and ps."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project

PROJECT_LABEL = "com.docker.compose.project"


def composer(project_dir: Path, *args: str, check: bool = True, stdin: str | None = None,
             ) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", *args], cwd=project_dir,
                            capture_output=True, text=True, timeout=180, input=stdin,
                            stdin=subprocess.DEVNULL if stdin is None else None)
    if check and result.returncode != 0:
        pytest.fail(f"composer {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def _write_project(tmp_path: Path, body: str) -> Path:
    name = f"cc{uuid.uuid4().hex[:10]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(body)
    return folder


@pytest.fixture
def project(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    """db (sleep) and web (httpd answering "hi" on port 80, published, depends on db)."""
    folder = _write_project(tmp_path, f"""
services:
  db:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
  web:
    image: {busybox_image}
    command: ["sh", "-c", "mkdir -p /www && echo hi > /www/index.html && exec httpd -f -p 80 -h /www"]
    init: true
    ports: ["127.0.0.1::80"]
    depends_on: [db]
""")
    yield folder
    remove_project(docker_api, folder.name)


def containers(api: Any, project_name: str) -> dict[str, dict[str, Any]]:
    """The project's containers by name, inspected."""
    found = api.containers(all=True, filters={"label": f"{PROJECT_LABEL}={project_name}"})
    return {c["Names"][0].lstrip("/"): api.inspect_container(c["Id"]) for c in found}


def state(api: Any, project_name: str, name: str) -> dict[str, Any]:
    found: dict[str, Any] = containers(api, project_name)[f"{project_name}-{name}"]["State"]
    return found


def test_pause_and_unpause(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    composer(project, "pause", "web")
    assert state(docker_api, project.name, "web-1")["Status"] == "paused"
    assert state(docker_api, project.name, "db-1")["Status"] == "running"
    assert "(Paused)" in composer(project, "ps").stdout
    composer(project, "unpause")
    assert state(docker_api, project.name, "web-1")["Status"] == "running"


def test_start_restart_and_kill(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    composer(project, "kill", "web")
    web = state(docker_api, project.name, "web-1")
    assert web["Status"] == "exited"
    assert web["ExitCode"] == 137
    composer(project, "kill", "-s", "SIGTERM", "db")  # init forwards it to sleep
    deadline = time.monotonic() + 20
    while state(docker_api, project.name, "db-1")["Status"] != "exited" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert state(docker_api, project.name, "db-1")["Status"] == "exited"
    composer(project, "start")
    db, web = state(docker_api, project.name, "db-1"), state(docker_api, project.name, "web-1")
    assert db["Status"] == web["Status"] == "running"
    assert web["StartedAt"] >= db["StartedAt"]  # dependency order
    before = state(docker_api, project.name, "db-1")["StartedAt"]
    composer(project, "restart", "-t", "0", "db")
    after = state(docker_api, project.name, "db-1")
    assert after["Status"] == "running"
    assert after["StartedAt"] > before


def test_rm_removes_stopped_containers_only_unless_stop(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    composer(project, "stop", "-t", "0", "web")
    declined = composer(project, "rm", stdin="n\n")
    assert f"Going to remove {project.name}-web-1" in declined.stdout
    assert len(containers(docker_api, project.name)) == 2
    composer(project, "rm", "-f")
    assert sorted(containers(docker_api, project.name)) == [f"{project.name}-db-1"]
    assert "No stopped containers" in composer(project, "rm", "-f").stderr
    composer(project, "rm", "-f", "-s", "-v", "db")
    assert containers(docker_api, project.name) == {}


def test_create_creates_without_starting(project: Path, docker_api: Any) -> None:
    composer(project, "create")
    found = containers(docker_api, project.name)
    assert sorted(found) == [f"{project.name}-db-1", f"{project.name}-web-1"]
    assert {c["State"]["Status"] for c in found.values()} == {"created"}


def test_exec_streams_output_and_returns_the_exit_code(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d", "db")
    result = composer(project, "exec", "-T", "-e", "GREETING=hello", "-w", "/bin", "-u", "65534", "db",
                      "sh", "-c", 'echo "$GREETING from $(pwd) as $(id -u)"; echo oops >&2; exit 3', check=False)
    assert result.returncode == 3
    assert result.stdout == "hello from /bin as 65534\n"
    assert "oops" in result.stderr
    assert composer(project, "exec", "-T", "db", "cat", stdin="piped\n").stdout == "piped\n"
    composer(project, "exec", "-d", "db", "sh", "-c", "echo detached > /marker")
    deadline = time.monotonic() + 10
    while composer(project, "exec", "-T", "db", "cat", "/marker", check=False).returncode != 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_exec_errors_are_one_line_with_exit_1(project: Path) -> None:
    composer(project, "up", "-d", "db")
    composer(project, "stop", "-t", "0")
    stopped = composer(project, "exec", "-T", "db", "true", check=False)
    assert stopped.returncode == 1
    assert stopped.stderr.strip().splitlines() == ['composer: service "db" is not running']
    unknown = composer(project, "exec", "-T", "nosuch", "true", check=False)
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == ["composer: no such service: nosuch"]
    for command in (("restart", "nosuch"), ("kill", "nosuch"), ("pause", "nosuch"), ("top", "nosuch")):
        result = composer(project, *command, check=False)
        assert result.returncode == 1, command
        assert "no such service: nosuch" in result.stderr


def test_cp_round_trips_a_file(project: Path, tmp_path: Path) -> None:
    composer(project, "up", "-d", "db")
    composer(project, "exec", "-T", "db", "mkdir", "/tmp")  # the image is FROM scratch
    source = tmp_path / "payload.txt"
    source.write_text("round trip\n")
    composer(project, "cp", str(source), "db:/tmp/copied.txt")
    assert composer(project, "exec", "-T", "db", "cat", "/tmp/copied.txt").stdout == "round trip\n"
    composer(project, "cp", str(source), "db:/tmp")  # into an existing folder, keeping the name
    assert composer(project, "exec", "-T", "db", "cat", "/tmp/payload.txt").stdout == "round trip\n"
    back = tmp_path / "back.txt"
    composer(project, "cp", "db:/tmp/copied.txt", str(back))
    assert back.read_text() == "round trip\n"
    folder = tmp_path / "into"
    folder.mkdir()
    composer(project, "cp", "db:/tmp/copied.txt", str(folder))
    assert (folder / "copied.txt").read_text() == "round trip\n"


def test_run_rm_starts_dependencies_and_leaves_no_container(project: Path, docker_api: Any) -> None:
    result = composer(project, "run", "--rm", "-T", "-e", "X=42", "web", "sh", "-c", 'echo "x=$X"; exit 4',
                      check=False)
    assert result.returncode == 4, result.stderr
    assert result.stdout == "x=42\n"
    found = containers(docker_api, project.name)
    assert sorted(found) == [f"{project.name}-db-1"]  # the dependency, started through up; no web-1
    assert found[f"{project.name}-db-1"]["State"]["Status"] == "running"


def test_run_detached_is_a_labelled_one_off(project: Path, docker_api: Any) -> None:
    result = composer(project, "run", "-d", "--no-deps", "db", "sleep", "30")
    container_id = result.stdout.strip()
    inspected = docker_api.inspect_container(container_id)
    name = inspected["Name"].lstrip("/")
    assert name.startswith(f"{project.name}-db-run-")
    assert len(name.rsplit("-", 1)[1]) == 12
    assert inspected["Config"]["Labels"]["com.docker.compose.oneoff"] == "True"
    assert inspected["State"]["Status"] == "running"
    assert sorted(containers(docker_api, project.name)) == [name]  # --no-deps: nothing else
    named = composer(project, "run", "-d", "--no-deps", "--name", f"{project.name}-custom", "--entrypoint",
                     "sleep", "db", "30").stdout.strip()
    assert docker_api.inspect_container(named)["Name"] == f"/{project.name}-custom"


def test_port_prints_the_mapping_and_it_answers(project: Path) -> None:
    composer(project, "up", "-d")
    mapping = composer(project, "port", "web", "80").stdout.strip()
    host, _, port = mapping.rpartition(":")
    assert host == "127.0.0.1"
    assert port.isdigit()
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", int(port)), timeout=5) as connection:
                connection.sendall(b"GET /index.html HTTP/1.0\r\n\r\n")
                reply = b""
                while chunk := connection.recv(4096):
                    reply += chunk
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert reply.endswith(b"hi\n")
    missing = composer(project, "port", "web", "81", check=False)
    assert missing.returncode == 1
    assert "no port 81/tcp" in missing.stderr
    assert composer(project, "port", "--protocol", "udp", "web", "80", check=False).returncode == 1


def test_ls_lists_the_project(project: Path) -> None:
    composer(project, "up", "-d")
    listed = {p["Name"]: p for p in json.loads(composer(project, "ls", "--format", "json").stdout)}
    assert listed[project.name]["Status"] == "running(2)"
    assert listed[project.name]["ConfigFiles"] == str(project / "compose.yaml")
    assert project.name in composer(project, "ls", "-q").stdout.split()
    table = composer(project, "ls").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "CONFIG", "FILES"]
    assert any(line.split()[:2] == [project.name, "running(2)"] for line in table[1:])
    composer(project, "stop", "-t", "0", "web")
    assert json.loads(composer(project, "ls", "--format", "json", "--filter", f"name={project.name}").stdout)[0][
        "Status"] == "running(1)"
    everything = json.loads(composer(project, "ls", "-a", "--format", "json", "--filter",
                                     f"name={project.name}").stdout)
    assert everything[0]["Status"] == "exited(1), running(1)"


def test_images_and_top(project: Path, busybox_image: str, docker_api: Any) -> None:
    composer(project, "up", "-d")
    rows = json.loads(composer(project, "images", "--format", "json").stdout)
    assert sorted(row["ContainerName"] for row in rows) == [f"{project.name}-db-1", f"{project.name}-web-1"]
    repository, tag = busybox_image.rsplit(":", 1)
    assert {(row["Repository"], row["Tag"]) for row in rows} == {(repository, tag)}
    image_id = docker_api.inspect_image(busybox_image)["Id"]
    assert composer(project, "images", "-q").stdout.split() == [image_id.removeprefix("sha256:")]
    table = composer(project, "images").stdout.splitlines()
    assert table[0].split()[:3] == ["CONTAINER", "REPOSITORY", "TAG"]
    top = composer(project, "top", "db").stdout.splitlines()
    assert top[0].split()[:2] == ["SERVICE", "#"]
    assert any(line.startswith("db ") and line.endswith("sleep 300") for line in top[1:])


def test_wait_exits_with_the_container_code(tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    folder = _write_project(tmp_path, f"""
services:
  job:
    image: {busybox_image}
    command: ["sh", "-c", "sleep 1; exit 5"]
""")
    try:
        composer(folder, "up", "-d")
        result = composer(folder, "wait", "job", check=False)
        assert result.returncode == 5, result.stderr
        assert result.stdout.strip().endswith("exited with status code 5")
        assert composer(folder, "wait", "nosuch", check=False).returncode == 1
    finally:
        remove_project(docker_api, folder.name)


def test_ps_columns_and_status_filters(project: Path) -> None:
    composer(project, "up", "-d")
    composer(project, "stop", "-t", "0", "web")
    lines = composer(project, "ps", "-a").stdout.splitlines()
    assert lines[0].split() == ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]
    assert len(lines) == 3
    exited = composer(project, "ps", "--status", "exited", "--format", "json").stdout
    assert [json.loads(line)["Service"] for line in exited.splitlines()] == ["web"]  # one object a line, as v2
    running = [json.loads(line) for line in composer(project, "ps", "--filter", "status=running", "--format",
                                                     "json").stdout.splitlines()]
    assert [(entry["Service"], entry["State"]) for entry in running] == [("db", "running")]
    assert running[0]["Command"] == '"sleep 300"'
    bad = composer(project, "ps", "--status", "sleeping", check=False)
    assert bad.returncode == 1
    assert "invalid status" in bad.stderr
