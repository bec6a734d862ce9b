"""PlanBuilder: numbers operations as the reconciler adds them, and small shared helpers.

It only records decisions made by its callers (reconcile, teardown); it decides nothing
itself, awaits nothing and does no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from composer.contract.observed import observed_ref
from composer.contract.plan import ContainerPayload, ContainerTarget, Operation, OpKind, Payload, Plan

if TYPE_CHECKING:
    from composer.contract.backend import InjectedFile
    from composer.contract.observed import ObservedContainer
    from composer.spec.models import ServiceConfig

DEFAULT_GRACE_SECONDS = 10.0
_RUNNING_STATES = frozenset({"running", "restarting", "paused"})


def is_running(container: ObservedContainer) -> bool:
    """Running in the sense of ``up``: a paused or restarting container is not started again."""
    return container.state in _RUNNING_STATES


def stop_payload(target: ContainerTarget, grace: float, service: ServiceConfig | None) -> ContainerPayload:
    """A stop, after ``service``'s pre_stop hooks (none for an orphan: its service is unknown)."""
    if service is None or not service.pre_stop:
        return ContainerPayload(target, grace_seconds=grace)
    return ContainerPayload(target, grace_seconds=grace, hooks=service.pre_stop, service_name=service.name)


def start_payload(target: ContainerTarget, service: ServiceConfig | None,
                  files: tuple[InjectedFile, ...] = ()) -> ContainerPayload:
    """A start, after ``files`` are written again, then ``service``'s post_start hooks."""
    if service is None or not service.post_start:
        return ContainerPayload(target, files=files)
    return ContainerPayload(target, hooks=service.post_start, service_name=service.name, files=files)


def grace_seconds(service: ServiceConfig | None, timeout: float | None) -> float:
    """``-t/--timeout`` when given, else the service's ``stop_grace_period``, else 10 s."""
    if timeout is not None:
        return timeout
    if service is not None and service.stop_grace_period is not None:
        return service.stop_grace_period.seconds
    return DEFAULT_GRACE_SECONDS


class PlanBuilder:
    """Appends operations with dense, 1-based ids; ``memo`` lets callers share an operation."""

    def __init__(self) -> None:
        self._operations: list[Operation] = []
        self._warnings: list[str] = []
        self.memo: dict[str, int] = {}
        self._gate: tuple[int, ...] = ()
        self._gated_after = 0  # operations with a greater id wait for the gate

    def gate(self, op_ids: Iterable[int]) -> None:
        """Make every operation added from now on wait for ``op_ids``.

        An operation gets them as dependencies only when none of its own dependencies was added
        after this call: those already wait for the gate, so the edge would be redundant noise
        in the rendered plan. No ``op_ids``, no change.
        """
        self._gate = tuple(sorted(set(op_ids)))
        self._gated_after = len(self._operations)

    def add(
        self, kind: OpKind, resource_id: str, cause: str, payload: Payload, depends_on: Iterable[int] = (),
        *, best_effort: bool = False, group: str | None = None,
    ) -> int:
        op_id = len(self._operations) + 1
        deps = tuple(sorted(self._through_gate(set(depends_on))))
        self._operations.append(Operation(op_id, kind, resource_id, cause, payload, deps, best_effort, group))
        return op_id

    def _through_gate(self, deps: set[int]) -> set[int]:
        if not self._gate or any(dep > self._gated_after for dep in deps):
            return deps
        return deps | set(self._gate)

    def warn(self, message: str) -> None:
        self._warnings.append(message)

    def stop_and_remove(
        self, container: ObservedContainer, resource_id: str, cause: str, grace: float, *,
        after: Iterable[int] = (), group: str | None = None, remove_volumes: bool = False,
        service: ServiceConfig | None = None,
    ) -> tuple[int | None, int]:
        """Stop ``container`` if it runs (after ``service``'s pre_stop hooks), then remove it;
        returns (stop op or None, remove op)."""
        target = ContainerTarget(container.name, ref=observed_ref(container))
        deps = list(after)
        stop: int | None = None
        if is_running(container):
            stop = self.add(OpKind.STOP_CONTAINER, resource_id, cause, stop_payload(target, grace, service),
                            deps, group=group)
            deps = [stop]
        payload = ContainerPayload(target, remove_volumes=remove_volumes)
        return stop, self.add(OpKind.REMOVE_CONTAINER, resource_id, cause, payload, deps, group=group)

    def build(self) -> Plan:
        return Plan(tuple(self._operations), tuple(self._warnings))
