"""post_start and pre_stop: the exec of each hook, and where the planner puts them."""

from __future__ import annotations

import pytest

from composer.contract.observed import ObservedContainer, ObservedState
from composer.contract.plan import ContainerPayload, Operation, OpKind
from composer.errors import HookError
from composer.planner.hooks import exec_spec
from composer.planner.reconcile import reconcile_up
from composer.planner.teardown import reconcile_down, reconcile_stop
from tests.unit.conftest import LoadFn

COMPOSE = """
services:
  app:
    image: busybox
    post_start:
      - command: ["sh", "-c", "echo up"]
        user: "1234"
        privileged: true
        working_dir: /etc
        environment: {A: "1", B: null}
    pre_stop:
      - command: ["sh", "-c", "echo down"]
"""


def test_the_exec_carries_user_privileged_workdir_and_set_variables(load: LoadFn) -> None:
    hook = load(COMPOSE).service("app").post_start[0]
    spec = exec_spec("app", hook)
    assert (spec.command, spec.user, spec.privileged, spec.workdir, dict(spec.environment), spec.tty,
            spec.interactive) == (("sh", "-c", "echo up"), "1234", True, "/etc", {"A": "1"}, False, False)


def test_a_hook_without_command_is_an_error(load: LoadFn) -> None:
    hook = load(COMPOSE).service("app").post_start[0].model_copy(update={"command": None})
    with pytest.raises(HookError, match="app hook has no command"):
        exec_spec("app", hook)


def payloads(operations: tuple[Operation, ...], kind: OpKind) -> list[ContainerPayload]:
    found = [op.payload for op in operations if op.kind is kind]
    return [p for p in found if isinstance(p, ContainerPayload)]


def test_starts_carry_post_start_and_stops_pre_stop(load: LoadFn) -> None:
    project = load(COMPOSE)
    service = project.service("app")
    (start,) = payloads(reconcile_up(project, ObservedState("demo")).operations, OpKind.START_CONTAINER)
    assert (start.hooks, start.service_name) == (service.post_start, "app")
    running = ObservedContainer(container_id="c" * 64, name="demo-app-1", service_name="app", number=1,
                                state="running", config_hash="", image="busybox")
    observed = ObservedState("demo", (running,))
    for plan in (reconcile_stop(project, observed), reconcile_down("demo", project, observed)):
        (stop,) = payloads(plan.operations, OpKind.STOP_CONTAINER)
        assert (stop.hooks, stop.service_name) == (service.pre_stop, "app")
