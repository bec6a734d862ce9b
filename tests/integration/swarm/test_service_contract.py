"""The ServiceBackend contract (composer.contract.services), run against a real service-level engine.

Each test drives the backend only through the protocol, with specs built as the planner builds them,
and asserts what the planner and ``up --wait`` rely on: a service created, updated in place (the same
service, its tasks replaced only when the spec changed), removed with its tasks gone; secrets and
configs created once by name, granted to a task as files, removed; absent things removed without
error; refusals and missing objects as composer's errors; ``service_status`` counting tasks, and
``service_changes`` reporting a change as it happens. A new service backend adds one line to BACKENDS.

Swarm runs on the one-node swarm of the local dockerd (conftest.py ``swarm``); each test's stack is
removed at the end, pass or fail (``stack``). This host has no IPVS: services use ``endpoint_mode: dnsrr``.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import pytest

from composer import labels
from composer.contract.backend import ContainerRef, LogLine
from composer.contract.observed import ObservedService
from composer.contract.services import ClusterObject, ObjectGrant, ServiceBackend, ServiceSpec, is_service_backend
from composer.errors import NotFoundError, UnsupportedFeatureError
from composer.spec.models import ServiceConfig

pytestmark = pytest.mark.anyio

SERVE = ["sh", "-c", "trap 'exit 0' TERM; echo ready $GREETING; while true; do sleep 0.2; done"]
CONVERGE_TIMEOUT = 180.0  # the machine is shared: a task's start can take a while


@dataclass
class Harness:
    backend: ServiceBackend
    project: str
    image: str

    def spec(self, service: dict[str, Any], **fields: Any) -> ServiceSpec:
        config = ServiceConfig.model_validate({"command": SERVE, "deploy": {"endpoint_mode": "dnsrr"}, **service})
        stack = {labels.STACK_NAMESPACE: self.project}
        return ServiceSpec(self.project, config, f"{self.project}_{config.name}", self.image,
                           fields.pop("replicas", 1), {**stack, labels.CONFIG_HASH: fields.pop("hash", "h1")},
                           stack, **fields)


class Kind(Protocol):
    def __call__(self, request: pytest.FixtureRequest) -> Harness: ...


def swarm(request: pytest.FixtureRequest) -> Harness:
    from composer.backends.swarm.backend import SwarmBackend

    request.getfixturevalue("swarm")
    return Harness(SwarmBackend(), request.getfixturevalue("stack"), request.getfixturevalue("busybox_image"))


BACKENDS = [pytest.param(swarm, id="swarm", marks=pytest.mark.docker)]


@pytest.fixture(params=BACKENDS)
async def harness(request: pytest.FixtureRequest) -> AsyncGenerator[Harness, None]:
    kind: Kind = request.param
    made = kind(request)
    assert is_service_backend(made.backend)
    try:
        yield made
    finally:
        await made.backend.aclose()


async def status(harness: Harness, name: str) -> ObservedService | None:
    found = [service for service in await harness.backend.service_status([name]) if service.name == name]
    return found[0] if found else None


async def until(harness: Harness, name: str, done: Callable[[ObservedService], bool]) -> ObservedService:
    last = None
    with anyio.move_on_after(CONVERGE_TIMEOUT):
        while True:
            last = await status(harness, name)
            if last is not None and done(last):
                return last
            await anyio.sleep(0.3)
    raise AssertionError(f"{name} did not get there: {last}")


async def task_ids(harness: Harness, name: str) -> set[str]:
    observed = await harness.backend.observe(harness.project)
    return {task.name.rpartition(".")[2] for task in observed.containers if task.name.startswith(f"{name}.")
            and task.state == "running"}


async def first_lines(harness: Harness, name: str, count: int) -> list[str]:
    observed = await harness.backend.observe(harness.project)
    refs = [ContainerRef(task.container_id, task.name) for task in observed.containers
            if task.name.startswith(f"{name}.") and task.state == "running"]
    lines: list[str] = []
    stream: AsyncIterator[LogLine] = harness.backend.logs(refs, follow=True)
    with anyio.move_on_after(60):
        async for line in stream:
            lines.append(line.text.strip())
            if len(lines) >= count:
                break
    with contextlib.suppress(Exception):
        await stream.aclose()  # type: ignore[attr-defined]
    return lines


async def test_a_service_is_created_updated_in_place_only_when_changed_and_removed(harness: Harness) -> None:
    backend, spec = harness.backend, harness.spec({"name": "web", "environment": {"GREETING": "one"}})
    assert await backend.service_status([spec.service_name]) == []
    service_id = await backend.deploy_service(spec)
    running = await until(harness, spec.service_name, lambda found: found.running == 1)
    assert (running.service_id, running.key, running.config_hash, running.replicas) == (service_id, "web", "h1", 1)
    observed = await backend.observe(harness.project)
    assert [service.name for service in observed.services] == [spec.service_name]
    first = await task_ids(harness, spec.service_name)
    assert len(first) == 1

    assert await backend.deploy_service(spec) == service_id  # unchanged: the engine replaces no task
    await anyio.sleep(2)
    assert await task_ids(harness, spec.service_name) == first

    changed = harness.spec({"name": "web", "environment": {"GREETING": "two"}}, hash="h2", replicas=2)
    assert await backend.deploy_service(changed) == service_id  # the same service, updated
    updated = await until(harness, spec.service_name, lambda found: found.running == 2 and found.config_hash == "h2"
                          and found.update_state in (None, "completed"))
    assert updated.replicas == 2
    assert not first & await task_ids(harness, spec.service_name)  # its tasks were replaced
    assert sorted(await first_lines(harness, spec.service_name, 2)) == ["ready two", "ready two"]

    await backend.remove_service(spec.service_name)  # returns once the tasks' containers are gone
    assert await backend.service_status([spec.service_name]) == []
    assert (await backend.observe(harness.project)).containers == ()
    await backend.remove_service(spec.service_name)  # absent already: no error


async def test_secrets_and_configs_are_created_once_granted_as_files_and_removed(harness: Harness) -> None:
    backend = harness.backend
    stack = {labels.STACK_NAMESPACE: harness.project}
    secret = ClusterObject("secret", "token", f"{harness.project}_token-1", b"s3cret", stack)
    config = ClusterObject("config", "settings", f"{harness.project}_settings-1", b"level=3", stack)
    for item in (secret, config):
        await backend.create_cluster_object(item)
        await backend.create_cluster_object(item)  # the same name again: it has this content, no error
    found = {(item.kind, item.name) for item in (await backend.observe(harness.project)).cluster_objects}
    assert {("secret", secret.name), ("config", config.name)} <= found

    grants = (ObjectGrant("config", config.name, "/etc/settings.conf", mode=0o440),
              ObjectGrant("secret", secret.name, "token"))
    command = ["sh", "-c", "cat /run/secrets/token; echo; cat /etc/settings.conf; echo; "
                           "trap 'exit 0' TERM; while true; do sleep 0.2; done"]
    spec = harness.spec({"name": "app", "command": command}, grants=grants)
    await backend.deploy_service(spec)
    await until(harness, spec.service_name, lambda service: service.running == 1)
    assert await first_lines(harness, spec.service_name, 2) == ["s3cret", "level=3"]

    await backend.remove_service(spec.service_name)
    for item in (secret, config):
        await backend.remove_cluster_object(item.kind, item.name)
        await backend.remove_cluster_object(item.kind, item.name)  # absent already: no error
    left = {(item.kind, item.name) for item in (await backend.observe(harness.project)).cluster_objects}
    assert not {("secret", secret.name), ("config", config.name)} & left


async def test_what_the_engine_cannot_run_is_refused_and_a_missing_object_is_not_found(harness: Harness) -> None:
    backend = harness.backend
    privileged = harness.spec({"name": "root", "privileged": True})
    assert list(backend.refusals(privileged)) == [
        "services.root.privileged is not supported by the swarm backend (a Swarm service has no such option)"]
    with pytest.raises(UnsupportedFeatureError, match=r"services\.root\.privileged"):
        await backend.deploy_service(privileged)
    assert list(backend.refusals(harness.spec({"name": "fine"}))) == []

    orphan = harness.spec({"name": "orphan"}, grants=(ObjectGrant("secret", f"{harness.project}_nothing", "x"),))
    with pytest.raises(NotFoundError, match=f"secret {harness.project}_nothing not found"):
        await backend.deploy_service(orphan)
    assert await backend.service_status([privileged.service_name, orphan.service_name]) == []


async def test_service_changes_report_a_deploy_and_its_tasks_as_they_happen(harness: Harness) -> None:
    backend, spec = harness.backend, harness.spec({"name": "watched"})
    other = harness.spec({"name": "other"})
    seen: list[tuple[str, str, str]] = []
    async with backend.service_changes([spec.service_name]) as changes:  # subscribed from here on
        await backend.deploy_service(other)
        await backend.deploy_service(spec)
        with anyio.fail_after(CONVERGE_TIMEOUT):
            async for event in changes:
                owner = event.attributes.get("com.docker.swarm.service.name") or event.attributes.get("name", "")
                seen.append((event.type, event.action, owner))
                if event.type == "container" and event.action == "start":
                    break
    assert ("service", "create", spec.service_name) in seen, seen
    assert {owner for kind, _, owner in seen if kind != "node"} == {spec.service_name}, seen  # not the other's
    observed = await until(harness, spec.service_name, lambda service: service.running == 1)
    assert observed.name == spec.service_name
