"""DockerBackend: the Backend protocol over docker-py's low-level APIClient.

Thin by design: arguments come from convert.py, snapshots from observe.py, and every engine
exception is translated by errors.py. docker-py blocks, so each call runs in a worker thread
through ``anyio.to_thread.run_sync(..., limiter=self._limiter)``; followed log streams, which
may last for hours, get threads of their own instead of holding the limiter.
"""

from __future__ import annotations

import errno
import math
import os
import re
import socket
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator, Mapping, Sequence
from contextlib import aclosing
from datetime import datetime
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread

from composer import labels
from composer.backends.docker import convert, observe
from composer.backends.docker.client import MAX_CONNECTIONS, Endpoint, connect, resolve_endpoint
from composer.backends.docker.coverage import COVERAGE
from composer.backends.docker.errors import BACKEND_NAME, translate, translated
from composer.contract.backend import (
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
    injection_archive,
)
from composer.contract.coverage import Table
from composer.errors import ComposerError, ImageNotFoundError, ImagePullError, NotFoundError, UnsupportedFeatureError
from composer.events import Event, EventSink, EventStatus
from composer.image_reference import with_latest

if TYPE_CHECKING:
    from composer.contract.backend import BuildSpec
    from composer.contract.observed import ObservedState
    from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig

STARTS_AT_ONCE = 12
"""Container starts sent to the engine at once. A start is CPU-bound in the engine (shim, runc, the
embedded DNS's iptables): 50 at once took ~5% longer than 12 at once here (2 cores, dockerd 20.10)."""
KILLS_AT_ONCE = 8
"""Stops without a grace period (and forced removals) sent to the engine at once. Such a stop is the
engine's clean-up alone: it moves the container's interface back to the host and deletes it under the
kernel's one rtnl lock, with an RCU barrier inside it. 50 at once contend for that lock so badly that
`down -t 0` of 50 containers took ~3.7 s, 8 at once ~2.7 s. Stops with a grace period are not limited:
a container may take all of it, and v2 waits for all of them at once."""

_INTERVALS = {"daily": 86_400.0, "weekly": 7 * 86_400.0}
_DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 7 * 86_400.0}


def refresh_interval(policy: str) -> float | None:
    """Seconds after which ``daily``, ``weekly`` or ``every_<duration>`` pulls again; None otherwise."""
    if policy in _INTERVALS:
        return _INTERVALS[policy]
    if not policy.startswith("every_"):
        return None
    total = 0.0
    for amount, unit in re.findall(r"(\d+)([smhdw])", policy.removeprefix("every_")):
        total += int(amount) * _DURATION_UNITS[unit]
    return total or None


def _image_age_seconds(image: Mapping[str, Any]) -> float:
    stamp = (image.get("Metadata") or {}).get("LastTagTime") or image.get("Created") or ""
    try:
        moment = datetime.fromisoformat(str(stamp)[:26].rstrip("Z") + "+00:00")
    except ValueError:
        return float("inf")
    return time.time() - moment.timestamp()


class DockerBackend:
    """Runs single operations on a Docker Engine; decides nothing."""

    name: ClassVar[str] = "docker"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    coverage: ClassVar[Table] = COVERAGE
    """What the backend does with each Compose key; ``engine.up`` refuses from it before it starts."""

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        endpoint: Endpoint | None = None,
        max_threads: int = MAX_CONNECTIONS,
        client: Any = None,
    ) -> None:
        self.endpoint = endpoint or resolve_endpoint(os.environ if environ is None else environ)
        self._limiter = anyio.CapacityLimiter(max_threads)
        self._start_limiter = anyio.CapacityLimiter(min(max_threads, STARTS_AT_ONCE))
        self._kill_limiter = anyio.CapacityLimiter(min(max_threads, KILLS_AT_ONCE))
        self._removal_limiter = anyio.CapacityLimiter(min(max_threads, KILLS_AT_ONCE))
        self._client: Any = client
        self._connect_lock = threading.Lock()

    # --- plumbing -------------------------------------------------------------------------

    def _api(self) -> Any:
        """The docker-py client, connected on first use (in a worker thread: it blocks)."""
        with self._connect_lock:
            if self._client is None:
                self._client = connect(self.endpoint)
            return self._client

    async def _run(
        self, operation: str, call: Callable[[Any], Any], *, limiter: anyio.CapacityLimiter | None = None,
    ) -> Any:
        """``call(api)`` in a worker thread (one of ``limiter``'s, by default any), with engine errors
        translated."""

        def run() -> Any:
            with translated(operation, host=self.endpoint.host):
                return call(self._api())

        return await anyio.to_thread.run_sync(run, limiter=limiter or self._limiter)

    # --- observation ----------------------------------------------------------------------

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = (),
        images: Sequence[str] | None = None,
    ) -> ObservedState:
        """The project's resources by label, local images (all, or those of ``images`` that exist, as
        v2 inspects its services' images one by one), and the named external resources that exist."""
        project_filter = {"label": f"{labels.PROJECT}={project_name}"}
        results: dict[str, Any] = {}

        async def fetch(key: str, call: Callable[[Any], Any]) -> None:
            results[key] = await self._run("observe", call)

        await self._run("observe", lambda api: None)  # connect first: an unreachable engine is one error
        async with anyio.create_task_group() as group:
            group.start_soon(fetch, "containers", lambda api: api.containers(all=True, filters=project_filter))
            group.start_soon(fetch, "networks", lambda api: api.networks(filters=project_filter))
            group.start_soon(fetch, "volumes", lambda api: api.volumes(filters=project_filter))
            if images is None:
                group.start_soon(fetch, "images", lambda api: api.images())
            elif images:
                group.start_soon(fetch, "images", lambda api: _images_named(api, images))
            if external_networks:
                group.start_soon(fetch, "external_networks", lambda api: _networks_named(api, external_networks))
            if external_volumes:
                group.start_soon(fetch, "external_volumes", lambda api: _volumes_named(api, external_volumes))
        return observe.observed_state(
            project_name,
            results["containers"] or [],
            results["networks"] or [],
            (results["volumes"] or {}).get("Volumes") or [],
            results.get("images") or [],
            external_networks=results.get("external_networks", []),
            external_volumes=results.get("external_volumes", []),
        )

    async def _inspect(self, ref: ContainerRef) -> Mapping[str, Any]:
        found: Mapping[str, Any] = await self._run("inspect", lambda api: api.inspect_container(ref.container_id))
        return found

    async def container_state(self, ref: ContainerRef) -> ContainerState:
        return observe.container_state(await self._inspect(ref))

    # --- images ---------------------------------------------------------------------------

    async def _local_image(self, image: str) -> Mapping[str, Any] | None:
        try:
            found: Mapping[str, Any] = await self._run("inspect image", lambda api: api.inspect_image(image))
        except NotFoundError:
            return None
        return found

    async def ensure_image(self, service: ServiceConfig, image: str, policy: str, sink: EventSink) -> None:
        """Pull ``image`` when ``policy`` (v2's pull_policy; None/``missing`` by default) asks for it.

        :raises ImageNotFoundError: missing under ``never``, or unknown to the registry.
        :raises ImagePullError: the pull failed for another reason.
        """
        policy = policy or "missing"
        if policy == "build":
            return  # the planner builds it
        if policy not in ("always", "refresh"):
            local = await self._local_image(image)
            interval = refresh_interval(policy)
            if local is not None and (interval is None or _image_age_seconds(local) < interval):
                return
            if local is None and policy == "never":
                raise ImageNotFoundError(f"No such image: {image}", backend_name=BACKEND_NAME, operation="pull",
                                         hint=f"pull_policy of service {service.name} is never")
        await self.pull_image(image, sink, platform=service.platform)

    async def pull_image(self, image: str, sink: EventSink, *, platform: str | None = None) -> None:
        """Pull with one event per layer progress message, grouped under ``image:<image>``; the
        image's own Pulling / Pulled / Error are the executor's (it runs every pull)."""
        resource_id = f"image:{image}"
        token = anyio.lowlevel.current_token()

        def emit(event: Event) -> None:
            anyio.from_thread.run_sync(sink.emit, event, token=token)

        def pull(api: Any) -> None:
            import docker.utils

            repository, tag = docker.utils.parse_repository_tag(image)
            for message in api.pull(repository, tag=tag or "latest", stream=True, decode=True, platform=platform):
                _pull_message(message, resource_id, emit)

        await self._run("pull", pull)

    def _emitter(self, sink: EventSink) -> Callable[[Event], None]:
        """``sink.emit`` for a worker thread: each event is delivered on the event loop."""
        token = anyio.lowlevel.current_token()

        def emit(event: Event) -> None:
            anyio.from_thread.run_sync(sink.emit, event, token=token)

        return emit

    async def build_image(self, spec: BuildSpec, sink: EventSink) -> None:
        """Build through the engine's classic builder, output lines as events under
        ``image:<image>``; a Dockerfile with BuildKit's syntax (or build secrets) is built by the
        native builder and loaded into the engine (composer.backends.docker.native_build)."""
        from composer.backends.docker import images, native_build

        if await anyio.to_thread.run_sync(native_build.buildkit_features, spec):
            await native_build.build(self._run, spec, sink)
            return
        emit = self._emitter(sink)
        await self._run("build", lambda api: images.build(api, spec, emit))

    async def push_image(self, image: str, sink: EventSink) -> None:
        """Push with one event per layer message, grouped under ``image:<image>``."""
        from composer.backends.docker import images

        resource_id = f"image:{image}"
        sink.emit(Event(resource_id, EventStatus.WORKING, "Pushing"))
        emit = self._emitter(sink)
        try:
            await self._run("push", lambda api: images.push(api, image, emit))
        except ComposerError as exc:
            sink.emit(Event(resource_id, EventStatus.ERROR, "Error", details=str(exc)))
            raise
        sink.emit(Event(resource_id, EventStatus.DONE, "Pushed"))

    # --- networks and volumes ----------------------------------------------------------------

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                             config_hash: str | None = None) -> str:
        kwargs = convert.network_kwargs(project_name, key, network_name, config, config_hash=config_hash)
        created = await self._run("create network", lambda api: api.create_network(**kwargs))
        return str(created["Id"])

    async def remove_network(self, network_name: str) -> None:
        await self._run("remove network", lambda api: api.remove_network(network_name))

    async def create_volume(self, project_name: str, key: str, volume_name: str, config: VolumeConfig) -> str:
        kwargs = convert.volume_kwargs(project_name, key, volume_name, config)
        created = await self._run("create volume", lambda api: api.create_volume(**kwargs))
        return str(created["Name"])

    async def remove_volume(self, volume_name: str) -> None:
        await self._run("remove volume", lambda api: api.remove_volume(volume_name))

    # --- containers ---------------------------------------------------------------------------

    async def _inherited_volumes(self, spec: ContainerSpec) -> dict[str, str]:
        """Target -> anonymous volume of the replaced container, for the anonymous volumes of spec."""
        if spec.replaces is None:
            return {}
        targets = {v.target for v in spec.service.volumes if v.type == "volume" and not v.source}
        if not targets:
            return {}
        try:
            old = await self._inspect(spec.replaces)
        except NotFoundError:
            return {}
        return {m["Destination"]: m["Name"] for m in old.get("Mounts") or []
                if m.get("Type") == "volume" and m.get("Destination") in targets and m.get("Name")}

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        args = convert.convert(spec, inherited_volumes=await self._inherited_volumes(spec))
        start_interval = convert.start_interval(spec.service)
        container_id = await self._run("create", lambda api: _create(api, args, start_interval))
        ref = ContainerRef(container_id, args.name)
        if spec.service.use_api_socket:  # the socket is bound already (composer.planner.api_socket)
            from composer.backends.docker.api_socket import credentials_file

            archive = injection_archive([credentials_file()])
            await self._run("create", lambda api: api.put_archive(container_id, "/", archive))
        return ref

    async def start_container(self, ref: ContainerRef) -> None:
        await self._run("start", lambda api: api.start(ref.container_id), limiter=self._start_limiter)

    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None:
        timeout = max(0, round(grace_seconds))
        await self._run("stop", lambda api: api.stop(ref.container_id, timeout=timeout),
                        limiter=None if timeout else self._kill_limiter)

    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None:
        await self._run("kill", lambda api: api.kill(ref.container_id, signal=signal))

    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None:
        # A running container's removal is a stop without grace; a stopped one's, in `down`, then
        # waits for none of the stops.
        await self._run("remove", lambda api: api.remove_container(ref.container_id, v=remove_volumes, force=True),
                        limiter=self._removal_limiter)

    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        await self._run("rename", lambda api: api.rename(ref.container_id, new_name))

    # --- container commands -----------------------------------------------------------------------

    async def pause_container(self, ref: ContainerRef) -> None:
        await self._run("pause", lambda api: api.pause(ref.container_id))

    async def unpause_container(self, ref: ContainerRef) -> None:
        await self._run("unpause", lambda api: api.unpause(ref.container_id))

    async def _run_long(self, operation: str, call: Callable[[Any], Any]) -> Any:
        """Like _run, for calls that last as long as a container does: no limiter slot held."""
        api = await anyio.to_thread.run_sync(self._api, limiter=self._limiter)

        def run() -> Any:
            with translated(operation, host=self.endpoint.host):
                return call(api)

        return await anyio.to_thread.run_sync(run, abandon_on_cancel=True)

    async def wait_container(self, ref: ContainerRef) -> int:
        result = await self._run_long("wait", lambda api: api.wait(ref.container_id, timeout=None))
        return int(result.get("StatusCode", 0))

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        from composer.backends.docker import container_commands

        code: int | None = await self._run_long(
            "exec", lambda api: container_commands.exec_in_container(api, ref, spec, streams))
        return code

    async def attach_container(self, ref: ContainerRef, streams: Streams, *, tty: bool | None,
                               start: bool) -> int | None:
        from composer.backends.docker import container_commands

        code: int | None = await self._run_long(
            "attach", lambda api: container_commands.attach_container(api, ref, streams, tty=tty, start=start))
        return code

    async def container_top(self, ref: ContainerRef) -> ProcessList:
        from composer.backends.docker import container_commands

        found: ProcessList = await self._run("top", lambda api: container_commands.container_top(api, ref))
        return found

    async def export_container(self, ref: ContainerRef, target: BinaryIO) -> None:
        def export(api: Any) -> None:
            for chunk in api.export(ref.container_id):
                target.write(chunk)

        await self._run("export", export)

    async def commit_container(self, ref: ContainerRef, repository: str | None, tag: str | None, *,
                               author: str | None = None, message: str | None = None,
                               changes: Sequence[str] = (), pause: bool = True) -> str:
        found = await self._run("commit", lambda api: api.commit(
            ref.container_id, repository=repository, tag=tag, message=message, author=author, pause=pause,
            changes=list(changes) or None))
        return str((found or {}).get("Id") or "")

    async def container_stats(self, ref: ContainerRef) -> ContainerStats:
        from composer.backends.docker import container_commands

        found: ContainerStats = await self._run("stats", lambda api: container_commands.container_stats(api, ref))
        return found

    async def stat_container_path(self, ref: ContainerRef, path: str) -> PathStat | None:
        from composer.backends.docker import container_commands

        found: PathStat | None = await self._run("stat",
                                                 lambda api: container_commands.stat_container_path(api, ref, path))
        return found

    async def copy_to_container(self, ref: ContainerRef, directory: str, archive: bytes) -> None:
        await self._run("copy", lambda api: api.put_archive(ref.container_id, directory, archive))

    async def copy_from_container(self, ref: ContainerRef, path: str) -> bytes:
        from composer.backends.docker import container_commands

        data: bytes = await self._run("copy", lambda api: container_commands.copy_from_container(api, ref, path))
        return data

    async def list_projects(self, *, include_stopped: bool) -> list[ProjectSummary]:
        from composer.backends.docker import container_commands

        found: list[ProjectSummary] = await self._run(
            "list projects", lambda api: container_commands.list_projects(api, include_stopped=include_stopped))
        return found

    async def list_images(self, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
        from composer.backends.docker import container_commands

        found: list[ImageSummary] = await self._run("list images",
                                                    lambda api: container_commands.list_images(api, refs))
        return found

    # --- logs ---------------------------------------------------------------------------------

    def logs(
        self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        """The lines of ``refs``' logs, interleaved as they come; stdout and stderr kept apart."""
        return self._logs(refs, follow=follow, tail=tail, window=_log_window(since, until))

    async def _logs(
        self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None, window: Mapping[str, str] | None = None,
    ) -> AsyncGenerator[LogLine, None]:
        targets = [await self._inspect(ref) for ref in refs]
        pumps = self._pumped(targets, lambda api, item, send, token: _LogPump(api, item, follow, tail, send, token,
                                                                             window))
        async with aclosing(pumps) as lines:
            async for line in lines:
                yield line

    async def _pumped(self, items: Sequence[Any], make: Callable[[Any, Any, Any, Any], _LogPump],
                      ) -> AsyncGenerator[LogLine, None]:
        """The lines of one log pump per item (``make(api, item, send, token)``), interleaved as
        they come; the pumps are cancelled when the reader stops."""
        api = await anyio.to_thread.run_sync(self._api, limiter=self._limiter)
        send, receive = anyio.create_memory_object_stream[LogLine | BaseException | None](max_buffer_size=256)
        token = anyio.lowlevel.current_token()
        pumps = [make(api, item, send.clone(), token) for item in items]
        send.close()
        for pump in pumps:
            pump.start()
        try:
            async with receive:
                remaining = len(pumps)
                while remaining:
                    item = await receive.receive()
                    if item is None:
                        remaining -= 1
                    elif isinstance(item, BaseException):
                        raise item
                    else:
                        yield item
        finally:
            for pump in pumps:
                pump.cancel()

    # --- images and events ---------------------------------------------------------------------

    async def remove_image(self, image: str) -> None:
        try:
            await self._run("remove image", lambda api: api.remove_image(image))
        except NotFoundError:
            return

    def events(self, project_name: str) -> AsyncGenerator[EngineEvent, None]:
        """The engine's events about the project's resources (by label), until cancelled."""
        return self._events(project_name)

    def _event_filters(self, project_name: str) -> dict[str, str]:
        """The engine's filter for the project's events: its objects' label."""
        return {"label": f"{labels.PROJECT}={project_name}"}

    async def _events(self, project_name: str) -> AsyncGenerator[EngineEvent, None]:
        filters = self._event_filters(project_name)
        stream = await self._open_events(filters)
        async with aclosing(self._pumped_events(stream, f"events-{project_name}")) as events:
            async for event in events:
                yield event

    async def _open_events(self, filters: Mapping[str, Any]) -> _EventStream:
        """The engine's event stream with ``filters``, subscribed when this returns."""
        stream = await self._run("events", lambda api: api.events(filters=dict(filters), decode=True))
        return _EventStream(stream)

    async def _pumped_events(self, stream: _EventStream, thread_name: str) -> AsyncGenerator[EngineEvent, None]:
        """The events of an open stream (``_open_events``), read by a thread; the stream is closed
        when the reader stops."""
        send, receive = anyio.create_memory_object_stream[EngineEvent | BaseException | None](max_buffer_size=256)
        token = anyio.lowlevel.current_token()

        def pump() -> None:
            try:
                with translated("events", host=self.endpoint.host):
                    for message in stream:
                        anyio.from_thread.run(send.send, _engine_event(message), token=token)
            except Exception as exc:  # handed to the reader (dropped when the reader has gone)
                item: EngineEvent | BaseException | None = exc
            else:
                item = None
            try:
                anyio.from_thread.run(send.send, item, token=token)
            except Exception:
                pass

        thread = threading.Thread(target=pump, name=thread_name, daemon=True)
        thread.start()
        try:
            async with receive:
                while True:
                    item = await receive.receive()
                    if item is None:
                        return
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            stream.close()  # ends the blocked read: the pump thread finishes on its own
            send.close()  # closed here, in the loop's thread (the pump only sends through it)

    async def release(self) -> None:
        return None  # dockerd serialises its own changes: nothing is held between calls

    async def aclose(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            await anyio.to_thread.run_sync(client.close, limiter=self._limiter)


class _EventStream:
    """docker-py's event stream, closed at most once: its ``close`` shuts the socket down again
    while the response is not yet marked closed (EBADF when the reader thread has not yet seen
    the end of the stream; CI's swarm wait failed on that race)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self._closed = False

    def __iter__(self) -> Iterator[Any]:
        return iter(self._stream)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._stream.close()
        except OSError as exc:  # the pump saw the end and closed the socket between docker-py's check and shutdown
            if exc.errno != errno.EBADF:
                raise


def _images_named(api: Any, names: Sequence[str]) -> list[Mapping[str, Any]]:
    """The inspect documents of the named images that exist locally, each also tagged with the
    name it was found by (``docker.io/library/busybox`` finds ``busybox:latest``)."""
    from docker.errors import ImageNotFound

    found: list[Mapping[str, Any]] = []
    for name in dict.fromkeys(names):
        try:
            document = api.inspect_image(name)
        except ImageNotFound:
            continue
        tags = list(document.get("RepoTags") or ())
        found.append({**document, "RepoTags": [*tags, with_latest(name)]})
    return found


def _log_window(since: float | None, until: float | None) -> dict[str, str] | None:
    """The logs endpoint's ``since``/``until`` parameters, to the microsecond a float holds, rounded
    outwards: a timestamp copied from ``logs -t`` keeps its own line."""
    window = {}
    for key, value, rounding in (("since", since, math.floor), ("until", until, math.ceil)):
        if value is not None:
            micros = rounding(value * 1_000_000)
            window[key] = f"{micros // 1_000_000}.{micros % 1_000_000:06d}"
    return window or None


def _engine_event(message: Mapping[str, Any]) -> EngineEvent:
    """One decoded message of the engine's event stream."""
    actor = message.get("Actor") or {}
    time_ns = int(message.get("timeNano") or 0) or int(message.get("time") or 0) * 1_000_000_000
    action = str(message.get("Action") or message.get("status") or "")
    return EngineEvent(time_ns, str(message.get("Type") or ""), action, str(actor.get("ID") or message.get("id") or ""),
                       {str(k): str(v) for k, v in (actor.get("Attributes") or {}).items()})


def _networks_named(api: Any, names: Sequence[str]) -> list[Any]:
    """The networks with exactly these names (the engine's name filter matches substrings)."""
    wanted = set(names)
    return [item for item in api.networks(names=sorted(wanted)) or [] if item.get("Name") in wanted]


def _volumes_named(api: Any, names: Sequence[str]) -> list[Any]:
    import docker.errors

    found = []
    for name in names:
        try:
            found.append(api.inspect_volume(name))
        except docker.errors.NotFound:
            continue
    return found


def _pull_message(message: Mapping[str, Any], resource_id: str, emit: Callable[[Event], None]) -> None:
    """One decoded pull-stream message -> an event; an ``error`` message raises."""
    if message.get("error"):
        text = " ".join(str(message["error"]).split())
        lowered = text.lower()
        missing = "not found" in lowered or "pull access denied" in lowered or "manifest unknown" in lowered
        cls = ImageNotFoundError if missing else ImagePullError
        raise cls(f"Error response from daemon: {text}", backend_name=BACKEND_NAME, operation="pull")
    layer_id = message.get("id")
    status = str(message.get("status") or "")
    if not layer_id or status.startswith(("Pulling from", "Digest:", "Status:")):
        return
    detail = message.get("progressDetail") or {}
    emit(Event(f"layer:{layer_id}", EventStatus.DONE if status in ("Pull complete", "Already exists")
               else EventStatus.WORKING, status, parent_id=resource_id,
               current=detail.get("current"), total=detail.get("total")))


# Fields an engine older than the API version that brought them drops without a word: composer
# refuses them in one line rather than let it (v2 refuses start_interval and per-network MAC
# addresses alike, and drops annotations). Mount.VolumeOptions.Subpath: an older engine would
# mount the whole volume.
SUBPATH_API = "1.45"
NEEDS_API = {"1.43": "24.0", "1.44": "25.0", SUBPATH_API: "26.0", "1.48": "28.0"}  # API version -> Docker release


def _needs(args: convert.CreateArgs, start_interval: int | None) -> list[tuple[str, str]]:
    """What ``args`` asks of the engine that needs a newer API than 1.41: (what, API version)."""
    wanted = []
    images = [mount["Target"] for mount in args.host_config.get("mounts") or () if mount.get("Type") == "image"]
    if images:  # an older engine refuses the type ("mount type unknown"); v2 names the version
        wanted.append((f"volume type image ({images[0]})", "1.48"))
    subpaths = [mount["Target"] for mount in args.host_config.get("mounts") or ()
                if (mount.get("VolumeOptions") or {}).get("Subpath")
                or (mount.get("ImageOptions") or {}).get("Subpath")]
    if subpaths:
        wanted.append((f"volume subpath ({subpaths[0]})", SUBPATH_API))
    if args.host_overrides.get("Annotations"):
        wanted.append(("annotations", "1.43"))
    if start_interval is not None:
        wanted.append(("healthcheck.start_interval", "1.44"))
    macs = [name for name, endpoint in (*((args.endpoint,) if args.endpoint else ()), *args.connect)
            if endpoint.get("mac_address")]
    if macs:
        wanted.append((f"networks.mac_address (network {macs[0]})", "1.44"))
    return wanted


WINDOWS_ONLY = ("cpu_count", "cpu_percent")
"""HostConfig fields only a Windows engine applies: a Linux one discards cpu_percent with a warning
and keeps cpu_count without applying it (v2 sends both)."""


def _check_engine(api: Any, args: convert.CreateArgs, start_interval: int | None) -> None:
    """:raises UnsupportedFeatureError: a field this engine would ignore."""
    import docker.utils

    windows_only = [key for key in WINDOWS_ONLY if args.host_config.get(key)]
    if windows_only:
        version = api.version()
        if str(version.get("Os") or "").lower() != "windows":
            raise UnsupportedFeatureError(
                f"{windows_only[0]} needs a Windows engine; this engine is Docker {version.get('Version')} on "
                f"{version.get('Os')}, which would ignore it", backend_name=BACKEND_NAME, operation="create")
    for what, version in _needs(args, start_interval):
        if not docker.utils.version_gte(api.api_version, version):
            engine = str(api.version().get("Version") or "unknown")
            raise UnsupportedFeatureError(
                f"{what} needs Docker Engine API {version} (Docker {NEEDS_API[version]}); this engine is Docker "
                f"{engine} (API {api.api_version})", backend_name=BACKEND_NAME, operation="create")


def _create(api: Any, args: convert.CreateArgs, start_interval: int | None) -> str:
    """Create the container, then join its other networks; remove it if a join fails."""
    _check_engine(api, args, start_interval)
    networking = None
    if args.endpoint is not None:
        network_name, endpoint = args.endpoint
        networking = api.create_networking_config({network_name: api.create_endpoint_config(**endpoint)})
    config = api.create_container_config(
        **args.container, host_config=api.create_host_config(**args.host_config), networking_config=networking
    )
    config.update(args.config_overrides)
    if args.console_size is not None:  # the terminal's first size, the caller's (docker run -it)
        config.setdefault("HostConfig", {})["ConsoleSize"] = list(args.console_size)
    if start_interval is not None and config.get("Healthcheck"):
        config["Healthcheck"]["StartInterval"] = start_interval
    if args.host_overrides:
        config.setdefault("HostConfig", {}).update(args.host_overrides)
    container_id = str(api.create_container_from_config(config, args.name, args.platform)["Id"])
    try:
        for network_name, endpoint in args.connect:
            api.connect_container_to_network(container_id, network_name, **endpoint)
    except Exception:
        api.remove_container(container_id, force=True)
        raise
    return container_id


class _LogPump:
    """Reads one container's log stream in its own thread and sends lines to the event loop."""

    def __init__(self, api: Any, item: Mapping[str, Any], follow: bool, tail: int | None, send: Any, token: Any,
                 window: Mapping[str, str] | None = None):
        self._api = api
        self._container_id = str(item["Id"])
        self._name = observe.container_name(item)
        self._service_name = ((item.get("Config") or {}).get("Labels") or {}).get(labels.SERVICE, self._name)
        self._tty = bool((item.get("Config") or {}).get("Tty"))
        self._follow = follow
        self._tail = tail
        self._window = window or {}
        self._send = send
        self._token = token
        self._socket: Any = None
        self._cancelled = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"logs-{self._name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def cancel(self) -> None:
        self._cancelled.set()
        raw = getattr(self._socket, "_sock", self._socket)
        if raw is not None and self._thread.is_alive():
            try:
                raw.shutdown(socket.SHUT_RDWR)  # wakes the blocked read
            except OSError:
                pass

    def _deliver(self, item: LogLine | BaseException | None) -> bool:
        try:
            anyio.from_thread.run(self._send.send, item, token=self._token)
        except Exception:  # the reader went away, or the loop closed
            return False
        return True

    def _run(self) -> None:
        try:
            for line in self._lines():
                if self._cancelled.is_set() or not self._deliver(line):
                    return
        except Exception as exc:
            if self._cancelled.is_set():
                return
            if getattr(exc, "status_code", None) == 501:  # the none driver: v2 warns and goes on
                reason = f"Error response from daemon: {getattr(exc, 'explanation', None) or exc}"
                self._deliver(LogLine(self._name, self._service_name, reason, "warning"))
            else:
                self._deliver(translate(exc, "logs"))
        finally:
            self._deliver(None)
            try:
                anyio.from_thread.run_sync(self._send.close, token=self._token)
            except Exception:  # the event loop is gone (the reader stopped early): no race left
                self._send.close()

    def _url(self) -> str:
        return str(self._api._url("/containers/{0}/logs", self._container_id))

    def _chunks(self) -> Iterator[bytes]:
        """Raw body bytes as they arrive (urllib3 undoes the chunked encoding)."""
        api = self._api
        params = {"stdout": 1, "stderr": 1, "timestamps": 1, "follow": int(self._follow),
                  "tail": "all" if self._tail is None else str(self._tail), **self._window}
        response = api._get(self._url(), params=params, stream=True)
        try:
            self._socket = api._get_raw_response_socket(response)  # raises for status; kept to cancel
            if self._follow:
                api._disable_socket_timeout(self._socket)  # a quiet container is not a dead engine
            if self._cancelled.is_set():
                self.cancel()
            while chunk := response.raw.read1(65536):
                yield chunk
        finally:
            response.close()

    def _frames(self) -> Iterator[tuple[int, bytes]]:
        """(stream, payload) pairs: one stream without a tty, else 8-byte headers demultiplex them."""
        if self._tty:
            for chunk in self._chunks():
                yield 1, chunk
            return
        buffer = b""
        for chunk in self._chunks():
            buffer += chunk
            while len(buffer) >= 8:
                size = int.from_bytes(buffer[4:8], "big")
                if len(buffer) < 8 + size:
                    break
                yield buffer[0], buffer[8 : 8 + size]
                buffer = buffer[8 + size :]

    def _lines(self) -> Iterator[LogLine]:
        pending: dict[int, bytes] = {}
        for stream, data in self._frames():
            buffer = pending.get(stream, b"") + data
            *complete, pending[stream] = buffer.split(b"\n")
            for raw in complete:
                yield self._line(raw, stream)
        for stream, rest in pending.items():
            if rest:
                yield self._line(rest, stream)

    def _line(self, raw: bytes, stream: int) -> LogLine:
        text = raw.decode("utf-8", "replace").rstrip("\r")
        timestamp, separator, rest = text.partition(" ")
        if not separator or not timestamp[:4].isdigit():
            timestamp, rest = "", text
        return LogLine(self._name, self._service_name, rest, "stderr" if stream == 2 else "stdout", timestamp or None)
