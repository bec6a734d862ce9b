"""What exists now: a snapshot a backend takes before reconciling (``Backend.observe``), so that
the reconciler can compare the desired project with reality without calling any backend itself.

``networks`` and ``volumes`` hold the project's own (found by the project label) and the
external ones the caller asked the backend about by name (``key`` is then empty). The
reconciler matches resources by engine name. ``images`` holds references as the engine lists
them, so ``nginx`` is found as ``nginx:latest`` (``image_present``), for every backend alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from composer.contract.backend import ContainerRef


@dataclass(frozen=True, slots=True)
class PortMapping:
    """A container port, and where it is published on the host (None: exposed only)."""

    private_port: int
    protocol: str = "tcp"
    host_ip: str | None = None
    host_port: int | None = None


@dataclass(frozen=True, slots=True)
class ObservedContainer:
    container_id: str
    name: str
    service_name: str
    number: int
    config_hash: str
    state: str  # created, running, paused, restarting, exited, dead
    health: str | None = None  # starting, healthy, unhealthy; None without a healthcheck
    exit_code: int | None = None
    oneoff: bool = False
    image_id: str | None = None
    # For listings (ps): what the engine reports; empty where unknown.
    image: str = ""  # the reference it was created from
    command: str = ""  # entrypoint and command, joined by spaces
    created: float | None = None  # Unix time
    status_text: str = ""  # the engine's own words: "Up 2 seconds (healthy)", "Exited (0) 3 minutes ago"
    ports: tuple[PortMapping, ...] = ()
    volumes: tuple[str, ...] = ()  # the engine names of the volumes it mounts (``volumes SERVICE``)
    labels: tuple[tuple[str, str], ...] = ()  # sorted
    networks: tuple[str, ...] = ()  # the engine names of its networks, sorted
    mounts: tuple[str, ...] = ()  # each mount's volume name, or its source (``ps``'s Mounts)
    local_volumes: int = 0  # its mounts of volumes of the local driver
    oom_killed: bool = False  # its last run ended by the kernel's OOM killer (docker's State.OOMKilled)


@dataclass(frozen=True, slots=True)
class ObservedNetwork:
    network_id: str
    name: str  # the engine's name, e.g. "myproject_default"
    key: str  # the Compose key, e.g. "default"
    config_hash: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedVolume:
    name: str
    key: str
    config_hash: str | None = None
    # For listings (volumes): what the engine reports.
    driver: str = "local"
    labels: tuple[tuple[str, str], ...] = ()  # sorted
    mountpoint: str = ""
    scope: str = "local"


@dataclass(frozen=True, slots=True)
class ObservedService:
    """A service of a service-level engine (Swarm), with its tasks counted."""

    service_id: str
    name: str  # the engine's name: "<stack>_<service>"
    key: str  # the Compose key: "web"
    config_hash: str | None  # composer's label; None for a service another tool deployed
    replicas: int | None  # desired; None for a global service
    running: int = 0  # tasks running (and healthy, where the image or service has a health check)
    desired: int = 0  # tasks the engine wants running now (global: one per eligible node)
    update_state: str | None = None  # updating, paused, completed, rollback_started, rollback_completed...
    update_message: str = ""
    task_errors: tuple[str, ...] = ()  # the last errors of failed tasks, newest first
    running_for: float | None = None
    """Seconds the most recently started of its running tasks has been running (the engine's clock);
    None when not known (a job, or no task running)."""
    monitor: float = 5.0
    """Seconds its tasks must have run to count as stable: update_config.monitor, or 5 s (as the
    Docker CLI waits: "verify: Waiting 5 seconds to verify that tasks are stable")."""


@dataclass(frozen=True, slots=True)
class ObservedClusterObject:
    kind: str  # secret, config
    name: str
    key: str  # the Compose key it was made for ("" when not labelled)


@dataclass(frozen=True, slots=True)
class ObservedState:
    project_name: str
    containers: tuple[ObservedContainer, ...] = ()
    networks: tuple[ObservedNetwork, ...] = ()
    volumes: tuple[ObservedVolume, ...] = ()
    images: frozenset[str] = frozenset()  # image references present locally
    project_images: tuple[tuple[str, str], ...] = ()
    """(first tag, service label) of the local images labelled with the project (built by Compose)."""
    image_ids: tuple[tuple[str, str], ...] = ()
    """(reference, image id) for each of ``images`` (an id names itself), sorted."""
    services: tuple[ObservedService, ...] = ()
    """A service-level engine's services of the project (composer.contract.services)."""
    cluster_objects: tuple[ObservedClusterObject, ...] = ()
    """A service-level engine's secrets and configs of the project."""

    def image_id(self, reference: str) -> str | None:
        """The id of the local image ``reference`` names; None when there is none (or it was not
        asked about). ``nginx`` is ``nginx:latest``, as in ``images``."""
        return dict(self.image_ids).get(reference)

    def service_containers(self, service_name: str) -> list[ObservedContainer]:
        """The service's non-oneoff containers, by container number."""
        found = [c for c in self.containers if c.service_name == service_name and not c.oneoff]
        return sorted(found, key=lambda c: c.number)


def observed_ref(container: ObservedContainer) -> ContainerRef:
    """How a backend is told which container: the observed one's id and name."""
    return ContainerRef(container_id=container.container_id, name=container.name)


def image_present(image: str, images: frozenset[str]) -> bool:
    """Whether ``image`` is among local ``images``; ``nginx`` matches ``nginx:latest``."""
    from composer.image_reference import has_tag_or_digest  # here: ps and logs import this module, not this rule

    if image in images:
        return True
    return not has_tag_or_digest(image) and f"{image}:latest" in images
