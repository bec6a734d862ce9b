"""The optional protocol of a backend that deploys services rather than containers (Swarm).

Such an engine schedules a service's replicas itself: the planner hands it one ServiceSpec per
service (the desired replica count included) where it would hand a container backend one
ContainerSpec per replica, and the engine converges. Its tasks come back through
``Backend.observe`` as ObservedContainers (``number`` is the task's slot), so ``ps``, ``logs``
and the reconciler's comparison read them like containers; the services themselves come back
as ``ObservedState.services``, and secrets and configs as ``ObservedState.cluster_objects``.

Secrets and configs are cluster objects there, and the engine never changes one: a new content is
a new object (``ClusterObject.name`` carries a digest of it), and the services that use it roll.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

from composer.contract.backend import Backend

if TYPE_CHECKING:
    from composer.contract.backend import EngineEvent, NetworkAttachment
    from composer.contract.observed import ObservedService
    from composer.spec.models import ServiceConfig

ObjectKind = Literal["secret", "config"]


@dataclass(frozen=True, slots=True)
class ClusterObject:
    """A secret or config to create: its engine name, content and labels."""

    kind: ObjectKind
    key: str  # the Compose key ("db_password")
    name: str  # the engine's name: "<stack>_<key>-<digest>", or the external/explicit name
    data: bytes = field(repr=False)  # never printed: the plan shows the name only
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ObjectGrant:
    """A secret or config a service's tasks get as a file."""

    kind: ObjectKind
    name: str  # the engine's name of the object
    target: str  # the file: a bare name (under /run/secrets for secrets) or an absolute path
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass(frozen=True, slots=True)
class ServiceSpec:
    """Everything a service-level backend needs to deploy one service; built by the planner."""

    project_name: str
    service: ServiceConfig  # canonical, interpolated, references resolved
    service_name: str  # the engine's name: "<project>_<service>"
    image: str
    replicas: int | None  # None: a global service (one task per node)
    labels: Mapping[str, str]  # the service's labels: deploy.labels, the stack's and the config hash
    container_labels: Mapping[str, str] = field(default_factory=dict)  # the tasks' containers'
    networks: Sequence[NetworkAttachment] = ()
    volume_names: Mapping[str, str] = field(default_factory=dict)  # Compose key -> engine name
    grants: Sequence[ObjectGrant] = ()


@runtime_checkable
class ServiceBackend(Backend, Protocol):
    """A Backend whose engine runs services: it creates, updates and removes them whole."""

    def refusals(self, spec: ServiceSpec) -> Sequence[str]:
        """What of ``spec`` the engine cannot run, one line each naming the key; empty when it can."""
        ...

    async def deploy_service(self, spec: ServiceSpec) -> str:
        """Create the service, or update it to ``spec`` (a rolling update, the engine's way); its id."""
        ...

    async def remove_service(self, service_name: str) -> None:
        """Remove the service, and return once its tasks are gone; absent already is not an error."""
        ...

    async def create_cluster_object(self, item: ClusterObject) -> None:
        """Create the secret or config; one of the same name existing already is not an error."""
        ...

    async def remove_cluster_object(self, kind: ObjectKind, name: str) -> None:
        """Remove the secret or config; absent already is not an error."""
        ...

    async def service_status(self, service_names: Sequence[str]) -> Sequence[ObservedService]:
        """The named services as they are now (tasks counted), for waiting on convergence."""
        ...

    def service_changes(self, service_names: Sequence[str]) -> AbstractAsyncContextManager[AsyncIterator[EngineEvent]]:
        """The engine's events about the named services and their tasks, as they happen: subscribed
        once entered (nothing that happens after is missed), closed on exit.

        Each event is only a reason to read ``service_status`` again, and not every change has one:
        Swarm's manager reports services and nodes, and the containers of its own node only (a task
        on another node changes silently), so a waiter still polls, rarely.

        :raises UnsupportedFeatureError: the engine streams no events (the waiter polls).
        """
        ...


def is_service_backend(backend: Backend) -> bool:
    """Whether ``backend`` deploys services (the planner then plans services, not containers)."""
    return getattr(backend, "deploys_services", False) is True
