"""The library without an engine: owners, readiness polling, and Project on the memory backend."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer import labels
from composer.api import AsyncProject, HostPort, Project
from composer.backends.memory import MemoryBackend
from composer.contract.backend import ContainerRef, ContainerSpec
from composer.errors import SpecError, UsageError, WaitTimeoutError
from composer.owner import Owner, boot_id, process_start_time
from composer.readiness import wait_until

COMPOSE = """
services:
  db:
    image: busybox
  web:
    image: busybox
    depends_on: [db]
    labels: {role: front}
"""


class RecordingBackend(MemoryBackend):
    """Keeps the labels each container was created with."""

    def __init__(self) -> None:
        super().__init__()
        self.created: dict[str, dict[str, str]] = {}

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        self.created[spec.container_name] = dict(spec.labels)
        return await super().create_container(spec)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    return tmp_path


# --- owners -----------------------------------------------------------------------------------------


def test_owner_label_round_trips() -> None:
    owner = Owner.current()
    assert owner.pid == os.getpid()
    assert Owner.parse(owner.label()) == owner


@pytest.mark.parametrize("value", ["", "boot=x", "boot=x pid=y start=1", "pid=1 start=2"])
def test_malformed_owner_labels_parse_to_none(value: str) -> None:
    assert Owner.parse(value) is None


def test_this_process_is_not_gone() -> None:
    assert not Owner.current().is_gone()


def test_a_process_that_exited_is_gone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    start = process_start_time(child.pid)
    child.wait()
    owner = Owner.current()._replace(pid=child.pid, start_time=start or 1)
    assert owner.is_gone()


def test_a_reused_pid_with_another_start_time_is_gone() -> None:
    owner = Owner.current()
    assert owner._replace(start_time=owner.start_time + 1).is_gone()


def test_another_boot_is_gone() -> None:
    assert boot_id()
    assert Owner.current()._replace(boot_id="another-boot").is_gone()


def test_another_pid_namespace_cannot_be_judged() -> None:
    assert not Owner.current()._replace(pid_namespace="pid:[1]", start_time=1).is_gone()


def test_process_start_time_of_a_missing_process_is_none() -> None:
    assert process_start_time(2**22 + 1) is None


# --- readiness -------------------------------------------------------------------------------------


def test_wait_until_polls_until_the_condition_holds(folder: Path) -> None:
    project = Project(folder, backend=MemoryBackend())
    calls: list[int] = []

    def third_time(_: Project) -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionRefusedError("refused")
        return True

    wait_until(project, [third_time], timeout=5, interval=0.01)
    assert len(calls) == 3


def test_wait_until_names_the_condition_and_last_reason(folder: Path) -> None:
    project = Project(folder, backend=MemoryBackend())

    def never(_: Project) -> bool:
        raise ConnectionRefusedError("refused")

    with pytest.raises(WaitTimeoutError, match=r"not ready after 0.05s: .*never: ConnectionRefusedError: refused"):
        wait_until(project, [never], timeout=0.05, interval=0.01)


# --- Project on the memory backend ------------------------------------------------------------------


def test_project_loads_like_the_cli(folder: Path) -> None:
    project = Project(folder, backend=MemoryBackend())
    assert project.name == folder.name.lower()
    assert project.config().service_names == ("db", "web")
    named = Project(folder / "compose.yaml", project_name="other", backend=MemoryBackend())
    assert named.name == "other"


def test_environment_adds_to_the_process_environment(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox:${TAG}\n")
    project = Project(tmp_path, environment={"TAG": "1.36"}, backend=MemoryBackend())
    assert project.config().services["web"].image == "busybox:1.36"
    assert project.config().environment["PATH"] == os.environ["PATH"]


def test_an_invalid_project_raises_a_spec_error(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    ports: [nope]\n")
    with pytest.raises(SpecError):
        Project(tmp_path, backend=MemoryBackend())


def test_an_unknown_backend_is_a_usage_error(folder: Path) -> None:
    with pytest.raises(UsageError):
        Project(folder, backend="nosuch")


def test_up_labels_containers_with_their_owner_and_down_removes_them(folder: Path) -> None:
    backend = RecordingBackend()
    with Project(folder, backend=backend) as project:
        found = project.ps()
        assert [(c.service, c.number, c.state) for c in found] == [("db", 1, "running"), ("web", 1, "running")]
        assert sorted(backend.created) == [f"{project.name}-db-1", f"{project.name}-web-1"]
        for created in backend.created.values():
            owner = Owner.parse(created[labels.OWNER])
            assert owner is not None
            assert owner.pid == os.getpid()
        assert project.config().services["web"].labels == {"role": "front"}  # the model is untouched
    assert not backend.containers


def test_an_unowned_stack_has_no_owner_label(folder: Path) -> None:
    backend = RecordingBackend()
    project = Project(folder, backend=backend, owned=False)
    project.up()
    assert backend.created
    assert all(labels.OWNER not in created for created in backend.created.values())
    project.down()


def test_stop_start_and_selected_services(folder: Path) -> None:
    backend = MemoryBackend()
    project = Project(folder, backend=backend)
    project.up("db")
    assert [c.service for c in project.ps()] == ["db"]
    project.up()
    project.stop("web")
    assert [c.service for c in project.ps()] == ["db"]
    assert {c.service: c.state for c in project.ps(all=True)} == {"db": "running", "web": "exited"}
    project.start()
    assert len(project.ps()) == 2
    project.down()
    assert project.ps(all=True) == []


def test_port_of_an_unknown_service_is_a_spec_error(folder: Path) -> None:
    project = Project(folder, backend=MemoryBackend())
    project.up()
    with pytest.raises(SpecError, match="no such service: nope"):
        project.port("nope", 80)


def test_host_port_prints_like_compose_port_and_connects_to_loopback() -> None:
    assert str(HostPort("0.0.0.0", 32768)) == "0.0.0.0:32768"
    assert HostPort("0.0.0.0", 32768).address == ("127.0.0.1", 32768)
    assert HostPort("::", 1).address == ("::1", 1)
    assert HostPort("10.0.0.2", 1).address == ("10.0.0.2", 1)


@pytest.mark.anyio
async def test_async_twin_brings_up_and_always_down(folder: Path) -> None:
    backend = MemoryBackend()
    seen: list[int] = []

    async def body() -> None:
        async with AsyncProject(folder, backend=backend) as project:
            seen.append(len(await project.ps()))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await body()
    assert seen == [2]
    assert not backend.containers


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
