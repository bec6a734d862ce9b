"""``ipc``/``pid`` modes on the native backend without containers: what the runtime's configuration
says for each mode, the refusals, and the start options naming X's namespaces (X running or not)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from composer.backends.native.namespaces import running_pid, start_options
from composer.backends.native.runtime.config import namespace_mode, sysctls
from composer.backends.native.runtime.init import process_start_time
from composer.errors import BackendError, UnsupportedFeatureError
from composer.spec.models.service import ServiceConfig


def service(**settings: object) -> ServiceConfig:
    return ServiceConfig.model_validate({"name": "web", "image": "busybox", **settings})


def test_modes_of_their_own_host_and_none() -> None:
    for value in (None, "private", "shareable", "service:db", "container:other"):
        assert namespace_mode(service(ipc=value), "ipc") is None  # joined ones come from Runtime.start
    assert namespace_mode(service(ipc="host"), "ipc") == "host"
    assert namespace_mode(service(ipc="none"), "ipc") == "none"
    assert namespace_mode(service(pid="host"), "pid") == "host"
    assert namespace_mode(service(pid="service:db"), "pid") is None
    with pytest.raises(UnsupportedFeatureError, match="pid: none"):
        namespace_mode(service(pid="none"), "pid")
    with pytest.raises(UnsupportedFeatureError, match="ipc: ns:/x"):
        namespace_mode(service(ipc="ns:/x"), "ipc")


def test_ipc_sysctls_are_refused_in_the_hosts_ipc_namespace() -> None:
    assert sysctls({"kernel.shmmni": "2048"}, host_network=False) == {"kernel.shmmni": "2048"}
    with pytest.raises(UnsupportedFeatureError, match=r"kernel\.shmmni"):
        sysctls({"kernel.shmmni": "2048"}, host_network=False, host_ipc=True)
    assert sysctls({"net.ipv4.ip_forward": "1"}, host_network=False, host_ipc=True) == {"net.ipv4.ip_forward": "1"}


def owner(tmp_path: Path, state: dict[str, object] | None) -> dict[str, str]:
    folder = tmp_path / "proj" / "server"
    folder.mkdir(parents=True)
    if state is not None:
        (folder / "state.json").write_text(json.dumps(state))
    return {"run_root": str(tmp_path), "project": "proj", "container": "server"}


def test_start_options_name_the_running_owners_namespaces(tmp_path: Path) -> None:
    pid = os.getpid()
    settings = owner(tmp_path, {"pid": pid, "pid_start": process_start_time(pid)})
    config = {"namespaces": {"ipc": settings, "pid": settings}}
    assert start_options(config) == {"ipcns": f"/proc/{pid}/ns/ipc", "pidns": f"/proc/{pid}/ns/pid"}
    assert start_options({}) == {}


@pytest.mark.parametrize("state", [None, {"pid": 1, "pid_start": -1}, {"pid": 0}])
def test_an_owner_that_is_not_running_is_one_line(tmp_path: Path, state: dict[str, object] | None) -> None:
    with pytest.raises(BackendError, match=r"^cannot join PID namespace of a non running container: server$"):
        running_pid(owner(tmp_path, state), "PID")


def test_an_owner_that_exited_is_not_running(tmp_path: Path) -> None:
    pid = os.getpid()
    settings = owner(tmp_path, {"pid": pid, "pid_start": process_start_time(pid)})
    (tmp_path / "proj" / "server" / "exit.json").write_text("{}")
    with pytest.raises(BackendError, match="IPC namespace"):
        running_pid(settings, "IPC")
