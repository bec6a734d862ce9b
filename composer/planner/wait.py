"""Conditions on containers: depends_on (started, healthy, completed successfully) and ``--wait``.

``check`` is pure: it reads one ContainerState and says met / not yet, or raises when the
condition can no longer be met. ``wait_for`` polls a backend until every target meets it. For a
service-level engine, ``service_converged`` is the pure verdict on one service, and
``wait_for_services`` reads the services again after each of the engine's events about them (and
rarely between: ``read_delay``). This module decides nothing about what to wait for; the reconciler did.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import anyio

from composer.errors import ComposerError, DependencyConditionError, WaitTimeoutError
from composer.events import Event, EventSink, EventStatus

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ContainerRef, ContainerState, EngineEvent
    from composer.contract.observed import ObservedService
    from composer.contract.plan import ContainerTarget, ServiceWaitPayload, WaitPayload
    from composer.contract.services import ServiceBackend

_STOPPED = frozenset({"exited", "dead"})
# What v2 prints once a condition holds; service_started prints nothing.
_MET_TEXT = {"service_healthy": "Healthy", "service_completed_successfully": "Exited", "ready": "Healthy"}


def check(condition: str, state: ContainerState, container_name: str, service_name: str) -> bool:
    """Whether ``state`` meets ``condition``; False means "not yet".

    :raises DependencyConditionError: the condition can no longer be met (unhealthy, exited,
        exited non-zero, no health check).
    """
    if condition == "service_started":
        return state.status != "created"
    if condition == "service_completed_successfully":
        return _completed(state, service_name)
    if condition == "service_healthy":
        return _healthy(state, container_name, require_check=True)
    if condition == "ready":
        return _healthy(state, container_name, require_check=False)
    raise ValueError(f"unknown condition {condition!r}")


def _completed(state: ContainerState, service_name: str) -> bool:
    if state.status not in _STOPPED:
        return False
    if state.exit_code:
        message = f'service "{service_name}" didn\'t complete successfully: exit {state.exit_code}'
        raise DependencyConditionError(message)
    return True


def _healthy(state: ContainerState, container_name: str, *, require_check: bool) -> bool:
    if state.health == "unhealthy":
        raise DependencyConditionError(f"dependency failed to start: container {container_name} is unhealthy")
    if state.status in _STOPPED:
        raise DependencyConditionError(
            f"dependency failed to start: container {container_name} exited ({state.exit_code or 0})")
    if state.health == "healthy":
        return True
    if state.health is None and state.status == "running":
        if require_check:
            raise DependencyConditionError(
                f"dependency failed to start: container {container_name} has no healthcheck configured")
        return True
    return False


async def wait_for(
    backend: Backend, payload: WaitPayload, resolve: Callable[[ContainerTarget], ContainerRef], sink: EventSink,
    *, poll_interval: float,
) -> None:
    """Poll each target until it meets ``payload.condition``, within ``payload.timeout``.

    :raises DependencyConditionError: a target can no longer meet the condition.
    :raises WaitTimeoutError: the timeout passed first.
    """
    try:
        with anyio.fail_after(payload.timeout):
            for target in payload.targets:
                await _wait_one(backend, payload, target.name, resolve(target), sink, poll_interval)
    except TimeoutError:
        raise WaitTimeoutError(f"service {payload.service_name} not ready after {payload.timeout:g}s") from None


async def _wait_one(
    backend: Backend, payload: WaitPayload, container_name: str, ref: ContainerRef, sink: EventSink,
    poll_interval: float,
) -> None:
    resource_id = f"container:{container_name}"
    text = _MET_TEXT.get(payload.condition)
    if text is not None:
        sink.emit(Event(resource_id, EventStatus.WORKING, "Waiting"))
    # Polling, as v2 does: engines offer no portable "health changed" notification.
    while True:
        state = await backend.container_state(ref)
        if check(payload.condition, state, container_name, payload.service_name):
            break
        await anyio.sleep(poll_interval)
    if text is not None:
        sink.emit(Event(resource_id, EventStatus.DONE, text))


# --- services of a service-level engine (Swarm): up --wait ---------------------------------------

_FAILED_UPDATES = frozenset({"paused", "rollback_started", "rollback_paused", "rollback_completed"})


def service_converged(service: ObservedService) -> bool:
    """Whether ``service`` has all its desired tasks running (healthy where checked) for its monitor
    period, and no update in progress; False means "not yet".

    :raises DependencyConditionError: its update paused or rolled back (the engine gave up).
    """
    if service.update_state in _FAILED_UPDATES:
        errors = "; ".join(service.task_errors[:3])
        detail = f": {service.update_message}" if service.update_message else ""
        raise DependencyConditionError(
            f"service {service.name} update {service.update_state.replace('_', ' ')}{detail}"
            + (f" (task errors: {errors})" if errors else ""))
    if service.update_state == "updating":
        return False
    wanted = service.replicas if service.replicas is not None else service.desired
    if service.running < wanted or (service.replicas is None and service.desired == 0):
        return False
    return stable_in(service) == 0.0


def stable_in(service: ObservedService) -> float:
    """Seconds until its running tasks have run ``service.monitor`` seconds (0: they have, or it is not
    known): a task that exits a moment after it started has not converged (the Docker CLI's rule)."""
    if service.running_for is None:
        return 0.0
    return max(0.0, service.monitor - service.running_for)


SETTLE_READS = (0.1, 0.25, 0.5, 1.0)
"""Seconds after an event before each following read: the manager records a task's new state a
moment after its container's event, so one event is followed by a few reads until the next event."""
FALLBACK_POLL = 3.0
"""Seconds between reads while the engine's events are followed and none comes: Swarm sends no event
when a task on another node changes, so the waiter still looks, rarely."""

FINAL_READ_TIMEOUT = 10.0
"""Seconds for the last read after a wait timed out, whose tasks' errors the message gives."""


def read_delay(reads_since_event: int, *, streaming: bool, poll_interval: float) -> float:
    """How long the waiter waits for an event before it reads the services again: soon after an
    event (SETTLE_READS), FALLBACK_POLL while events come in, ``poll_interval`` without events."""
    if not streaming:
        return poll_interval
    if reads_since_event < len(SETTLE_READS):
        return SETTLE_READS[reads_since_event]
    return max(FALLBACK_POLL, poll_interval)


class _Wakeups:
    """Set by the event listener, consumed by the waiter: whether something happened since it looked."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.streaming = False

    def set(self) -> None:
        self._event.set()

    async def within(self, seconds: float) -> bool:
        """Whether an event came within ``seconds`` (or before the call, since the last one)."""
        with anyio.move_on_after(seconds):
            await self._event.wait()
        woke = self._event.is_set()
        if woke:
            self._event = anyio.Event()
        return woke


async def _listen(feed: AsyncIterator[EngineEvent], wake: _Wakeups) -> None:
    try:
        async for _ in feed:
            wake.set()
    except ComposerError:  # the stream broke: the waiter polls from now on
        pass
    wake.streaming = False
    wake.set()


async def wait_for_services(backend: ServiceBackend, payload: ServiceWaitPayload, sink: EventSink, *,
                            poll_interval: float) -> None:
    """Read the services until each has converged, within ``payload.timeout``: after each of the
    engine's events about them (``service_changes``), and every FALLBACK_POLL seconds between; every
    ``poll_interval`` seconds when the engine streams no events.

    :raises DependencyConditionError: an update paused or rolled back.
    :raises WaitTimeoutError: the timeout passed first; the message has the tasks' last errors.
    """
    pending = set(payload.service_names)
    last: dict[str, ObservedService] = {}
    for name in sorted(pending):
        sink.emit(Event(f"service:{name}", EventStatus.WORKING, "Waiting"))
    try:
        with anyio.fail_after(payload.timeout):
            async with contextlib.AsyncExitStack() as stack:
                wake = _Wakeups()
                try:  # subscribed before the first read: no change after it is missed
                    feed = await stack.enter_async_context(backend.service_changes(sorted(pending)))
                except ComposerError:
                    feed = None
                # A verdict raised inside the task group would leave it wrapped in an ExceptionGroup
                # ("unhandled errors in a TaskGroup" was all a rolled-back update said): kept, raised after.
                gave_up: DependencyConditionError | None = None
                async with anyio.create_task_group() as group:
                    if feed is not None:
                        wake.streaming = True
                        group.start_soon(_listen, feed, wake)
                    reads_since_event = len(SETTLE_READS)
                    while pending and gave_up is None:
                        settling = []
                        for service in await backend.service_status(sorted(pending)):
                            last[service.name] = service
                            try:
                                converged = service_converged(service)
                            except DependencyConditionError as exc:
                                gave_up = exc
                                break
                            if converged:
                                pending.discard(service.name)
                                sink.emit(Event(f"service:{service.name}", EventStatus.DONE, "Healthy"))
                            elif service.running and stable_in(service):
                                settling.append(stable_in(service))
                        if not pending or gave_up is not None:
                            break
                        delay = read_delay(reads_since_event, streaming=wake.streaming, poll_interval=poll_interval)
                        delay = min([delay, *settling])  # no event tells when a task has run long enough
                        reads_since_event = 0 if await wake.within(delay) else reads_since_event + 1
                    group.cancel_scope.cancel()
                if gave_up is not None:
                    raise gave_up
    except TimeoutError:
        with anyio.move_on_after(FINAL_READ_TIMEOUT):  # the message says how things stand at the deadline
            last.update((service.name, service) for service in await backend.service_status(sorted(pending)))
        details = []
        for name in sorted(pending):
            found = last.get(name)
            if found is None:
                details.append(f"{name} (not found)")
                continue
            errors = "; ".join(found.task_errors[:3])
            wanted = found.replicas if found.replicas is not None else found.desired
            running = f"{found.running}/{wanted}"
            details.append(f"{name} ({running} running{': ' + errors if errors else ''})")
        raise WaitTimeoutError(f"services not converged after {payload.timeout:g}s: {', '.join(details)}") from None
