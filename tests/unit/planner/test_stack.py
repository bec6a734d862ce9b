"""Stack plans for a service-level engine, as text: pure functions of the project, the snapshot
and the objects read (no engine)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager

import anyio
import pytest

from composer import labels
from composer.contract.observed import ObservedClusterObject, ObservedNetwork, ObservedService, ObservedState
from composer.contract.options import DownOptions, UpOptions
from composer.contract.plan import ServicePayload
from composer.errors import ExternalResourceNotFoundError, SpecValidationError
from composer.planner.stack import reconcile_stack_down, reconcile_stack_up, service_spec
from composer.planner.stack_objects import stack_objects
from tests.unit.conftest import LoadFn

STACK = """
services:
  web:
    image: busybox
    depends_on: [db]
    secrets: [token]
    configs: [{source: settings, target: /etc/app.conf, mode: 0440}]
    deploy: {replicas: 3, labels: {tier: front}}
  db:
    image: busybox
    networks: [back]
networks:
  back: {}
secrets:
  token: {environment: TOKEN}
configs:
  settings: {content: "level=3"}
"""


@pytest.fixture
def stack(load: LoadFn) -> object:
    return load(STACK.replace("environment: TOKEN", "file: ./token.txt"))


def _deployed(project: object, objects: dict, **changes: object) -> ObservedState:  # type: ignore[type-arg]
    from composer.spec.models import Project

    assert isinstance(project, Project)
    services = []
    for name in sorted(project.services):
        spec = service_spec(project, project.services[name], objects)
        services.append(ObservedService(f"id-{name}", spec.service_name, name, spec.labels[labels.CONFIG_HASH],
                                        spec.replicas, spec.replicas or 0, spec.replicas or 0))
    networks = (ObservedNetwork("n1", "demo_default", "default"), ObservedNetwork("n2", "demo_back", "back"))
    cluster = tuple(ObservedClusterObject(item.kind, item.name, key) for (_, key), item in objects.items())
    state = ObservedState("demo", networks=networks, services=tuple(services), cluster_objects=cluster)
    from dataclasses import replace

    return replace(state, **changes)  # type: ignore[arg-type]


def test_a_new_stack_creates_networks_and_objects_then_every_service(load: LoadFn, tmp_path: object) -> None:
    from pathlib import Path

    (Path(str(tmp_path)) / "token.txt").write_text("s3cret")
    project = load(STACK.replace("environment: TOKEN", "file: ./token.txt"))
    objects = stack_objects(project)
    token, settings = objects[("secret", "token")].name, objects[("config", "settings")].name
    assert token.startswith("demo_token-")
    assert settings.startswith("demo_settings-")
    plan = reconcile_stack_up(project, ObservedState("demo"), objects, UpOptions(wait=True))
    assert plan.render() == "\n".join([
        "[] -> #1 network:back, CreateNetwork, no existing network",
        "[] -> #2 network:default, CreateNetwork, no existing network",
        f"[] -> #3 config:settings, CreateClusterObject, no existing config {settings}",
        f"[] -> #4 secret:token, CreateClusterObject, no existing secret {token}",
        "[1 2 3 4] -> #5 service:db, DeployService, no existing service",
        "[1 2 3 4] -> #6 service:web, DeployService, no existing service",
        "[5 6] -> #7 stack:demo, WaitServices, up --wait",
    ])
    assert plan.warnings == ("depends_on is ignored by the swarm backend: Swarm starts every service at once (web)",)
    payload = plan.operation(6).payload
    assert isinstance(payload, ServicePayload)
    web = payload.spec
    assert (web.service_name, web.replicas, web.labels["tier"]) == ("demo_web", 3, "front")
    assert [(grant.kind, grant.name, grant.target, grant.mode) for grant in web.grants] == [
        ("config", settings, "/etc/app.conf", 0o440), ("secret", token, "token", 0o444)]


def test_a_converged_stack_plans_nothing_and_a_changed_content_rolls_only_its_users(
        load: LoadFn, tmp_path: object) -> None:
    from pathlib import Path

    secret = Path(str(tmp_path)) / "token.txt"
    secret.write_text("one")
    project = load(STACK.replace("environment: TOKEN", "file: ./token.txt"))
    before = stack_objects(project)
    observed = _deployed(project, before)
    assert reconcile_stack_up(project, observed, before).render() == ""

    secret.write_text("two")
    after = stack_objects(project)
    new, old = after[("secret", "token")].name, before[("secret", "token")].name
    assert new != old
    assert reconcile_stack_up(project, observed, after).render() == "\n".join([
        f"[] -> #1 secret:token, CreateClusterObject, no existing secret {new}",
        "[1] -> #2 service:web, DeployService, config hash changed",
        f"[2] -> #3 secret:token, RemoveClusterObject, secret {old} no longer used (best effort)",
    ])


def test_services_of_another_tool_are_updated_and_orphans_removed_only_when_asked(load: LoadFn) -> None:
    project = load("services:\n  web:\n    image: busybox\n")
    foreign = ObservedService("x", "demo_web", "web", None, 1, 1, 1)
    orphan = ObservedService("y", "demo_old", "old", "h", 1, 1, 1)
    observed = ObservedState("demo", networks=(ObservedNetwork("n", "demo_default", "default"),),
                             services=(foreign, orphan))
    plan = reconcile_stack_up(project, observed, {})
    assert plan.render() == "[] -> #1 service:web, DeployService, deployed without composer's config hash"
    assert plan.warnings[0].startswith("Found orphan services (demo_old) for this stack.")
    removal = reconcile_stack_up(project, observed, {}, UpOptions(remove_orphans=True)).render()
    assert "service:demo_old, RemoveService, orphan service" in removal


def test_externals_must_exist_and_a_build_without_an_image_is_refused(load: LoadFn) -> None:
    project = load("""
services:
  web: {image: busybox, secrets: [given]}
secrets:
  given: {external: true}
""")
    with pytest.raises(ExternalResourceNotFoundError, match="secret given declared as external"):
        reconcile_stack_up(project, ObservedState("demo"), stack_objects(project))
    present = ObservedState("demo", cluster_objects=(ObservedClusterObject("secret", "given", ""),))
    assert "DeployService" in reconcile_stack_up(project, present, {}).render()
    built = load("services:\n  app:\n    build: .\n")
    with pytest.raises(SpecValidationError, match="service app has build but no image to push it as"):
        reconcile_stack_up(built, ObservedState("demo"), {})
    tagged = load("services:\n  app:\n    build: .\n    image: registry.example/app:1\n")
    assert reconcile_stack_up(tagged, ObservedState("demo"), {}).warnings == (
        "the swarm backend does not build: app deployed from the image in the registry "
        "(composer build and composer push first)",)
    with pytest.raises(SpecValidationError, match="up --build is not supported by the swarm backend"):
        reconcile_stack_up(tagged, ObservedState("demo"), {}, UpOptions(build=True))


def test_down_removes_services_first_then_the_stacks_objects_and_networks(load: LoadFn) -> None:
    observed = ObservedState(
        "demo", services=(ObservedService("a", "demo_web", "web", "h", 1),),
        networks=(ObservedNetwork("n", "demo_default", "default"), ObservedNetwork("e", "shared", "")),
        cluster_objects=(ObservedClusterObject("secret", "demo_token-1", "token"),
                         ObservedClusterObject("secret", "someone_elses", "")))
    assert reconcile_stack_down("demo", None, observed, DownOptions()).render() == "\n".join([
        "[] -> #1 service:web, RemoveService, down",
        "[1] -> #2 secret:token, RemoveClusterObject, down",
        "[1] -> #3 network:default, RemoveNetwork, down",
    ])


def test_a_service_converges_when_its_tasks_run_and_a_rolled_back_update_fails_at_once() -> None:
    from composer.errors import DependencyConditionError
    from composer.planner.wait import service_converged

    assert service_converged(ObservedService("a", "demo_web", "web", "h", 2, running=2, desired=2))
    assert not service_converged(ObservedService("a", "demo_web", "web", "h", 2, running=1, desired=2))
    assert not service_converged(ObservedService("a", "demo_web", "web", "h", 2, running=2, desired=2,
                                                 update_state="updating"))
    assert not service_converged(ObservedService("a", "demo_all", "all", "h", None, running=0, desired=0))
    assert service_converged(ObservedService("a", "demo_all", "all", "h", None, running=3, desired=3))
    rolled = ObservedService("a", "demo_web", "web", "h", 2, running=2, desired=2, update_state="rollback_completed",
                             update_message="update rolled back", task_errors=("task: non-zero exit (1)",))
    with pytest.raises(DependencyConditionError, match=r"service demo_web update rollback completed: update rolled "
                                                       r"back \(task errors: task: non-zero exit \(1\)\)"):
        service_converged(rolled)


def test_a_service_converges_once_its_youngest_task_has_run_its_monitor_period() -> None:
    from composer.planner.wait import service_converged, stable_in

    young = ObservedService("a", "demo_web", "web", "h", 1, running=1, desired=1, running_for=1.5, monitor=5.0)
    assert not service_converged(young)  # a task that exits a moment after it started has not converged
    assert stable_in(young) == 3.5
    settled = ObservedService("a", "demo_web", "web", "h", 1, running=1, desired=1, running_for=5.0, monitor=5.0)
    assert service_converged(settled)
    assert stable_in(settled) == 0.0


def test_the_waiter_reads_soon_after_an_event_then_rarely_and_polls_without_events() -> None:
    from composer.planner.wait import FALLBACK_POLL, SETTLE_READS, read_delay

    delays = [read_delay(reads, streaming=True, poll_interval=0.5) for reads in range(len(SETTLE_READS) + 2)]
    assert delays == [*SETTLE_READS, FALLBACK_POLL, FALLBACK_POLL]
    assert read_delay(0, streaming=False, poll_interval=0.5) == 0.5
    assert read_delay(9, streaming=False, poll_interval=0.5) == 0.5


class _RollingBack:
    """The two calls of a service-level engine the waiter makes: an update in progress, then rolled back;
    an event stream that stays open (the waiter's listener runs in its task group meanwhile)."""

    def __init__(self) -> None:
        self.reads = 0

    async def service_status(self, service_names: object) -> list[ObservedService]:
        self.reads += 1
        state = "updating" if self.reads == 1 else "rollback_completed"
        return [ObservedService("a", "demo_web", "web", "h", 2, running=2, desired=2, update_state=state,
                                update_message="update rolled back due to failure or early termination of task x",
                                task_errors=("task: non-zero exit (1)",))]

    def service_changes(self, service_names: object) -> AbstractAsyncContextManager[AsyncIterator[object]]:
        @contextlib.asynccontextmanager
        async def stream() -> AsyncIterator[AsyncIterator[object]]:
            async def never() -> AsyncIterator[object]:
                await anyio.sleep_forever()
                yield None  # never reached: a generator that never yields

            yield never()

        return stream()


def test_a_rolled_back_update_fails_the_wait_with_its_own_error_not_an_exception_group() -> None:
    """up --wait in a Swarm guest said only "unhandled errors in a TaskGroup (1 sub-exception)" when an update
    rolled back: the verdict was raised inside the waiter's task group."""
    from composer.contract.plan import ServiceWaitPayload
    from composer.errors import DependencyConditionError
    from composer.events import ListSink
    from composer.planner.wait import wait_for_services

    backend = _RollingBack()

    async def wait() -> None:
        await wait_for_services(backend, ServiceWaitPayload(("demo_web",), timeout=30), ListSink(),  # type: ignore[arg-type]
                                poll_interval=0.01)

    with pytest.raises(DependencyConditionError, match=r"^service demo_web update rollback completed: update rolled "
                                                       r"back due to .* \(task errors: task: non-zero exit \(1\)\)$"):
        anyio.run(wait)
    assert backend.reads == 2
