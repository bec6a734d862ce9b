"""The executor against MemoryBackend: ordering, parallelism, failures and waits.

MemoryBackend says nothing about a real engine; these tests only check what the executor does
with the plan it is given.
"""

from __future__ import annotations

import pytest

from composer.backends.memory import MemoryBackend
from composer.contract.backend import Backend
from composer.contract.observed import ObservedState
from composer.contract.options import DownOptions, UpOptions
from composer.errors import DependencyConditionError, ExecutionError, UsageError, WaitTimeoutError
from composer.events import EventStatus, ListSink
from composer.planner.execute import execute, parallel_limit
from composer.planner.reconcile import reconcile_down, reconcile_up
from composer.spec.models import Project
from tests.unit.conftest import LoadFn
from tests.unit.planner.test_reconcile import STACK

pytestmark = pytest.mark.anyio

POLL = 0.001

INDEPENDENT = """
    services:
      db: {image: postgres}
      other: {image: busybox}
      web: {image: nginx, depends_on: [db]}
"""


async def _failed_up(project: Project, backend: MemoryBackend, *failing: tuple[str, str]) -> ExecutionError:
    """The error of a first ``up`` of ``project`` whose backend fails each (method, target)."""
    for method, target in failing:
        backend.fail(method, target)
    with pytest.raises(ExecutionError) as info:
        await execute(reconcile_up(project, ObservedState("demo")), backend, poll_interval=POLL)
    return info.value


def _index(backend: MemoryBackend, method: str, target: str) -> int:
    return backend.calls.index((method, target))


async def test_memory_backend_is_a_backend() -> None:
    backend: Backend = MemoryBackend()
    assert backend.name == "memory"


async def test_up_runs_in_dependency_order_then_converges(load: LoadFn) -> None:
    project = load(STACK)
    backend = MemoryBackend()
    backend.exit_on_start("migrate", 0)
    sink = ListSink()
    await execute(reconcile_up(project, ObservedState("demo")), backend, sink, poll_interval=POLL)
    assert _index(backend, "create_network", "demo_default") < _index(backend, "create_container", "demo-db-1")
    assert _index(backend, "start_container", "demo-db-1") < _index(backend, "start_container", "demo-migrate-1")
    assert _index(backend, "start_container", "demo-migrate-1") < _index(backend, "start_container", "demo-api-1")
    assert _index(backend, "start_container", "demo-api-1") < _index(backend, "start_container", "demo-web-1")
    assert backend.call_names("container_state")[:1] == ["demo-db-1"]
    texts = [(event.resource_id, event.text) for event in sink.events]
    assert ("container:demo-db-1", "Healthy") in texts
    assert ("container:demo-migrate-1", "Exited") in texts
    assert ("network:demo_default", "Created") in texts
    # what was executed is what was planned: a second up only runs the one-shot migrate again (as v2)
    observed = await backend.observe("demo")
    assert reconcile_up(project, observed).render().splitlines() == [
        "[] -> #1 service:db, WaitCondition, service_healthy, required by migrate",
        "[1] -> #2 service:migrate:1, StartContainer, container is exited"]


async def test_recreate_renames_the_new_container(load: LoadFn) -> None:
    before = load(INDEPENDENT)
    backend = MemoryBackend()
    await execute(reconcile_up(before, ObservedState("demo")), backend, poll_interval=POLL)
    after = load(INDEPENDENT.replace("image: nginx", "image: nginx:2"))
    sink = ListSink()
    await execute(reconcile_up(after, await backend.observe("demo")), backend, sink, poll_interval=POLL)
    renames = backend.call_names("rename_container")
    assert len(renames) == 1
    assert renames[0].endswith("_demo-web-1 -> demo-web-1")
    assert sorted(c.name for c in backend.containers.values()) == ["demo-db-1", "demo-other-1", "demo-web-1"]
    assert [(e.text, e.status) for e in sink.events if e.resource_id == "container:demo-web-1"] == [
        ("Recreate", EventStatus.WORKING), ("Recreated", EventStatus.DONE),
        ("Starting", EventStatus.WORKING), ("Started", EventStatus.DONE)]
    assert reconcile_up(after, await backend.observe("demo")).is_empty


async def test_parallel_limit_is_honoured(load: LoadFn) -> None:
    project = load("services:\n  web: {image: nginx, scale: 8}\n")
    limited = MemoryBackend(delay=0.01)
    await execute(reconcile_up(project, ObservedState("demo")), limited, parallel=2, poll_interval=POLL)
    assert limited.peak == 2
    free = MemoryBackend(delay=0.01)
    await execute(reconcile_up(project, ObservedState("demo")), free, poll_interval=POLL)
    assert free.peak == 8


def test_parallel_limit_from_environment() -> None:
    assert parallel_limit(3, {"COMPOSE_PARALLEL_LIMIT": "9"}) == 3
    assert parallel_limit(None, {"COMPOSE_PARALLEL_LIMIT": "9"}) == 9
    assert parallel_limit(None, {}) == float("inf")
    assert parallel_limit(-1, {}) == float("inf")
    with pytest.raises(UsageError):
        parallel_limit(None, {"COMPOSE_PARALLEL_LIMIT": "many"})


async def test_failure_skips_dependents_and_reports_every_failure(load: LoadFn) -> None:
    backend = MemoryBackend()
    error = await _failed_up(load(INDEPENDENT), backend, ("start_container", "demo-db-1"),
                             ("start_container", "demo-other-1"))
    assert [(f.resource_id, f.action) for f in error.failures] == [
        ("service:db:1", "StartContainer"), ("service:other:1", "StartContainer")]
    assert str(error) == ("start_container demo-db-1: simulated failure\n"
                               "start_container demo-other-1: simulated failure")
    # web was created (it only needs db to exist) but never started: its wait on db was skipped
    assert "demo-web-1" in backend.call_names("create_container")
    assert "demo-web-1" not in backend.call_names("start_container")


async def test_a_failed_create_starts_nothing(load: LoadFn) -> None:
    """As v2: every container is created before any starts, so a failed create leaves the others
    created but not started."""
    backend = MemoryBackend()
    error = await _failed_up(load(INDEPENDENT), backend, ("create_container", "demo-other-1"))
    assert [(f.resource_id, f.action) for f in error.failures] == [("service:other:1", "CreateContainer")]
    assert set(backend.call_names("create_container")) == {"demo-db-1", "demo-other-1", "demo-web-1"}
    assert backend.call_names("start_container") == []


HEALTH = """
    services:
      db:
        image: postgres
        healthcheck: {test: ["CMD", "true"]}
      web:
        image: nginx
        depends_on:
          db: {condition: service_healthy, required: REQUIRED}
"""


async def test_service_healthy_waits_for_health(load: LoadFn) -> None:
    backend = MemoryBackend()
    backend.script_health("db", polls=3)
    await execute(reconcile_up(load(HEALTH.replace("REQUIRED", "true")), ObservedState("demo")), backend,
                  poll_interval=POLL)
    assert backend.call_names("container_state") == ["demo-db-1"] * 4
    assert backend.calls.index(("start_container", "demo-web-1")) > len(backend.calls) - 2


async def test_unhealthy_dependency_fails_the_dependent(load: LoadFn) -> None:
    backend = MemoryBackend()
    backend.script_health("db", polls=1, result="unhealthy")
    with pytest.raises(DependencyConditionError, match="dependency failed to start: container demo-db-1 is unhealthy"):
        await execute(reconcile_up(load(HEALTH.replace("REQUIRED", "true")), ObservedState("demo")), backend,
                      poll_interval=POLL)
    assert "demo-web-1" not in backend.call_names("start_container")


async def test_optional_dependency_failure_is_a_warning(load: LoadFn) -> None:
    backend = MemoryBackend()
    backend.script_health("db", polls=0, result="unhealthy")
    sink = ListSink()
    await execute(reconcile_up(load(HEALTH.replace("REQUIRED", "false")), ObservedState("demo")), backend, sink,
                  poll_interval=POLL)
    assert "demo-web-1" in backend.call_names("start_container")
    assert [e.status for e in sink.events if e.resource_id == "service:db"] == [EventStatus.WARNING]


COMPLETED = """
    services:
      migrate: {image: migrate}
      app:
        image: app
        depends_on:
          migrate: {condition: service_completed_successfully}
"""


@pytest.mark.parametrize(("exit_code", "started"), [(0, True), (3, False)])
async def test_service_completed_successfully(load: LoadFn, exit_code: int, started: bool) -> None:
    backend = MemoryBackend()
    backend.exit_on_start("migrate", exit_code)
    plan = reconcile_up(load(COMPLETED), ObservedState("demo"))
    if started:
        await execute(plan, backend, poll_interval=POLL)
    else:
        with pytest.raises(DependencyConditionError, match='service "migrate" didn\'t complete successfully: exit 3'):
            await execute(plan, backend, poll_interval=POLL)
    assert ("demo-app-1" in backend.call_names("start_container")) is started


async def test_wait_ready_times_out(load: LoadFn) -> None:
    backend = MemoryBackend()
    backend.script_health("db", polls=10_000)
    plan = reconcile_up(load(HEALTH.replace("REQUIRED", "false")), ObservedState("demo"),
                        UpOptions(services=("db",), wait=True, wait_timeout=0.05))
    with pytest.raises(WaitTimeoutError, match=r"service db not ready after 0\.05s"):
        await execute(plan, backend, poll_interval=POLL)


async def test_down_leaves_nothing(load: LoadFn) -> None:
    project = load(STACK)
    backend = MemoryBackend()
    backend.exit_on_start("migrate", 0)
    await execute(reconcile_up(project, ObservedState("demo")), backend, poll_interval=POLL)
    plan = reconcile_down("demo", project, await backend.observe("demo"), DownOptions(remove_volumes=True))
    await execute(plan, backend, poll_interval=POLL)
    assert backend.containers == {}
    assert backend.networks == {}
    assert backend.volumes == {}


async def test_failed_pull_leaves_nothing_behind(load: LoadFn) -> None:
    backend = MemoryBackend()
    error = await _failed_up(load(STACK), backend, ("ensure_image", "nginx"))
    assert [(f.resource_id, f.action) for f in error.failures] == [("image:nginx", "PullImage")]
    assert backend.networks == {}
    assert backend.volumes == {}
    assert backend.containers == {}


async def test_observe_project_asks_for_external_resources(load: LoadFn) -> None:
    from composer.planner.snapshot import observe_project

    project = load("""
        services:
          web: {image: nginx, networks: [front]}
        networks:
          front: {external: true, name: shared}
    """)
    backend = MemoryBackend()
    backend.networks["shared"] = ("someone-else", "")
    observed = await observe_project(backend, "demo", project)
    assert [network.name for network in observed.networks] == ["shared"]
    assert reconcile_up(project, observed).render().splitlines()[0].endswith("image not found")
