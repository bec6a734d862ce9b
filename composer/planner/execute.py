"""The executor: runs a Plan against a backend, in parallel where the DAG allows.

One task per operation waits for the operations it depends on, then makes its one backend call
under a CapacityLimiter (``--parallel`` / COMPOSE_PARALLEL_LIMIT; waits take no slot, since
they only poll). It makes no decisions: everything was decided by the reconciler. When an
operation fails, the operations that depend on it are skipped and the others still run; at the
end every failure is reported in one ExecutionError. It never prints: progress goes to the
EventSink as composer.events.Event values.
"""

from __future__ import annotations

import math
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar, cast

import anyio

from composer import faults
from composer.contract.backend import ContainerRef, injection_archive
from composer.contract.plan import (
    ClusterObjectPayload,
    ContainerPayload,
    ContainerTarget,
    CreatePayload,
    ImagePayload,
    ImageRemovalPayload,
    NetworkPayload,
    Operation,
    OpKind,
    Plan,
    ServicePayload,
    ServiceRemovalPayload,
    ServiceWaitPayload,
    VolumePayload,
    WaitPayload,
)
from composer.errors import (
    BackendError,
    BackendUnavailableError,
    DependencyConditionError,
    ExecutionError,
    OperationFailure,
    UsageError,
    WaitTimeoutError,
)
from composer.events import Event, EventSink, EventStatus, NullSink
from composer.planner.hooks import run_hooks
from composer.planner.injected_files import create_container
from composer.planner.wait import wait_for, wait_for_services

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.contract.services import ServiceBackend

PARALLEL_ENV = "COMPOSE_PARALLEL_LIMIT"
P = TypeVar("P")

# (working text, done text) per kind, v2's words.
_TEXTS: dict[OpKind, tuple[str, str]] = {
    OpKind.CREATE_NETWORK: ("Creating", "Created"),
    OpKind.REMOVE_NETWORK: ("Removing", "Removed"),
    OpKind.CREATE_VOLUME: ("Creating", "Created"),
    OpKind.REMOVE_VOLUME: ("Removing", "Removed"),
    OpKind.PULL_IMAGE: ("Pulling", "Pulled"),
    OpKind.BUILD_IMAGE: ("Building", "Built"),
    OpKind.REMOVE_IMAGE: ("Removing", "Removed"),
    OpKind.CREATE_CONTAINER: ("Creating", "Created"),
    OpKind.START_CONTAINER: ("Starting", "Started"),
    OpKind.STOP_CONTAINER: ("Stopping", "Stopped"),
    OpKind.REMOVE_CONTAINER: ("Removing", "Removed"),
    OpKind.RENAME_CONTAINER: ("Renaming", "Renamed"),
    OpKind.KILL_CONTAINER: ("Killing", "Killed"),
    OpKind.DEPLOY_SERVICE: ("Deploying", "Deployed"),
    OpKind.REMOVE_SERVICE: ("Removing", "Removed"),
    OpKind.CREATE_CLUSTER_OBJECT: ("Creating", "Created"),
    OpKind.REMOVE_CLUSTER_OBJECT: ("Removing", "Removed"),
}
_WAITS = frozenset({OpKind.WAIT_CONDITION, OpKind.WAIT_READY, OpKind.WAIT_SERVICES})


def parallel_limit(parallel: int | None, environ: dict[str, str] | None = None) -> float:
    """The number of operations run at once: ``parallel``, else COMPOSE_PARALLEL_LIMIT, else no
    limit. Zero or a negative number means no limit too (v2's ``--parallel -1``).

    :raises UsageError: COMPOSE_PARALLEL_LIMIT is not a number.
    """
    if parallel is None:
        text = (environ if environ is not None else dict(os.environ)).get(PARALLEL_ENV, "").strip()
        if not text:
            return math.inf
        try:
            parallel = int(text)
        except ValueError:
            raise UsageError(f"{PARALLEL_ENV} must be a number, not {text!r}") from None
    return parallel if parallel > 0 else math.inf


async def execute(
    plan: Plan, backend: Backend, sink: EventSink | None = None, *, parallel: int | None = None,
    poll_interval: float = 0.5,
) -> dict[int, ContainerRef]:
    """Run ``plan`` on ``backend``; returns the containers created or renamed, by op id.

    :raises ExecutionError: operations failed (DependencyConditionError or WaitTimeoutError when
        every failure is of that kind); ``failures`` lists each, in op order.
    :raises UsageError: COMPOSE_PARALLEL_LIMIT is not a number.
    """
    runner = _Runner(plan, backend, sink or NullSink(), anyio.CapacityLimiter(parallel_limit(parallel)),
                     poll_interval)
    async with anyio.create_task_group() as group:
        for operation in plan.operations:
            group.start_soon(runner.run, operation)
    if runner.failures:
        raise _error(tuple(sorted(runner.failures, key=lambda failure: failure.op_id)))
    return dict(runner.results)


def _error(failures: tuple[OperationFailure, ...]) -> ExecutionError:
    for kind in (DependencyConditionError, WaitTimeoutError):
        if all(isinstance(failure.error, kind) for failure in failures):
            return kind.from_failures(failures)
    return ExecutionError.from_failures(failures)


class _Runner:
    """The shared state of one execution: a done-Event and an outcome per operation, the
    containers produced so far, and the failures."""

    def __init__(self, plan: Plan, backend: Backend, sink: EventSink, limiter: anyio.CapacityLimiter,
                 poll_interval: float) -> None:
        self.plan = plan
        self.backend = backend
        self.sink = sink
        self.limiter = limiter
        self.poll_interval = poll_interval
        self.done = {operation.op_id: anyio.Event() for operation in plan.operations}
        self.succeeded: dict[int, bool] = {}
        self.results: dict[int, ContainerRef] = {}
        self.failures: list[OperationFailure] = []
        self.groups = _group_bounds(plan)
        self.handlers: dict[OpKind, Callable[[Operation], Awaitable[None]]] = {
            OpKind.CREATE_NETWORK: self._create_network, OpKind.REMOVE_NETWORK: self._remove_network,
            OpKind.CREATE_VOLUME: self._create_volume, OpKind.REMOVE_VOLUME: self._remove_volume,
            OpKind.PULL_IMAGE: self._ensure_image, OpKind.BUILD_IMAGE: self._build_image,
            OpKind.CREATE_CONTAINER: self._create_container, OpKind.START_CONTAINER: self._start_container,
            OpKind.STOP_CONTAINER: self._stop_container, OpKind.REMOVE_CONTAINER: self._remove_container,
            OpKind.RENAME_CONTAINER: self._rename_container, OpKind.KILL_CONTAINER: self._kill_container,
            OpKind.WAIT_CONDITION: self._wait, OpKind.WAIT_READY: self._wait,
            OpKind.REMOVE_IMAGE: self._remove_image,
            OpKind.DEPLOY_SERVICE: self._deploy_service, OpKind.REMOVE_SERVICE: self._remove_service,
            OpKind.CREATE_CLUSTER_OBJECT: self._create_object, OpKind.REMOVE_CLUSTER_OBJECT: self._remove_object,
            OpKind.WAIT_SERVICES: self._wait_services,
        }

    async def run(self, operation: Operation) -> None:
        try:
            for op_id in operation.depends_on:
                await self.done[op_id].wait()
            if all(self.succeeded.get(op_id, False) for op_id in operation.depends_on):
                self.succeeded[operation.op_id] = await self._attempt(operation)
        finally:
            self.succeeded.setdefault(operation.op_id, False)
            self.done[operation.op_id].set()

    async def _attempt(self, operation: Operation) -> bool:
        resource_id = _event_resource(operation)
        try:
            self._progress(operation, resource_id, EventStatus.WORKING)
            if operation.kind in _WAITS:
                await self.handlers[operation.kind](operation)
            else:
                async with self.limiter:
                    faults.point("executor.operation.started")
                    await self.handlers[operation.kind](operation)
                    faults.point("executor.operation.done")
            self._progress(operation, resource_id, EventStatus.DONE)
            return True
        except Exception as exc:  # every failure is reported, none stops unrelated operations
            return self._failed(operation, resource_id, exc)

    def _failed(self, operation: Operation, resource_id: str, exc: Exception) -> bool:
        payload = operation.payload
        optional = isinstance(payload, WaitPayload) and not payload.required
        if operation.best_effort or optional:
            self.sink.emit(Event(resource_id, EventStatus.WARNING, "Warning", str(exc)))
            return True
        self.sink.emit(Event(resource_id, EventStatus.ERROR, "Error", str(exc)))
        self.failures.append(OperationFailure(operation.op_id, operation.resource_id, operation.kind.title, exc))
        return False

    def _progress(self, operation: Operation, resource_id: str, status: EventStatus) -> None:
        texts = _TEXTS.get(operation.kind)
        if texts is None:
            return
        if operation.group is None:
            self.sink.emit(Event(resource_id, status, texts[0] if status is EventStatus.WORKING else texts[1]))
            return
        # A group (recreate) shows as one change: its first step says Recreate, its last Recreated.
        first, last, group_resource = self.groups[operation.group]
        if status is EventStatus.WORKING and operation.op_id == first:
            self.sink.emit(Event(group_resource, status, "Recreate"))
        elif status is EventStatus.DONE and operation.op_id == last:
            self.sink.emit(Event(group_resource, status, "Recreated"))

    def resolve(self, target: ContainerTarget) -> ContainerRef:
        if target.ref is not None:
            return target.ref
        assert target.from_op is not None
        return self.results[target.from_op]

    # --- one backend call per kind ----------------------------------------------------------------

    async def _create_network(self, operation: Operation) -> None:
        payload = _payload(operation, NetworkPayload)
        assert payload.config is not None
        await self.backend.create_network(payload.project_name, payload.key, payload.network_name, payload.config,
                                          config_hash=payload.config_hash)

    async def _remove_network(self, operation: Operation) -> None:
        await self.backend.remove_network(_payload(operation, NetworkPayload).network_name)

    async def _create_volume(self, operation: Operation) -> None:
        payload = _payload(operation, VolumePayload)
        assert payload.config is not None
        await self.backend.create_volume(payload.project_name, payload.key, payload.volume_name, payload.config)

    async def _remove_volume(self, operation: Operation) -> None:
        await self.backend.remove_volume(_payload(operation, VolumePayload).volume_name)

    async def _ensure_image(self, operation: Operation) -> None:
        payload = _payload(operation, ImagePayload)
        await self.backend.ensure_image(payload.service, payload.image, payload.policy, self.sink)

    async def _build_image(self, operation: Operation) -> None:
        payload = _payload(operation, ImagePayload)
        if payload.build is None:  # a plan made without a build spec: nothing to build from
            await self.backend.ensure_image(payload.service, payload.image, payload.policy, self.sink)
            return
        if payload.build.try_pull:
            policy = "always" if payload.policy == "always" else "missing"
            try:
                await self.backend.ensure_image(payload.service, payload.image, policy, self.sink)
                return
            except BackendUnavailableError:
                raise
            except BackendError as exc:  # v2: an image that can be built need not be pullable
                self.sink.emit(Event(f"image:{payload.image}", EventStatus.WARNING, "Warning",
                                     f"{exc}; building it instead"))
        await self.backend.build_image(payload.build, self.sink)

    async def _remove_image(self, operation: Operation) -> None:
        await self.backend.remove_image(_payload(operation, ImageRemovalPayload).image)

    async def _create_container(self, operation: Operation) -> None:
        self.results[operation.op_id] = await create_container(self.backend, _payload(operation, CreatePayload).spec)

    async def _start_container(self, operation: Operation) -> None:
        payload = _payload(operation, ContainerPayload)
        ref = self.resolve(payload.target)
        if payload.files:
            await self.backend.copy_to_container(ref, "/", injection_archive(payload.files))
        await self.backend.start_container(ref)
        await run_hooks(self.backend, ref, payload.service_name, payload.hooks)  # post_start

    async def _stop_container(self, operation: Operation) -> None:
        payload = _payload(operation, ContainerPayload)
        ref = self.resolve(payload.target)
        await run_hooks(self.backend, ref, payload.service_name, payload.hooks)  # pre_stop
        await self.backend.stop_container(ref, grace_seconds=payload.grace_seconds)

    async def _remove_container(self, operation: Operation) -> None:
        payload = _payload(operation, ContainerPayload)
        await self.backend.remove_container(self.resolve(payload.target), remove_volumes=payload.remove_volumes)

    async def _rename_container(self, operation: Operation) -> None:
        payload = _payload(operation, ContainerPayload)
        assert payload.new_name is not None
        ref = self.resolve(payload.target)
        await self.backend.rename_container(ref, payload.new_name)
        self.results[operation.op_id] = ContainerRef(ref.container_id, payload.new_name)

    async def _kill_container(self, operation: Operation) -> None:
        payload = _payload(operation, ContainerPayload)
        await self.backend.kill_container(self.resolve(payload.target), signal=payload.signal)

    async def _wait(self, operation: Operation) -> None:
        payload = _payload(operation, WaitPayload)
        await wait_for(self.backend, payload, self.resolve, self.sink, poll_interval=self.poll_interval)


    # --- a service-level engine's kinds (composer.contract.services) -----------------------------

    def _services(self) -> ServiceBackend:
        from composer.contract.services import is_service_backend

        if not is_service_backend(self.backend):  # a plan made for another backend: a caller's bug
            raise UsageError(f"the {getattr(self.backend, 'name', 'chosen')} backend does not deploy services")
        return cast("ServiceBackend", self.backend)

    async def _deploy_service(self, operation: Operation) -> None:
        await self._services().deploy_service(_payload(operation, ServicePayload).spec)

    async def _remove_service(self, operation: Operation) -> None:
        await self._services().remove_service(_payload(operation, ServiceRemovalPayload).service_name)

    async def _create_object(self, operation: Operation) -> None:
        payload = _payload(operation, ClusterObjectPayload)
        assert payload.item is not None
        await self._services().create_cluster_object(payload.item)

    async def _remove_object(self, operation: Operation) -> None:
        payload = _payload(operation, ClusterObjectPayload)
        await self._services().remove_cluster_object(payload.kind, payload.name)

    async def _wait_services(self, operation: Operation) -> None:
        await wait_for_services(self._services(), _payload(operation, ServiceWaitPayload), self.sink,
                                poll_interval=self.poll_interval)


def _payload(operation: Operation, kind: type[P]) -> P:
    payload = operation.payload
    if not isinstance(payload, kind):
        raise TypeError(f"operation #{operation.op_id} ({operation.kind.title}) carries {type(payload).__name__}")
    return payload


def _event_resource(operation: Operation) -> str:
    """The resource an operation's events are about, named as the engine names it."""
    payload = operation.payload
    if isinstance(payload, NetworkPayload):
        return f"network:{payload.network_name}"
    if isinstance(payload, VolumePayload):
        return f"volume:{payload.volume_name}"
    if isinstance(payload, ImagePayload | ImageRemovalPayload):
        return f"image:{payload.image}"
    if isinstance(payload, CreatePayload):
        return f"container:{payload.spec.container_name}"
    if isinstance(payload, ContainerPayload):
        return f"container:{payload.new_name or payload.target.name}"
    if isinstance(payload, ServicePayload):
        return f"service:{payload.spec.service_name}"
    if isinstance(payload, ClusterObjectPayload):
        return f"{payload.kind}:{payload.name}"
    if isinstance(payload, ServiceWaitPayload):
        return f"stack:{operation.resource_id.removeprefix('stack:')}"
    return f"service:{payload.service_name}"


def _group_bounds(plan: Plan) -> dict[str, tuple[int, int, str]]:
    """Per group: its first and last op ids and the resource its events name (the final
    container name, from the rename step when there is one)."""
    bounds: dict[str, tuple[int, int, str]] = {}
    for operation in plan.operations:
        if operation.group is None:
            continue
        first, _, resource_id = bounds.get(operation.group, (operation.op_id, 0, _event_resource(operation)))
        if operation.kind is OpKind.RENAME_CONTAINER:
            resource_id = _event_resource(operation)
        bounds[operation.group] = (first, operation.op_id, resource_id)
    return bounds
