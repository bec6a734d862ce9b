"""NativeBackend: composer's own engine, no daemon.

Images: the content-addressed store and the registry client of composer.backends.native.image.

- ``observe`` reports the images in the store (under every spelling the planner may use: the
  fully qualified reference, Docker's short form, without ``:latest``, and the image ID), and
  the project's containers, networks and volumes from the runtime's state files, with Compose's
  com.docker.compose.* labels and config hash as the docker backend reports them.
- ``ensure_image`` pulls as Compose's ``pull_policy`` says (always, missing, never, build,
  daily, weekly, every_<duration>); ``push_image`` pushes from the store; ``list_images``
  answers for the containers it is given.
- ``build_image`` builds with composer.backends.native.build (no daemon) into the store.

Containers: composer.backends.native.lifecycle's NativeContainers and the modules beside it
(status, observation, processes, logs, volume_mounts, cp; synchronous, run in worker threads) over the
runtime (composer.backends.native.runtime) and its per-project supervisor, which owns restart
loops, healthchecks and logs so that ``up -d`` returns while everything keeps running.
Networking plugs in through composer.backends.native.network.settings (bridge networks, DNS and
published ports from composer.backends.native.network). ``cp`` goes through
composer.backends.native.cp: tar archives made and unpacked by a helper inside the container's
files (its mount namespace while it runs, else its overlay in a private one).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, ClassVar, NoReturn, TypeVar

import anyio.to_thread

from composer.backends.native.coverage import COVERAGE
from composer.backends.native.image import oci
from composer.backends.native.image.aliases import image_aliases
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.contract.backend import (
    BuildSpec,
    Capability,
    ContainerRef,
    ContainerSpec,
    ContainerState,
    ContainerStats,
    EngineEvent,
    ExecSpec,
    ImageSummary,
    LogLine,
    PathStat,
    ProcessList,
    ProjectSummary,
    Streams,
)
from composer.contract.coverage import Table
from composer.contract.observed import ObservedState
from composer.errors import ImagePullError, UnsupportedFeatureError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers
    from composer.events import Event, EventSink
    from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig

BACKEND_NAME = "native"
T = TypeVar("T")


class NativeBackend:
    """The native backend: images now, containers when the runtime lands (see the module doc)."""

    name: ClassVar[str] = BACKEND_NAME
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.BUILD, Capability.HEALTHCHECK, Capability.NAMED_VOLUMES, Capability.RESTART_POLICY})
    coverage: ClassVar[Table] = COVERAGE
    """What the backend does with each Compose key; ``engine.up`` refuses from it before it starts."""

    def __init__(self, root: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self._root = root
        self._environ = environ
        self._store: ImageStore | None = None
        self._containers: NativeContainers | None = None

    @property
    def containers(self) -> NativeContainers:
        """The container side (runtime state under COMPOSER_RUN_ROOT or /run/composer)."""
        if self._containers is None:
            import os

            if os.geteuid() != 0:
                raise UnsupportedFeatureError("the native backend needs root to run containers (rootless mode is not "
                                              "built yet)", backend_name=BACKEND_NAME, operation="containers")
            from composer.backends.native.lifecycle import NativeContainers
            from composer.backends.native.reboot import recover_if_rebooted
            from composer.backends.native.runtime.api import default_cgroup_parent, default_run_root

            run_root, parent = default_run_root(self._environ), default_cgroup_parent(self._environ)
            # the first command after a reboot restores the containers and restarts Docker's (reboot.py)
            restored = recover_if_rebooted(run_root, self.store.root, parent)
            self._containers = NativeContainers(self.store, run_root, parent)
            for line in restored:
                self._containers.warn(line)
        return self._containers

    async def _run(self, call: Callable[[], T]) -> T:
        """``call()`` in a worker thread (the runtime blocks: files, pidfds, the supervisor's socket)."""
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)

    @property
    def store(self) -> ImageStore:
        """The image store (COMPOSER_ROOT), created on first use."""
        if self._store is None:
            self._store = ImageStore.open(self._root, environ=self._environ)
        return self._store

    # --- observation ----------------------------------------------------------------------

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = (),
        images: Sequence[str] | None = None,
    ) -> ObservedState:  # the store's index is at hand: every local image, whatever ``images`` asks
        from composer.backends.native import observation

        def observe() -> ObservedState:
            containers = self.containers  # refuses a caller who is not root, before the store
            ids = {(alias, record.config) for record in self.store.images() for alias in image_aliases(record)}
            # every image asked for (``down --rmi``): which of them the project built, too
            built = observation.built_images(self.store, project_name) if images is None else ()
            return observation.observe(containers, project_name, external_networks, external_volumes,
                                       tuple(sorted(ids)), built)

        return await self._run(observe)

    # --- images ---------------------------------------------------------------------------

    async def ensure_image(self, service: ServiceConfig, image: str, policy: str, sink: EventSink) -> None:
        """Pull ``image`` when ``policy`` asks for it (``build``: the planner builds instead).

        :raises ImageNotFoundError: missing under ``never``, or unknown to the registry.
        :raises ImagePullError: the pull failed (unreachable registry, digest mismatch...).
        """
        from composer.backends.native.image.pull import pull

        if (policy or "missing") == "build":
            return
        try:
            platform = oci.Platform.parse(service.platform) if service.platform else None
        except ValueError as exc:
            raise ImagePullError(f"service {service.name}: {exc}", backend_name=BACKEND_NAME,
                                 operation="pull") from None
        await pull(image, self.store, _LayerEvents(sink), policy, platform=platform)

    async def build_image(self, spec: BuildSpec, sink: EventSink) -> None:
        """Build with the native builder (composer.backends.native.build) into the store; base
        images are pulled as ``ensure_image`` pulls them (``build.pull``: always)."""
        from composer.backends.native.build.builder import Builder
        from composer.backends.native.image.pull import pull

        async def pull_base(image: str) -> ImageRecord:
            return await pull(image, self.store, _LayerEvents(sink), "always" if spec.pull else "missing")

        def open_store() -> ImageStore:
            return self.store

        store = await self._run(open_store)
        with contextlib.ExitStack() as stack:
            await self._run(lambda: stack.enter_context(store.session()))  # gc waits for the build
            await Builder(store, spec, pull_base, lambda: self.containers.runtime, sink).build()

    async def push_image(self, image: str, sink: EventSink) -> None:
        from composer.backends.native.image.push import push

        await push(image, self.store, sink)

    async def list_images(self, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
        if not refs:
            return []
        from composer.backends.native import observation

        return await self._run(lambda: observation.list_images(self.containers, refs))

    async def release(self) -> None:
        if self._containers is not None:
            await anyio.to_thread.run_sync(self._containers.release)

    async def aclose(self) -> None:
        if self._containers is not None:
            await anyio.to_thread.run_sync(self._containers.release)

    # --- containers (composer.backends.native.lifecycle over the runtime and its supervisor) ---

    def _unavailable(self, what: str) -> NoReturn:
        raise UnsupportedFeatureError(f"{what} is not supported by the native backend yet (use --backend docker)",
                                      backend_name=BACKEND_NAME, operation=what)

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                             config_hash: str | None = None) -> str:
        return await self._run(lambda: self.containers.create_network(project_name, key, network_name, config,
                                                                      config_hash=config_hash))

    async def remove_network(self, network_name: str) -> None:
        await self._run(lambda: self.containers.remove_network(network_name))

    async def create_volume(self, project_name: str, key: str, volume_name: str, config: VolumeConfig) -> str:
        from composer.backends.native import volume_mounts

        return await self._run(lambda: volume_mounts.create_volume(self.containers, project_name, key, volume_name,
                                                                   config))

    async def remove_volume(self, volume_name: str) -> None:
        from composer.backends.native import volume_mounts

        await self._run(lambda: volume_mounts.remove_volume(self.containers, volume_name))

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        return await self._run(lambda: self.containers.create(spec))

    async def start_container(self, ref: ContainerRef) -> None:
        await self._run(lambda: self.containers.start(ref))

    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None:
        await self._run(lambda: self.containers.stop(ref, grace_seconds))

    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None:
        await self._run(lambda: self.containers.kill(ref, signal))

    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None:
        await self._run(lambda: self.containers.remove(ref, remove_volumes))

    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        await self._run(lambda: self.containers.rename(ref, new_name))

    async def container_state(self, ref: ContainerRef) -> ContainerState:
        return await self._run(lambda: self.containers.container_state(ref))

    def logs(self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None,
             since: float | None = None, until: float | None = None) -> AsyncIterator[LogLine]:
        """The containers' JSON-lines logs (``tail`` last lines of each first), interleaved as
        they come; with ``follow`` until every container has stopped (or ``until`` has passed).
        ``since``/``until`` (Unix times) keep the lines written between them."""
        return self._logs(refs, follow=follow, tail=tail, since=since, until=until)

    async def _logs(self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None,
                    since: float | None = None, until: float | None = None) -> AsyncGenerator[LogLine, None]:
        import time

        containers = self.containers
        from composer.backends.native import logs

        targets = await self._run(lambda: logs.log_targets(containers, refs))
        await self._run(containers.release)
        tails: list[int | None] = [tail] * len(targets)
        live = list(range(len(targets)))

        def step(index: int) -> tuple[bool, list[LogLine]]:
            # past ``until`` nothing newer can be shown: one last read, then stop (dockerd's follow too)
            running = follow and (until is None or time.time() <= until) and \
                logs.still_logging(containers, targets[index])
            lines = logs.read_lines(targets[index], tails[index])
            tails[index] = None
            return running, [line for line in lines if logs.within(line, since, until)]

        while live:
            progressed = False
            for index in list(live):
                running, lines = await self._run(partial(step, index))
                for line in lines:
                    yield line
                progressed = progressed or bool(lines)
                if not running:
                    live.remove(index)
            if not follow:
                return
            if not progressed:
                await anyio.sleep(0.1)

    async def pause_container(self, ref: ContainerRef) -> None:
        await self._run(lambda: self.containers.pause(ref, True))

    async def unpause_container(self, ref: ContainerRef) -> None:
        await self._run(lambda: self.containers.pause(ref, False))

    async def wait_container(self, ref: ContainerRef) -> int:
        await self._run(self.containers.release)
        return await self._run(lambda: self.containers.wait(ref))

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        await self._run(self.containers.release)
        from composer.backends.native import processes

        return await self._run(lambda: processes.exec_in_container(self.containers, ref, spec, streams))

    async def attach_container(self, ref: ContainerRef, streams: Streams, *, tty: bool | None,
                               start: bool) -> int | None:
        from composer.backends.native import processes

        return await self._run(lambda: processes.attach_container(self.containers, ref, streams, start))

    async def container_top(self, ref: ContainerRef) -> ProcessList:
        from composer.backends.native import processes

        return await self._run(lambda: processes.container_top(self.containers, ref))

    async def export_container(self, ref: ContainerRef, target: BinaryIO) -> None:
        self._unavailable("export")

    async def commit_container(self, ref: ContainerRef, repository: str | None, tag: str | None, *,
                               author: str | None = None, message: str | None = None,
                               changes: Sequence[str] = (), pause: bool = True) -> str:
        self._unavailable("commit")

    async def container_stats(self, ref: ContainerRef) -> ContainerStats:
        from composer.backends.native import stats

        return await self._run(lambda: stats.container_stats(self.containers, ref))

    async def stat_container_path(self, ref: ContainerRef, path: str) -> PathStat | None:
        from composer.backends.native import cp

        return await self._run(lambda: cp.stat_path(self.containers, ref, path))

    async def copy_to_container(self, ref: ContainerRef, directory: str, archive: bytes) -> None:
        from composer.backends.native import cp

        await self._run(lambda: cp.copy_to(self.containers, ref, directory, archive))

    async def copy_from_container(self, ref: ContainerRef, path: str) -> bytes:
        from composer.backends.native import cp

        return await self._run(lambda: cp.copy_from(self.containers, ref, path))

    async def list_projects(self, *, include_stopped: bool) -> list[ProjectSummary]:
        from composer.backends.native import observation

        return await self._run(lambda: observation.list_projects(self.containers, include_stopped))

    async def remove_image(self, image: str) -> None:
        from composer.backends.native import system

        containers = self.containers
        await self._run(lambda: system.remove_image(containers, image))

    def events(self, project_name: str) -> AsyncIterator[EngineEvent]:
        """The project's container events as they are recorded (runtime.eventlog), until cancelled."""
        return self._events(project_name)

    async def _events(self, project_name: str) -> AsyncGenerator[EngineEvent, None]:
        from composer.backends.native.runtime import eventlog
        from composer.backends.native.runtime.api import project_dir

        folder = project_dir(self.containers.run_root, project_name)
        follower = eventlog.Follower(folder)
        try:
            while True:
                found = await self._run(follower.poll)
                for item in found:
                    attributes = item.get("attributes")
                    yield EngineEvent(int(item.get("time") or 0), str(item.get("type") or "container"),
                                      str(item.get("action") or ""), str(item.get("id") or ""),
                                      {str(k): str(v) for k, v in attributes.items()}
                                      if isinstance(attributes, dict) else {})
                if not found:
                    await anyio.sleep(0.1)
        finally:
            follower.close()


class _LayerEvents:
    """A sink passing on a pull's layer events only: the image's own Pulling / Pulled / Error
    are the executor's, which runs every pull (else each shows twice)."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def emit(self, event: Event) -> None:
        if event.parent_id is not None or not event.resource_id.startswith("image:"):
            self.sink.emit(event)
