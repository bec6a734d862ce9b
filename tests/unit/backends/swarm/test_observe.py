"""Engine API JSON of a swarm -> observed tasks and services (no engine)."""

from __future__ import annotations

from composer.backends.swarm.observe import (
    DEFAULT_MONITOR,
    engine_time,
    observed_objects,
    observed_service,
    observed_task,
    relevant,
)
from composer.contract.backend import EngineEvent
from composer.contract.observed import PortMapping

SERVICE = {
    "ID": "svc1",
    "Spec": {"Name": "demo_web", "Labels": {"com.docker.compose.config-hash": "abc",
                                            "com.docker.stack.namespace": "demo"},
             "Mode": {"Replicated": {"Replicas": 2}}},
    "Endpoint": {"Ports": [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 30080, "PublishMode": "ingress"}]},
    "UpdateStatus": {"State": "rollback_completed", "Message": "update rolled back due to failure"},
}


def _task(task_id: str, slot: int, state: str, desired: str = "running", err: str = "") -> dict[str, object]:
    status: dict[str, object] = {"State": state, "ContainerStatus": {"ContainerID": f"c-{task_id}", "ExitCode": 3}}
    if err:
        status["Err"] = err
    return {"ID": task_id, "ServiceID": "svc1", "Slot": slot, "NodeID": "n1", "DesiredState": desired,
            "Status": status, "UpdatedAt": f"2026-12-07T10:00:0{task_id[-1]}Z",
            "CreatedAt": "2026-12-07T10:00:00.123456789Z",
            "Spec": {"ContainerSpec": {"Image": "busybox:latest@sha256:x", "Args": ["sleep", "1"]}}}


def test_a_task_is_a_container_of_its_slot_with_its_node_and_the_mesh_ports() -> None:
    found = observed_task("demo", SERVICE, _task("t1", 1, "running"), {"n1": "node-a"})
    assert (found.container_id, found.name, found.service_name, found.number) == ("c-t1", "demo_web.1.t1", "web", 1)
    assert (found.state, found.config_hash, found.image, found.command) == ("running", "abc", "busybox:latest",
                                                                            "sleep 1")
    assert found.status_text == "running on node-a"
    assert found.ports == (PortMapping(80, "tcp", "0.0.0.0", 30080),)
    assert found.created is not None
    assert int(found.created) == 1796637600
    failed = observed_task("demo", SERVICE, _task("t2", 2, "failed", err="task: non-zero exit (3)"))
    assert (failed.state, failed.exit_code, failed.status_text) == ("exited", 3, "failed: task: non-zero exit (3)")
    assert observed_task("demo", SERVICE, _task("t3", 1, "preparing")).state == "created"


def test_a_service_counts_its_current_tasks_and_keeps_the_last_errors() -> None:
    tasks = [_task("t1", 1, "running"), _task("t2", 2, "failed", err="first"),
             _task("t3", 2, "failed", "shutdown", err="second"), _task("t4", 2, "starting")]
    service = observed_service("demo", SERVICE, tasks)
    assert (service.key, service.replicas, service.running, service.desired) == ("web", 2, 1, 3)
    assert service.update_state == "rollback_completed"
    assert service.task_errors == ("second", "first")  # newest first


def test_only_the_stacks_objects_get_a_key() -> None:
    items = [{"Spec": {"Name": "demo_token-1", "Labels": {"com.docker.stack.namespace": "demo",
                                                          "dev.composer.stack.object": "token"}}},
             {"Spec": {"Name": "demo_old", "Labels": {"com.docker.stack.namespace": "demo"}}},
             {"Spec": {"Name": "shared", "Labels": {}}},
             {"Spec": {"Name": "other_x", "Labels": {"com.docker.stack.namespace": "other"}}}]
    assert [(item.name, item.key) for item in observed_objects("demo", "secret", items)] == [
        ("demo_token-1", "token"), ("demo_old", "old"), ("shared", ""), ("other_x", "")]


def test_a_service_says_how_long_its_youngest_running_task_has_run_by_the_engines_clock() -> None:
    first, second = _task("t1", 1, "running"), _task("t2", 2, "running")
    first["Status"]["Timestamp"] = "2026-12-07T10:00:00.5Z"  # type: ignore[index]
    second["Status"]["Timestamp"] = "2026-12-07T11:00:02.000000001+01:00"  # type: ignore[index]
    now = engine_time({"SystemTime": "2026-12-07T10:00:05.25Z"})
    service = observed_service("demo", SERVICE, [first, second], now)
    assert service.running_for == 3.25
    assert service.monitor == DEFAULT_MONITOR
    monitored = {**SERVICE, "Spec": {**SERVICE["Spec"], "UpdateConfig": {"Monitor": 2_000_000_000}}}  # type: ignore[dict-item]
    assert observed_service("demo", monitored, [first], now).monitor == 2.0
    assert observed_service("demo", SERVICE, [first]).running_for is None  # no clock given: not known


def test_only_changes_of_the_waited_services_their_task_containers_and_nodes_wake_the_waiter() -> None:
    names = frozenset({"demo_web"})
    task = {"com.docker.swarm.service.name": "demo_web"}
    assert relevant(EngineEvent(0, "service", "update", "s1", {"name": "demo_web", "updatestate.new": "completed"}),
                    names)
    assert not relevant(EngineEvent(0, "service", "update", "s2", {"name": "demo_db"}), names)
    assert relevant(EngineEvent(0, "node", "update", "n1", {"name": "node-b"}), names)
    assert relevant(EngineEvent(0, "container", "start", "c1", task), names)
    assert relevant(EngineEvent(0, "container", "health_status: healthy", "c1", task), names)
    assert not relevant(EngineEvent(0, "container", "exec_start: sh -c true", "c1", task), names)  # a health check
    assert not relevant(EngineEvent(0, "container", "start", "c2", {"com.docker.swarm.service.name": "demo_db"}),
                        names)


def test_a_task_with_a_health_check_is_healthy_once_running_and_starting_before() -> None:
    def checked(state: str) -> dict[str, object]:
        task = _task("t1", 1, state)
        task["Spec"]["ContainerSpec"]["Healthcheck"] = {"Test": ["CMD", "true"]}  # type: ignore[index]
        return task

    assert observed_task("demo", SERVICE, checked("running")).health == "healthy"
    assert observed_task("demo", SERVICE, checked("starting")).health == "starting"
    assert observed_task("demo", SERVICE, checked("failed")).health is None
    assert observed_task("demo", SERVICE, _task("t2", 1, "running")).health is None  # no check in the spec
