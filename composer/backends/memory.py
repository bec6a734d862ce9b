"""MemoryBackend: an engine simulated in memory, for the planner's and the library's unit tests.

It records every call, gives deterministic ids, simulates container states and health checks,
and can be told to fail a call. It is not evidence that any real backend works: it implements
the Backend contract as the planner expects it, nothing more. No I/O, no engine library.
``--dry-run`` does not use it: the engine then builds the plan from the real backend's
observation and does not execute it (composer.engine).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, BinaryIO, ClassVar

import anyio

from composer import labels
from composer.contract.backend import BuildSpec, Capability, ContainerRef, ContainerSpec, ContainerState, LogLine
from composer.contract.observed import ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume
from composer.errors import ComposerError

if TYPE_CHECKING:
    from composer.contract.backend import (
        ContainerStats,
        EngineEvent,
        ExecSpec,
        ImageSummary,
        PathStat,
        ProcessList,
        ProjectSummary,
        Streams,
    )
    from composer.events import EventSink
    from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig


class MemoryBackendError(ComposerError):
    """The failure a MemoryBackend was told to simulate."""


@dataclass
class _Container:
    container_id: str
    name: str
    project_name: str
    service_name: str
    number: int
    config_hash: str
    has_healthcheck: bool
    status: str = "created"
    health: str | None = None
    exit_code: int | None = None
    oneoff: bool = False


@dataclass
class _HealthScript:
    polls: int  # container_state calls answered "starting" before the result
    result: str  # healthy or unhealthy


@dataclass
class MemoryBackend:
    """An in-memory engine. ``calls`` lists ``(method, target)`` in call order."""

    name: ClassVar[str] = "memory"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)

    delay: float = 0.0
    """Seconds each call takes (lets tests observe parallelism)."""
    calls: list[tuple[str, str]] = field(default_factory=list)
    containers: dict[str, _Container] = field(default_factory=dict)  # by id
    networks: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (project, key)
    volumes: dict[str, tuple[str, str]] = field(default_factory=dict)
    images: set[str] = field(default_factory=set)
    active: int = 0
    peak: int = 0
    _failures: dict[tuple[str, str], Exception] = field(default_factory=dict)
    _health: dict[str, _HealthScript] = field(default_factory=dict)  # by service
    _exit_codes: dict[str, int] = field(default_factory=dict)  # by service
    _counter: int = 0

    # --- scripting ----------------------------------------------------------------------------

    @classmethod
    def from_observed(cls, observed: ObservedState, *, delay: float = 0.0) -> MemoryBackend:
        """A backend holding what ``observed`` describes (for a test that starts from a snapshot)."""
        backend = cls(delay=delay)
        for c in observed.containers:
            backend.containers[c.container_id] = _Container(
                c.container_id, c.name, observed.project_name, c.service_name, c.number, c.config_hash,
                c.health is not None, c.state, c.health, c.exit_code, c.oneoff)
        for network in observed.networks:
            backend.networks[network.name] = (observed.project_name, network.key)
        for volume in observed.volumes:
            backend.volumes[volume.name] = (observed.project_name, volume.key)
        backend.images.update(observed.images)
        return backend

    def fail(self, method: str, target: str, error: Exception | None = None) -> None:
        """Make ``method`` fail on ``target`` (a container, network, volume or image name)."""
        self._failures[(method, target)] = error or MemoryBackendError(f"{method} {target}: simulated failure")

    def script_health(self, service_name: str, *, polls: int = 1, result: str = "healthy") -> None:
        """The service's containers report ``starting`` for ``polls`` state calls, then ``result``."""
        self._health[service_name] = _HealthScript(polls, result)

    def exit_on_start(self, service_name: str, exit_code: int = 0) -> None:
        """The service's containers exit with ``exit_code`` as soon as they start."""
        self._exit_codes[service_name] = exit_code

    def call_names(self, method: str) -> list[str]:
        """The targets of every ``method`` call, in order."""
        return [target for name, target in self.calls if name == method]

    # --- the Backend protocol -----------------------------------------------------------------

    async def _call(self, method: str, target: str) -> None:
        self.calls.append((method, target))
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await anyio.sleep(self.delay)
        finally:
            self.active -= 1
        failure = self._failures.get((method, target))
        if failure is not None:
            raise failure

    def _new_id(self, kind: str) -> str:
        self._counter += 1
        return hashlib.sha256(f"{kind}-{self._counter}".encode()).hexdigest()

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = (),
        images: Sequence[str] | None = None,
    ) -> ObservedState:
        containers = tuple(
            ObservedContainer(c.container_id, c.name, c.service_name, c.number, c.config_hash, c.status, c.health,
                              c.exit_code, c.oneoff)
            for c in sorted(self.containers.values(), key=lambda c: c.name) if c.project_name == project_name)
        networks = tuple(ObservedNetwork(name, name, key) for name, (project, key) in sorted(self.networks.items())
                         if project == project_name or name in external_networks)
        volumes = tuple(ObservedVolume(name, key) for name, (project, key) in sorted(self.volumes.items())
                        if project == project_name or name in external_volumes)
        return ObservedState(project_name, containers, networks, volumes, frozenset(self.images))

    async def ensure_image(self, service: ServiceConfig, image: str, policy: str, sink: EventSink) -> None:
        await self._call("ensure_image", image)
        self.images.add(image)

    async def build_image(self, spec: BuildSpec, sink: EventSink) -> None:
        await self._call("build_image", spec.image)
        self.images.update((spec.image, *spec.tags))

    async def push_image(self, image: str, sink: EventSink) -> None:
        await self._call("push_image", image)

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                             config_hash: str | None = None) -> str:
        await self._call("create_network", network_name)
        self.networks[network_name] = (project_name, key)
        return network_name

    async def remove_network(self, network_name: str) -> None:
        await self._call("remove_network", network_name)
        self.networks.pop(network_name, None)

    async def create_volume(self, project_name: str, key: str, volume_name: str, config: VolumeConfig) -> str:
        await self._call("create_volume", volume_name)
        self.volumes[volume_name] = (project_name, key)
        return volume_name

    async def remove_volume(self, volume_name: str) -> None:
        await self._call("remove_volume", volume_name)
        self.volumes.pop(volume_name, None)

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        await self._call("create_container", spec.container_name)
        if any(c.name == spec.container_name for c in self.containers.values()):
            raise MemoryBackendError(f"container name {spec.container_name!r} is already in use")
        healthcheck = spec.service.healthcheck
        has_check = healthcheck is not None and not healthcheck.disable and healthcheck.test != ("NONE",)
        container = _Container(
            self._new_id("container"), spec.container_name, spec.project_name, spec.service.name, spec.number,
            spec.labels.get(labels.CONFIG_HASH, ""), has_check or spec.service.name in self._health)
        self.containers[container.container_id] = container
        return ContainerRef(container.container_id, container.name)

    def _get(self, ref: ContainerRef) -> _Container:
        container = self.containers.get(ref.container_id)
        if container is None:
            raise MemoryBackendError(f"no such container: {ref.name}")
        return container

    async def start_container(self, ref: ContainerRef) -> None:
        await self._call("start_container", ref.name)
        container = self._get(ref)
        container.status, container.exit_code = "running", None
        container.health = "starting" if container.has_healthcheck else None
        exit_code = self._exit_codes.get(container.service_name)
        if exit_code is not None:
            container.status, container.exit_code, container.health = "exited", exit_code, None

    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None:
        await self._call("stop_container", ref.name)
        container = self._get(ref)
        container.status, container.health = "exited", None
        container.exit_code = 0 if container.exit_code is None else container.exit_code

    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None:
        await self._call("kill_container", ref.name)
        container = self._get(ref)
        container.status, container.health, container.exit_code = "exited", None, 137

    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None:
        await self._call("remove_container", ref.name)
        self.containers.pop(self._get(ref).container_id)

    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        await self._call("rename_container", f"{ref.name} -> {new_name}")
        self._get(ref).name = new_name

    async def container_state(self, ref: ContainerRef) -> ContainerState:
        await self._call("container_state", ref.name)
        container = self._get(ref)
        script = self._health.get(container.service_name)
        if container.health == "starting":
            if script is None:
                container.health = "healthy"
            elif script.polls <= 0:
                container.health = script.result
            else:
                script.polls -= 1
        return ContainerState(container.status, container.health, container.exit_code)

    async def logs(
        self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        for ref in refs:
            self.calls.append(("logs", ref.name))
        return
        yield  # an async generator with no lines

    # --- container commands: state changes are simulated, the rest needs a real engine ---------

    def _unsupported(self, what: str) -> MemoryBackendError:
        return MemoryBackendError(f"{what} is not supported by the memory backend")

    async def pause_container(self, ref: ContainerRef) -> None:
        await self._call("pause_container", ref.name)
        self._get(ref).status = "paused"

    async def unpause_container(self, ref: ContainerRef) -> None:
        await self._call("unpause_container", ref.name)
        self._get(ref).status = "running"

    async def wait_container(self, ref: ContainerRef) -> int:
        await self._call("wait_container", ref.name)
        container = self._get(ref)
        if container.status not in ("exited", "dead"):
            raise self._unsupported("waiting for a running container")
        return container.exit_code or 0

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        raise self._unsupported("exec")

    async def attach_container(self, ref: ContainerRef, streams: Streams, *, tty: bool | None,
                               start: bool) -> int | None:
        raise self._unsupported("attaching to a container")

    async def container_top(self, ref: ContainerRef) -> ProcessList:
        raise self._unsupported("top")

    async def container_stats(self, ref: ContainerRef) -> ContainerStats:
        raise self._unsupported("stats")

    async def export_container(self, ref: ContainerRef, target: BinaryIO) -> None:
        raise self._unsupported("export")

    async def commit_container(self, ref: ContainerRef, repository: str | None, tag: str | None, *,
                               author: str | None = None, message: str | None = None,
                               changes: Sequence[str] = (), pause: bool = True) -> str:
        raise self._unsupported("commit")

    async def stat_container_path(self, ref: ContainerRef, path: str) -> PathStat | None:
        raise self._unsupported("cp")

    async def copy_to_container(self, ref: ContainerRef, directory: str, archive: bytes) -> None:
        raise self._unsupported("cp")

    async def copy_from_container(self, ref: ContainerRef, path: str) -> bytes:
        raise self._unsupported("cp")

    async def list_projects(self, *, include_stopped: bool) -> list[ProjectSummary]:
        from composer.contract.backend import ProjectSummary

        by_project: dict[str, list[str]] = {}
        for container in sorted(self.containers.values(), key=lambda c: c.name):
            if include_stopped or container.status == "running":
                by_project.setdefault(container.project_name, []).append(container.status)
        return [ProjectSummary(name, tuple(states), ()) for name, states in sorted(by_project.items())]

    async def list_images(self, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
        raise self._unsupported("images")

    async def remove_image(self, image: str) -> None:
        await self._call("remove_image", image)
        self.images.discard(image)

    def events(self, project_name: str) -> AsyncIterator[EngineEvent]:
        raise self._unsupported("events")

    async def release(self) -> None:
        return None

    async def aclose(self) -> None:
        return None
