"""Engine API JSON of a Swarm -> the contract's observed values. Pure: no engine, no I/O.

A stack's objects are found by ``com.docker.stack.namespace``, the label ``docker stack deploy``
sets, so stacks deployed by either tool are seen by both. Tasks become ObservedContainers (a
task's slot is its number), services ObservedServices with their tasks counted.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from composer import labels
from composer.contract.backend import EngineEvent
from composer.contract.observed import (
    ObservedClusterObject,
    ObservedContainer,
    ObservedNetwork,
    ObservedService,
    ObservedVolume,
    PortMapping,
)
from composer.labels import STACK_NAMESPACE, STACK_OBJECT_KEY

Json = Mapping[str, Any]
_RUNNING = "running"
_STARTING = frozenset({"new", "pending", "assigned", "accepted", "ready", "preparing", "starting"})
_JOB_MODES = ("ReplicatedJob", "GlobalJob")
_TASK_CONTAINER_CHANGES = frozenset({"create", "start", "die", "kill", "stop", "oom", "destroy"})
"""A task container's actions that change its task's state (health_status too); not exec_* (each
health check runs one) nor attach, resize, top."""
_SWARM_SERVICE_LABEL = "com.docker.swarm.service.name"
_TIMESTAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def _key(stack: str, name: str) -> str:
    return name.removeprefix(f"{stack}_")


def _time(value: str | None) -> float | None:
    """An engine timestamp (RFC 3339 with nanoseconds, ``Z`` or an offset) as Unix seconds."""
    if not value:
        return None
    found = _TIMESTAMP.fullmatch(value)
    if found is None:
        return None
    head, fraction, zone = found.groups()
    try:  # Python's parser takes up to microseconds
        moment = datetime.fromisoformat(f"{head}.{(fraction or '0')[:6]}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return moment.timestamp()


def _labels(item: Json) -> Mapping[str, str]:
    found: Mapping[str, str] = (item.get("Spec") or {}).get("Labels") or item.get("Labels") or {}
    return found


def engine_time(info: Json) -> float | None:
    """The engine's clock (``/info``'s SystemTime), against which its tasks' timestamps are read."""
    return _time(info.get("SystemTime"))


def current(task: Json) -> bool:
    """A task the service wants now (not one it replaced, kept as history)."""
    return task.get("DesiredState") in (_RUNNING, "ready", "complete")


def task_state(task: Json) -> str:
    """The task's state in container terms: created, running or exited."""
    state = (task.get("Status") or {}).get("State", "")
    if state == _RUNNING:
        return "running"
    if state in _STARTING:
        return "created"
    return "exited"


def _health(spec: Json, state: str) -> str | None:
    """A task with a health check runs only once healthy (Swarm holds it in ``starting`` until then):
    its health follows from its state. None for a task without one, or whose image may have one
    (the task spec does not say)."""
    test = (spec.get("Healthcheck") or {}).get("Test") or []
    if not test or test == ["NONE"]:
        return None
    if state == _RUNNING:
        return "healthy"
    return "starting" if state in _STARTING else None


def observed_task(stack: str, service: Json, task: Json, nodes: Mapping[str, str] | None = None) -> ObservedContainer:
    """``nodes``: node id -> hostname; the status text says where the task runs (``ps``)."""
    status = task.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    service_name = (service.get("Spec") or {}).get("Name", "")
    slot = int(task.get("Slot") or 0)
    name = f"{service_name}.{slot or task.get('NodeID', '')}.{task['ID']}"
    spec = ((task.get("Spec") or {}).get("ContainerSpec") or {})
    state = task_state(task)
    text = str(status.get("State", ""))
    node = (nodes or {}).get(str(task.get("NodeID", "")))
    if node:
        text += f" on {node}"
    if status.get("Err"):
        text += f": {status['Err']}"
    # Host-mode ports are the task's own; ingress ones (the routing mesh) the service's, on every node.
    published = (status.get("PortStatus") or {}).get("Ports") or (service.get("Endpoint") or {}).get("Ports") or ()
    ports = tuple(PortMapping(int(port["TargetPort"]), port.get("Protocol", "tcp"), "0.0.0.0",
                              int(port["PublishedPort"]) if port.get("PublishedPort") else None)
                  for port in published)
    return ObservedContainer(
        container_id=container.get("ContainerID") or task["ID"],
        health=_health(spec, str(status.get("State", ""))),
        name=name,
        service_name=_key(stack, service_name),
        number=slot,
        config_hash=_labels(service).get(labels.CONFIG_HASH, ""),
        state=state,
        exit_code=container.get("ExitCode") if state == "exited" else None,
        image=str(spec.get("Image", "")).partition("@")[0],
        command=" ".join([*spec.get("Command", []), *spec.get("Args", [])]),
        created=_time(task.get("CreatedAt")),
        status_text=text,
        ports=ports,
    )


DEFAULT_MONITOR = 5.0
"""Seconds, when the service's update_config sets no monitor: the Docker CLI's wait for stable tasks."""


def observed_service(stack: str, service: Json, tasks: Sequence[Json], now: float | None = None) -> ObservedService:
    """``now``: the engine's time (Unix seconds), to say how long its running tasks have run."""
    spec = service.get("Spec") or {}
    mode = spec.get("Mode") or {}
    replicas: int | None = None
    if "Replicated" in mode:
        replicas = int(mode["Replicated"].get("Replicas", 1))
    elif "ReplicatedJob" in mode:
        replicas = int(mode["ReplicatedJob"].get("TotalCompletions", 1))
    job = any(key in mode for key in _JOB_MODES)
    wanted = [task for task in tasks if current(task)]
    done = {"running", "complete"} if job else {"running"}
    running = sum(1 for task in wanted if (task.get("Status") or {}).get("State") in done)
    failed = sorted((task for task in tasks if (task.get("Status") or {}).get("Err")),
                    key=lambda task: task.get("UpdatedAt", ""), reverse=True)
    update = service.get("UpdateStatus") or {}
    running_for: float | None = None
    if now is not None and not job:
        started = [_time((task.get("Status") or {}).get("Timestamp")) for task in wanted
                   if (task.get("Status") or {}).get("State") == _RUNNING]
        known = [moment for moment in started if moment is not None]
        if known:
            running_for = max(0.0, now - max(known))
    monitor = ((spec.get("UpdateConfig") or {}).get("Monitor") or 0) / 1e9 or DEFAULT_MONITOR
    return ObservedService(
        service_id=service["ID"],
        name=spec.get("Name", ""),
        key=_key(stack, spec.get("Name", "")),
        config_hash=_labels(service).get(labels.CONFIG_HASH),
        replicas=replicas,
        running=running,
        desired=len(wanted),
        update_state=update.get("State"),
        update_message=update.get("Message", ""),
        task_errors=tuple(str(task["Status"]["Err"]) for task in failed[:5]),
        running_for=running_for,
        monitor=monitor,
    )


def observed_network(stack: str, item: Json) -> ObservedNetwork:
    name = str(item.get("Name", ""))
    return ObservedNetwork(str(item.get("Id", "")), name, _key(stack, name), _labels(item).get(labels.CONFIG_HASH))


def observed_volume(stack: str, item: Json) -> ObservedVolume:
    name = str(item.get("Name", ""))
    return ObservedVolume(name, _key(stack, name))


def observed_objects(stack: str, kind: str, items: Iterable[Json]) -> list[ObservedClusterObject]:
    """Every secret or config: the stack's with their key (composer's label, or the name as
    ``docker stack deploy`` makes it), the others with none (external ones a service may use)."""
    found = []
    for item in items:
        name = str((item.get("Spec") or {}).get("Name", ""))
        own = _labels(item)
        key = ""
        if own.get(STACK_NAMESPACE) == stack:
            key = own.get(STACK_OBJECT_KEY) or _key(stack, name)
        found.append(ObservedClusterObject(kind, name, key))
    return found


def relevant(event: EngineEvent, service_names: frozenset[str]) -> bool:
    """Whether ``event`` may change the state of the named services: one of them changed (its
    update's state included), a node changed, or a task container of theirs on this node did."""
    if event.type == "service":
        return event.attributes.get("name") in service_names
    if event.type == "node":
        return True
    if event.type == "container":
        changed = event.action in _TASK_CONTAINER_CHANGES or event.action.startswith("health_status")
        return changed and event.attributes.get(_SWARM_SERVICE_LABEL) in service_names
    return False


async def relevant_changes(events: AsyncIterator[EngineEvent],
                           service_names: frozenset[str]) -> AsyncIterator[EngineEvent]:
    """The events of ``events`` that are ``relevant`` to the named services."""
    async for event in events:
        if relevant(event, service_names):
            yield event
