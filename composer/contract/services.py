"""The optional protocol of a backend that deploys services rather than containers (Swarm).

Such an engine schedules a service's replicas itself: the planner hands it one ServiceSpec per
service (the desired replica count included) where it would hand a container backend one
ContainerSpec per replica, and the engine converges. Its tasks come back through
``Backend.observe`` as ObservedContainers (``number`` is the task's slot), so ``ps``, ``logs``
and the reconciler's comparison read them like containers. No backend implements it yet, and the
planner does not plan for it yet; it is here so that the Swarm backend extends this contract
rather than growing its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from composer.contract.backend import Backend

if TYPE_CHECKING:
    from composer.contract.backend import NetworkAttachment
    from composer.spec.models import ServiceConfig


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Everything a service-level backend needs to deploy one service; built by the planner."""

    project_name: str
    service: ServiceConfig  # canonical, interpolated, references resolved
    service_name: str  # the engine's name: "<project>_<service>"
    image: str
    replicas: int
    labels: Mapping[str, str]  # includes the config-hash label
    networks: Sequence[NetworkAttachment] = ()
    volume_names: Mapping[str, str] = field(default_factory=dict)  # Compose key -> engine name


class ServiceBackend(Backend, Protocol):
    """A Backend whose engine runs services: it creates, updates and removes them whole."""

    async def deploy_service(self, spec: ServiceSpec) -> str:
        """Create the service, or update it to ``spec`` (a rolling update, the engine's way); its id."""
        ...

    async def remove_service(self, service_name: str) -> None:
        """Remove the service and its tasks; absent already is not an error."""
        ...
