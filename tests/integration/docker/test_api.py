"""composer.Project and AsyncProject against a real Docker Engine: a busybox httpd stack."""

from __future__ import annotations

import http.client
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import composer
from composer import labels
from composer.owner import Owner
from tests.integration.conftest import remove_project
from tests.support.stacks import projects_named, write_stack

V2 = Path(sys.executable).parent / "docker-compose"


@pytest.fixture
def stack(tmp_path: Path, busybox_image: str, project_name: str) -> Path:
    """The stack folder; ``project_name``'s finalizer removes whatever the test leaves."""
    write_stack(tmp_path / "stack", busybox_image)
    return tmp_path / "stack"


def _get(address: tuple[str, int], path: str = "/") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection(*address, timeout=5)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_context_manager_brings_the_stack_up_healthy_and_leaves_nothing(
    stack: Path, project_name: str, docker_api: Any,
) -> None:
    with composer.Project(stack, project_name=project_name) as project:
        found = {c.service: c for c in project.ps()}
        assert found["web"].health == "healthy"
        assert found["sidecar"].running
        owner = docker_api.inspect_container(found["web"].container_id)["Config"]["Labels"][labels.OWNER]
        assert Owner.parse(owner) == Owner.current()
        assert _get(project.port("web", 8080).address) == (200, b"hello\n")
    assert projects_named(docker_api, project_name) == set()
    assert not (docker_api.volumes(filters={"label": f"{labels.PROJECT}={project_name}"}) or {}).get("Volumes")


def test_context_manager_takes_the_stack_down_when_the_body_fails(
    stack: Path, project_name: str, docker_api: Any,
) -> None:
    def body() -> None:
        with composer.Project(stack, project_name=project_name):
            raise KeyError("boom")

    with pytest.raises(KeyError):
        body()
    assert projects_named(docker_api, project_name) == set()


def test_port_matches_what_compose_v2_prints(stack: Path, project_name: str) -> None:
    binary = str(V2) if V2.exists() else shutil.which("docker-compose")
    if binary is None:
        pytest.fail("Docker Compose v2 is missing")
    project = composer.Project(stack, project_name=project_name)
    project.up()
    printed = subprocess.run([binary, "-p", project_name, "port", "web", "8080"], cwd=stack, capture_output=True,
                             text=True, check=True, timeout=60).stdout.strip()
    found = project.port("web", 8080)
    assert str(found) == printed
    assert found == composer.HostPort(printed.rsplit(":", 1)[0], int(printed.rsplit(":", 1)[1]))
    with pytest.raises(composer.NotFoundError, match="no port 9999/tcp"):
        project.port("web", 9999)
    project.down()


def test_exec_returns_exit_code_and_both_streams(stack: Path, project_name: str) -> None:
    project = composer.Project(stack, project_name=project_name)
    project.up("web")
    result = project.exec("web", ["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert result == composer.ExecResult(3, "out\n", "err\n")
    assert project.exec("web", "cat /www/index.html", workdir="/").stdout == "hello\n"
    assert project.exec("web", ["sh", "-c", "echo $GREETING"], environment={"GREETING": "hi"}).stdout == "hi\n"
    with pytest.raises(composer.ComposerError, match='service "sidecar" is not running'):
        project.exec("sidecar", "true")
    project.down()


def test_lifecycle_and_logs(stack: Path, project_name: str) -> None:
    project = composer.Project(stack, project_name=project_name)
    project.up()
    assert any(line.text == "server starting" for line in project.logs("web"))
    project.stop("sidecar")
    assert [c.service for c in project.ps()] == ["web"]
    project.start("sidecar")
    before = {c.service: c.container_id for c in project.ps()}
    project.restart()
    assert {c.service: c.container_id for c in project.ps()} == before
    assert project.config().services["web"].ports[0].target == 8080
    project.down(volumes=True)
    assert project.ps(all=True) == []


def test_follow_logs_yields_new_lines(stack: Path, project_name: str) -> None:
    project = composer.Project(stack, project_name=project_name)
    project.up("web")
    lines = project.logs("web", follow=True)
    assert next(lines).text == "server starting"
    _get(project.port("web", 8080).address)
    assert "response:200" in next(lines).text
    lines.close()  # type: ignore[attr-defined]
    project.down()


def test_wait_timeout_is_a_composer_error(tmp_path: Path, busybox_image: str, project_name: str) -> None:
    (tmp_path / "compose.yaml").write_text(f"""
services:
  never:
    image: {busybox_image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    healthcheck: {{test: ["CMD", "false"], interval: 1s, retries: 100}}
""")
    project = composer.Project(tmp_path, project_name=project_name)
    with pytest.raises(composer.WaitTimeoutError, match="application not healthy after 2s"):
        project.up(timeout=2)
    project.down()


@pytest.mark.anyio
async def test_async_twin(stack: Path, project_name: str, docker_api: Any) -> None:
    async with composer.AsyncProject(stack, project_name=project_name) as project:
        address = (await project.port("web", 8080)).address
        assert _get(address)[0] == 200
        assert (await project.exec("web", "echo hi")).stdout == "hi\n"
        assert "server starting" in [line.text async for line in project.logs("web")]
    assert projects_named(docker_api, project_name) == set()


@pytest.fixture
def orphaned(stack: Path, project_name: str, docker_api: Any) -> Iterator[str]:
    """A stack brought up by a process that has exited since: its owner is gone."""
    code = f"import composer; composer.Project({str(stack)!r}, project_name={project_name!r}).up()"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
    yield project_name
    remove_project(docker_api, project_name)


def test_remove_stale_stacks_removes_stacks_whose_owner_is_gone(
    orphaned: str, stack: Path, docker_api: Any, tmp_path: Path,
) -> None:
    alive = f"{orphaned}-alive"
    try:
        with composer.Project(stack, project_name=alive):  # ours: its owner (this process) runs
            assert projects_named(docker_api, orphaned) == {orphaned, alive}
            removed = composer.remove_stale_stacks()
            assert orphaned in removed
            assert alive not in removed
            assert projects_named(docker_api, orphaned) == {alive}
    finally:
        remove_project(docker_api, alive)
