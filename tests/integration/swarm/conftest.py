"""A one-node swarm on the local dockerd, for the swarm backend's tests.

The engine is made a swarm manager (``docker swarm init --advertise-addr 127.0.0.1``) for the
session when it is not one, and left as it was found: the swarm left and the networks Swarm
made for itself (ingress, docker_gwbridge) removed when they were not there before. Each test's
stack has a unique name and is removed at the end, pass or fail.

This kernel has no IPVS, so the routing mesh and virtual IPs cannot work here (``docker stack
deploy`` shows the same): the tests use ``endpoint_mode: dnsrr`` and host-mode ports.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from composer import labels

SWARM_NETWORKS = ("ingress", "docker_gwbridge")


def _networks(api: Any) -> set[str]:
    return {item["Name"] for item in api.networks() or []}


@pytest.fixture(scope="session")
def swarm(docker_api: Any) -> Iterator[Any]:
    """The engine as a swarm manager, for the session."""
    state = (docker_api.info().get("Swarm") or {}).get("LocalNodeState")
    if state == "active":
        yield docker_api
        return
    before = _networks(docker_api)
    docker_api.init_swarm(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    try:
        yield docker_api
    finally:
        docker_api.leave_swarm(force=True)
        for name in SWARM_NETWORKS:
            if name in before:
                continue
            for _ in range(50):  # ingress goes with the swarm, a moment later
                if name not in _networks(docker_api):
                    break
                try:
                    docker_api.remove_network(name)
                except Exception:
                    time.sleep(0.1)


def remove_stack(api: Any, stack: str) -> None:
    """Remove every service, secret, config, network and volume of ``stack`` (best effort), and
    wait for its tasks' containers to go."""
    selector = {"label": f"{labels.STACK_NAMESPACE}={stack}"}
    for service in api.services(filters=selector) or []:
        _quietly(api.remove_service, service["ID"])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.containers(all=True, filters=selector):
        time.sleep(0.2)
    for item in api.secrets(filters=selector) or []:
        _quietly(api.remove_secret, item["ID"])
    for item in api.configs(filters=selector) or []:
        _quietly(api.remove_config, item["ID"])
    for item in api.networks(filters=selector) or []:
        _quietly(api.remove_network, item["Id"])
    for item in (api.volumes(filters=selector) or {}).get("Volumes") or []:
        _quietly(api.remove_volume, item["Name"], force=True)


def _quietly(call: Any, *args: Any, **kwargs: Any) -> None:
    try:
        call(*args, **kwargs)
    except Exception:
        pass


@pytest.fixture
def stack(swarm: Any) -> Iterator[str]:
    name = f"stk{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        remove_stack(swarm, name)


def docker_cli(*args: str, cwd: Any = None) -> subprocess.CompletedProcess[str]:
    """Debian's docker CLI (/usr/bin/docker: it has ``stack``; a newer one first on PATH may not)."""
    return subprocess.run(["/usr/bin/docker", *args], cwd=cwd, capture_output=True, text=True, timeout=180)
