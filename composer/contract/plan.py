"""Operations and plans: what the reconciler decided, as a value that prints and compares.

An Operation maps to one backend call (or, for waits, to polling one). It carries everything
needed to execute it (its payload) and says why it is needed (``cause``). A Plan is the
operations in id order; ``depends_on`` edges make it a DAG, which the executor runs in
parallel. This module makes no decisions, does no I/O, and imports no engine library.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.contract.backend import BuildSpec, ContainerRef, ContainerSpec, InjectedFile
    from composer.contract.services import ClusterObject, ObjectKind, ServiceSpec
    from composer.spec.models import NetworkConfig, ServiceConfig, ServiceHook, VolumeConfig


class OpKind(IntEnum):
    """The kinds of operations. Values are pinned, so that adding a kind in the middle never
    shifts the others (they appear in JSON output and logs)."""

    CREATE_NETWORK = 1
    REMOVE_NETWORK = 2
    CREATE_VOLUME = 3
    REMOVE_VOLUME = 4
    PULL_IMAGE = 10
    BUILD_IMAGE = 11
    REMOVE_IMAGE = 12  # down --rmi
    CREATE_CONTAINER = 20
    START_CONTAINER = 21
    STOP_CONTAINER = 22
    REMOVE_CONTAINER = 23
    RENAME_CONTAINER = 24
    KILL_CONTAINER = 25
    WAIT_CONDITION = 30  # a depends_on condition of a dependent service
    WAIT_READY = 31  # up --wait: every container running, and healthy when it has a health check
    WAIT_SERVICES = 32  # up --wait on a service-level engine: every service converged
    DEPLOY_SERVICE = 40  # create or update a service of a service-level engine (Swarm)
    REMOVE_SERVICE = 41
    CREATE_CLUSTER_OBJECT = 42  # a secret or config of a service-level engine
    REMOVE_CLUSTER_OBJECT = 43

    @property
    def title(self) -> str:
        """The CamelCase name used in rendered plans (``CreateContainer``)."""
        return "".join(part.capitalize() for part in self.name.split("_"))


def kind_title(value: int) -> str:
    """The CamelCase name of an operation kind, or ``Unknown(<value>)``."""
    try:
        return OpKind(value).title
    except ValueError:
        return f"Unknown({value})"


# --- payloads: everything an operation needs to be executed ---------------------------------


@dataclass(frozen=True, slots=True)
class NetworkPayload:
    project_name: str
    key: str  # the Compose key ("default")
    network_name: str  # the engine name ("myproject_default")
    config: NetworkConfig | None = None  # None for removals
    config_hash: str | None = None  # v2's, labelled on the network it creates


@dataclass(frozen=True, slots=True)
class VolumePayload:
    project_name: str
    key: str
    volume_name: str
    config: VolumeConfig | None = None


@dataclass(frozen=True, slots=True)
class ImagePayload:
    image: str  # the reference to pull, or to tag the build with
    service: ServiceConfig  # the first service (by name) that uses it
    policy: str  # the pull policy in force ("missing", "always", "build"...)
    build: BuildSpec | None = None  # BUILD_IMAGE: what to build


@dataclass(frozen=True, slots=True)
class ImageRemovalPayload:
    image: str  # the reference to remove (``down --rmi``)


@dataclass(frozen=True, slots=True)
class ContainerTarget:
    """A container an operation acts on: one that exists (``ref``), or the one an earlier
    operation of the same plan produces (``from_op``: a create or rename)."""

    name: str  # its name once the operation runs (for events)
    ref: ContainerRef | None = None
    from_op: int | None = None

    def __post_init__(self) -> None:
        if (self.ref is None) == (self.from_op is None):
            raise ValueError("a ContainerTarget has either a ref or a from_op")


@dataclass(frozen=True, slots=True)
class CreatePayload:
    spec: ContainerSpec


@dataclass(frozen=True, slots=True)
class ContainerPayload:
    """Start, stop, remove, rename or kill one container."""

    target: ContainerTarget
    grace_seconds: float = 10.0  # stop
    remove_volumes: bool = False  # remove: its anonymous volumes too
    new_name: str | None = None  # rename
    signal: str = "SIGKILL"  # kill
    # start: the service's post_start hooks, run after; stop: its pre_stop hooks, run before
    hooks: tuple[ServiceHook, ...] = ()
    service_name: str = ""  # whose hooks (v2 names the service when one fails)
    # start: the service's injected secrets and configs, written again before (v2 refreshes them
    # at each start: composer.planner.injected_files)
    files: tuple[InjectedFile, ...] = ()


@dataclass(frozen=True, slots=True)
class WaitPayload:
    """Wait until every target container meets ``condition``.

    ``condition`` is a depends_on condition (``service_started``, ``service_healthy``,
    ``service_completed_successfully``) or ``ready`` (``up --wait``: running, and healthy when
    the container has a health check). With ``required`` false a failure is only a warning.
    """

    service_name: str  # the service whose containers are waited for
    condition: str
    targets: tuple[ContainerTarget, ...]
    required: bool = True
    dependent: str | None = None  # the service that waits (WAIT_CONDITION)
    timeout: float | None = None  # seconds; None waits as long as it takes


@dataclass(frozen=True, slots=True)
class ServicePayload:
    """Deploy (create or update) one service of a service-level engine."""

    spec: ServiceSpec


@dataclass(frozen=True, slots=True)
class ServiceRemovalPayload:
    service_name: str


@dataclass(frozen=True, slots=True)
class ClusterObjectPayload:
    """Create ``item``; or, for a removal, remove the object ``kind``/``name``."""

    kind: ObjectKind
    name: str
    item: ClusterObject | None = None


@dataclass(frozen=True, slots=True)
class ServiceWaitPayload:
    """Wait until every named service has its desired tasks running (healthy where checked) and no
    update in progress; a rolled-back or paused update fails the wait."""

    service_names: tuple[str, ...]
    timeout: float | None = None


Payload = (NetworkPayload | VolumePayload | ImagePayload | CreatePayload | ContainerPayload | WaitPayload
           | ImageRemovalPayload | ServicePayload | ServiceRemovalPayload | ClusterObjectPayload
           | ServiceWaitPayload)


@dataclass(frozen=True, slots=True)
class Operation:
    """One step of a plan.

    ``resource_id`` names what it acts on (``service:web:1``, ``network:default``,
    ``volume:data``, ``image:nginx``); ``cause`` says why it is needed. ``depends_on`` lists
    the ids of operations that must succeed first. A ``best_effort`` failure is reported as a
    warning and does not stop the operations that depend on it. ``group`` ties the steps of
    one composite change together (``recreate:web:1``).
    """

    op_id: int
    kind: OpKind
    resource_id: str
    cause: str
    payload: Payload
    depends_on: tuple[int, ...] = ()
    best_effort: bool = False
    group: str | None = None

    def render(self) -> str:
        """``[1 2] -> #3 service:web:1, CreateContainer, no existing container``."""
        deps = " ".join(str(op_id) for op_id in sorted(self.depends_on))
        line = f"[{deps}] -> #{self.op_id} {self.resource_id}, {self.kind.title}, {self.cause}"
        if self.best_effort:
            line += " (best effort)"
        if self.group:
            line += f" [{self.group}]"
        return line


@dataclass(frozen=True, slots=True)
class Plan:
    """The operations of one command, in id order (ids are 1-based and dense), plus the
    warnings the reconciler found (orphan containers...), for the caller to show."""

    operations: tuple[Operation, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to do (warnings do not count)."""
        return not self.operations

    def __len__(self) -> int:
        return len(self.operations)

    def operation(self, op_id: int) -> Operation:
        return self.operations[op_id - 1]

    def render(self) -> str:
        """One line per operation, in id order, each as ``Operation.render`` writes it;
        the empty string for an empty plan. Deterministic: suitable for golden tests."""
        return "\n".join(operation.render() for operation in self.operations)

    def __str__(self) -> str:
        return self.render()

    def summary(self) -> dict[str, int]:
        """How many operations of each kind (``{"CreateContainer": 2, ...}``)."""
        counts: dict[str, int] = {}
        for operation in self.operations:
            counts[operation.kind.title] = counts.get(operation.kind.title, 0) + 1
        return counts


@dataclass(frozen=True, slots=True)
class Outcome:
    """A plan and whether it ran (False under --dry-run)."""

    plan: Plan
    executed: bool
