"""The Backend protocol: what a backend does for the planner, and the values it is handed and returns.

A backend executes single operations and makes no decisions: the reconciler decided
everything when it built the plan. Each method maps to one engine call (or a small fixed
sequence of them). Backends raise only composer.errors.BackendError subclasses, translated
at their own edge, and are imported lazily, by name (composer.backends.select).

Room for later backends: Swarm schedules replicas itself and reports tasks, so containers
are addressed by ContainerRef and observed through ObservedState, never by engine objects.
A backend that deploys whole services rather than single containers also implements
composer.contract.services.ServiceBackend.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, BinaryIO, ClassVar, Protocol, runtime_checkable

if TYPE_CHECKING:
    from pathlib import Path

    from composer.contract.observed import ObservedState
    from composer.events import EventSink
    from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig


class Capability(Enum):
    BUILD = "build"
    HEALTHCHECK = "healthcheck"
    PUBLISHED_PORTS = "published_ports"
    NAMED_VOLUMES = "named_volumes"
    SHARED_NAMESPACES = "shared_namespaces"  # network_mode/ipc/pid: "service:x"
    RESTART_POLICY = "restart_policy"


@dataclass(frozen=True, slots=True)
class ContainerRef:
    container_id: str
    name: str


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    network_name: str  # the engine's name
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    priority: int = 0


@dataclass(frozen=True, slots=True)
class ContainerSpec:
    """Everything a backend needs to create one replica; built by the planner."""

    project_name: str
    service: ServiceConfig  # canonical, interpolated, references resolved
    container_name: str  # "<project>-<service>-<n>", or service.container_name
    number: int
    image: str  # the image reference to run
    labels: Mapping[str, str]  # includes the config-hash label
    networks: Sequence[NetworkAttachment] = ()  # in attachment order
    volume_names: Mapping[str, str] = field(default_factory=dict)  # Compose key -> engine name
    secret_files: Mapping[str, str] = field(default_factory=dict)  # secret key -> host file to bind
    config_files: Mapping[str, str] = field(default_factory=dict)  # config key -> host file to bind
    # secrets from ``environment``, configs from ``content`` or ``environment``: written into the
    # container after create, as v2 copies them in (composer.planner.injected_files)
    injected_files: Sequence[InjectedFile] = ()
    # network_mode / ipc / pid "service:x" resolved to a running container of x
    namespace_containers: Mapping[str, str] = field(default_factory=dict)
    volumes_from: Sequence[str] = ()  # container names or ids
    # links: (container, name it is known by) for each container of each linked service, as v2
    # links them: the link's alias, <service>-<number> and <project>-<service>-<number>
    links: Sequence[tuple[str, str]] = ()
    replaces: ContainerRef | None = None  # inherit anonymous volumes on recreate
    console_size: tuple[int, int] | None = None
    """With ``service.tty``: the terminal's first size (rows, columns), the caller's (``run -t``)."""

    def file_mounts(self) -> list[tuple[str, str]]:
        """(host file, container path) of each file-based secret and config, bound read-only as
        v2 does without Swarm (uid, gid and mode cannot apply to a bind mount)."""
        pairs = [(self.secret_files[grant.source], file_target(grant.source, grant.target, SECRETS_DIR))
                 for grant in self.service.secrets if grant.source in self.secret_files]
        pairs += [(self.config_files[grant.source], file_target(grant.source, grant.target, CONFIGS_DIR))
                  for grant in self.service.configs if grant.source in self.config_files]
        return pairs


@dataclass(frozen=True, slots=True)
class InjectedFile:
    """A file written into a container's filesystem after create: a secret or config whose
    content Compose holds (not a host file to bind)."""

    target: str  # absolute path in the container
    content: bytes
    uid: int = 0
    gid: int = 0
    mode: int = 0o444  # v2's default for injected secrets and configs


def injection_archive(files: Sequence[InjectedFile]) -> bytes:
    """One tar archive of ``files`` to extract at ``/`` (names relative to it; the engine makes
    missing parent directories, root's and 0755, as Docker does)."""
    import io
    import tarfile
    import time

    buffer = io.BytesIO()
    now = time.time()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for file in files:
            info = tarfile.TarInfo(file.target.lstrip("/"))
            info.size, info.mode, info.uid, info.gid, info.mtime = len(file.content), file.mode, file.uid, file.gid, now
            tar.addfile(info, io.BytesIO(file.content))
    return buffer.getvalue()


SECRETS_DIR = "/run/secrets/"
CONFIGS_DIR = "/"


def file_target(source: str, target: str | None, base: str) -> str:
    """Where a secret (base ``/run/secrets/``) or config (base ``/``) appears in the container."""
    if not target:
        return base + source
    return target if target.startswith("/") else base + target


@dataclass(frozen=True, slots=True)
class BuildSecret:
    """A build secret (Compose ``build.secrets``): a host file, or a variable's value."""

    file: str | None = None
    value: bytes | None = field(default=None, repr=False)

    def read(self) -> bytes:
        """:raises OSError: the file cannot be read."""
        if self.value is not None:
            return self.value
        assert self.file is not None
        with open(self.file, "rb") as handle:
            return handle.read()


@dataclass(frozen=True, slots=True)
class BuildSpec:
    """Everything a backend needs to build one service's image; built by the planner."""

    project_name: str
    service: ServiceConfig  # has ``build``
    image: str  # the tag to build: ``image``, or ``<project>-<service>``
    labels: Mapping[str, str]  # build.labels plus v2's project/service/version labels
    args: Mapping[str, str] = field(default_factory=dict)  # build.args with --build-arg applied
    tags: tuple[str, ...] = ()  # build.tags: extra tags of the same image
    no_cache: bool = False  # build.no_cache or --no-cache
    pull: bool = False  # build.pull or --pull: pull the base images
    try_pull: bool = False
    """Pull ``image`` first and build only when that fails (v2: a service with image and build)."""
    secrets: Mapping[str, BuildSecret] = field(default_factory=dict)
    """Build secrets by id (the grant's ``target``, else its source, as v2 names them), for
    ``RUN --mount=type=secret``; never written into the image."""
    service_images: Mapping[str, str] = field(default_factory=dict)
    """The images built for the services ``build.additional_contexts`` names (``service:<name>``),
    by service name; the planner builds them first."""


@dataclass(frozen=True, slots=True)
class ContainerState:
    status: str  # created, running, paused, restarting, exited, dead
    health: str | None = None  # starting, healthy, unhealthy
    exit_code: int | None = None
    oom_killed: bool = False


@dataclass(frozen=True, slots=True)
class LogLine:
    container_name: str
    service_name: str
    text: str
    stream: str = "stdout"
    """stdout, stderr, or warning: the engine keeps no log to read for this container (its
    logging driver: none), ``text`` says so; v2 prints it as a warning and goes on."""
    timestamp: str | None = None


@dataclass(frozen=True, slots=True)
class EngineEvent:
    """One event of the engine about a resource of the project (``events``)."""

    time_ns: int  # Unix time, nanoseconds
    type: str  # "container", ...
    action: str  # create, start, die, kill, "health_status: healthy", ...
    id: str  # the resource's id
    attributes: Mapping[str, str] = field(default_factory=dict)  # the engine's, labels included
    service: str = ""  # the Compose service (set by composer.engine.events)


@dataclass(frozen=True, slots=True)
class ExecSpec:
    """A process to run in a running container (``exec``)."""

    command: tuple[str, ...]
    user: str | None = None
    workdir: str | None = None
    environment: Mapping[str, str] = field(default_factory=dict)
    privileged: bool = False
    tty: bool = False
    interactive: bool = True  # attach standard input


class TerminalWindow(Protocol):
    """The caller's terminal, whose size an attached tty follows (SIGWINCH), as ``docker run -it``."""

    def size(self) -> tuple[int, int] | None:
        """(rows, columns) now; None when unknown."""
        ...

    def wait_change(self, timeout: float) -> bool:
        """Block until the size changes (True) or ``timeout`` seconds pass (False)."""
        ...


DETACH_KEYS = b"\x10\x11"  # ctrl-p ctrl-q, Docker's default


@dataclass(frozen=True, slots=True)
class Streams:
    """Where an attached process reads and writes (binary files; stdin None: not attached).
    With a tty the engine merges stderr into stdout; ``window`` is the terminal to follow and
    ``detach_keys`` (with a tty and stdin, as Docker) the sequence that detaches, leaving the
    container running."""

    stdout: BinaryIO
    stderr: BinaryIO
    stdin: BinaryIO | None = None
    window: TerminalWindow | None = None
    detach_keys: bytes = DETACH_KEYS


class DetachScanner:
    """Finds the detach sequence in what the caller types: ``feed`` returns the bytes to pass on
    and whether the sequence was completed (its own bytes are held back while it may be one, and
    passed on when it turns out not to be, as Docker's escape proxy does)."""

    def __init__(self, keys: bytes) -> None:
        self.keys = keys
        self.held = b""

    def feed(self, data: bytes) -> tuple[bytes, bool]:
        if not self.keys:
            return data, False
        out = bytearray()
        for byte in data:
            key = bytes((byte,))
            candidate = self.held + key
            if self.keys.startswith(candidate):
                if candidate == self.keys:
                    self.held = b""
                    return bytes(out), True
                self.held = candidate
                continue
            out += self.held
            self.held = b""
            if self.keys.startswith(key):
                self.held = key
            else:
                out += key
        return bytes(out), False


@dataclass(frozen=True, slots=True)
class ProcessList:
    """``top``: the column titles and one row per process."""

    titles: tuple[str, ...]
    processes: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class ContainerStats:
    """One sample of a running container's resource counters (``stats``): CPU percentages come
    from two samples, as Docker computes them (cpu delta / system delta x online CPUs)."""

    cpu_ns: int  # CPU time the container used, nanoseconds, since it started
    system_ns: int  # CPU time the host used (all CPUs), nanoseconds, since boot
    online_cpus: int
    memory_usage: int  # bytes, without the inactive file cache (as the docker CLI shows it)
    memory_limit: int  # bytes: the container's limit, or the host's memory without one
    net_rx: int  # bytes received, all interfaces of its network namespace but lo
    net_tx: int
    block_read: int  # bytes read from and written to block devices
    block_write: int
    pids: int


@dataclass(frozen=True, slots=True)
class ProjectSummary:
    """A project seen through its labels (``ls``): one state per container, its config files."""

    name: str
    states: tuple[str, ...]
    config_files: tuple[str, ...]
    owner: str | None = None
    """composer's owner label (``dev.composer.owner``) of its containers, for library-run stacks."""


@dataclass(frozen=True, slots=True)
class ImageSummary:
    """The image a container runs (``images``)."""

    container_name: str
    repository: str
    tag: str
    image_id: str
    size: int
    created: float | None = None  # Unix time
    platform: str = ""


@dataclass(frozen=True, slots=True)
class StoredImage:
    """One name in a backend's own image store (``composer image ls``)."""

    repository: str  # familiar, without the tag: ``busybox``, ``registry.local:5000/app``
    tag: str | None
    image_id: str  # the config's digest, ``sha256:...``
    size: int  # bytes, its layers'
    pulled: float = 0.0  # Unix time of the pull, load or tag; 0 when unknown


@runtime_checkable
class ImageStoreCommands(Protocol):
    """The ``composer image`` commands (load, save, tag, rm, ls), offered by a backend that
    keeps its own image store (the native backend); an engine with its own CLI (docker) has none.
    Blocking calls, each leaving the store as it was when it fails."""

    def load_images(self, source: Path | BinaryIO) -> list[str]:
        """Load a ``docker save`` archive or an OCI layout tar; the familiar names loaded.

        :raises ComposerError: not an archive the store understands.
        """
        ...

    def save_images(self, references: Sequence[str], target: Path | BinaryIO) -> None:
        """Write the images as one archive ``docker load`` reads (a path is written whole or not at all)."""
        ...

    def tag_image(self, source: str, target: str) -> None:
        """Give the stored image ``source`` the name ``target``.

        :raises UsageError: ``target`` carries a digest.
        :raises ImageNotFoundError: ``source`` is not stored.
        """
        ...

    def untag_images(self, references: Sequence[str]) -> list[str]:
        """Remove the names (their content goes at the next garbage collection); the familiar
        names removed, in order.

        :raises ImageNotFoundError: one of them is not stored (then none is removed).
        """
        ...

    def stored_images(self) -> list[StoredImage]:
        """Every name in the store."""
        ...


@dataclass(frozen=True, slots=True)
class PathStat:
    """A path inside a container (``cp``)."""

    name: str
    size: int
    is_dir: bool
    link_target: str = ""


class Backend(Protocol):
    """Executes single operations; makes no decisions (see composer.planner.execute)."""

    name: ClassVar[str]
    capabilities: ClassVar[frozenset[Capability]]

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = (),
        images: Sequence[str] | None = None,
    ) -> ObservedState:
        """The project's containers, networks and volumes (by the project label), plus the
        named external networks and volumes that exist (they carry no project label).

        ``images``: which local images to look for (``ObservedState.images`` holds those present,
        perhaps more); None: every local image (``down --rmi``); empty: none (most commands need
        none, and listing every image of a busy engine costs more than the rest)."""
        ...

    async def ensure_image(self, service: ServiceConfig, image: str, policy: str, sink: EventSink) -> None: ...
    async def build_image(self, spec: BuildSpec, sink: EventSink) -> None:
        """Build ``spec.image`` (and its extra tags), streaming the output as events under ``image:<image>``.

        :raises ImageBuildError: the build failed (one line: the service and the failing step).
        :raises UnsupportedFeatureError: the engine cannot build what ``build:`` asks.
        """
        ...

    async def push_image(self, image: str, sink: EventSink) -> None:
        """Push ``image`` to its registry, with per-layer progress events."""
        ...

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                             config_hash: str | None = None) -> str: ...
    async def remove_network(self, network_name: str) -> None: ...
    async def create_volume(self, project_name: str, key: str, volume_name: str, config: VolumeConfig) -> str: ...
    async def remove_volume(self, volume_name: str) -> None: ...
    async def create_container(self, spec: ContainerSpec) -> ContainerRef: ...
    async def start_container(self, ref: ContainerRef) -> None: ...
    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None: ...
    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None: ...
    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None: ...
    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        """Rename a container (the last step of a recreate: the new one takes the old name)."""
        ...

    async def container_state(self, ref: ContainerRef) -> ContainerState: ...
    def logs(
        self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None,
        since: float | None = None, until: float | None = None,
    ) -> AsyncIterator[LogLine]:
        """The containers' lines, interleaved as they come; ``since``/``until`` (Unix times) bound them."""
        ...

    async def remove_image(self, image: str) -> None:
        """Remove the local image ``image`` (``down --rmi``); absent already is not an error."""
        ...

    def events(self, project_name: str) -> AsyncIterator[EngineEvent]:
        """The engine's events about the project's resources, as they happen, until cancelled.

        :raises UnsupportedFeatureError: the backend cannot stream events.
        """
        ...

    # --- container commands (start, pause, exec, cp, top, ls, images...) ----------------------

    async def pause_container(self, ref: ContainerRef) -> None: ...
    async def unpause_container(self, ref: ContainerRef) -> None: ...
    async def wait_container(self, ref: ContainerRef) -> int:
        """Block until the container stops; its exit code."""
        ...

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        """Run ``spec`` in the container; without ``streams`` detached (returns None), else
        streamed to and from them until it ends (returns its exit code)."""
        ...

    async def attach_container(self, ref: ContainerRef, streams: Streams, *, tty: bool | None,
                               start: bool) -> int | None:
        """Attach to the container (and start it with ``start``), stream until it stops; its exit
        code, or None when the caller detached (``streams.detach_keys``: it keeps running).
        ``tty``: whether the container has a terminal (None: look it up)."""
        ...

    async def container_top(self, ref: ContainerRef) -> ProcessList: ...
    async def container_stats(self, ref: ContainerRef) -> ContainerStats:
        """One sample of the running container's counters.

        :raises ComposerError: the container is not running.
        """
        ...

    async def stat_container_path(self, ref: ContainerRef, path: str) -> PathStat | None:
        """What ``path`` is in the container; None when it does not exist."""
        ...

    async def export_container(self, ref: ContainerRef, target: BinaryIO) -> None:
        """Write the container's filesystem (its volumes left out) to ``target`` as a tar archive
        (``docker export``).

        :raises UnsupportedFeatureError: the backend cannot export.
        """
        ...

    async def commit_container(self, ref: ContainerRef, repository: str | None, tag: str | None, *,
                               author: str | None = None, message: str | None = None,
                               changes: Sequence[str] = (), pause: bool = True) -> str:
        """A new image from the container's changes (``docker commit``); its id.

        :raises UnsupportedFeatureError: the backend cannot commit.
        """
        ...

    async def copy_to_container(self, ref: ContainerRef, directory: str, archive: bytes) -> None:
        """Extract the tar ``archive`` into ``directory`` (which exists) in the container."""
        ...

    async def copy_from_container(self, ref: ContainerRef, path: str) -> bytes:
        """``path`` in the container as a tar archive (its top entry named after ``path``)."""
        ...

    async def list_projects(self, *, include_stopped: bool) -> Sequence[ProjectSummary]:
        """Every project with containers (running ones only unless ``include_stopped``), by name."""
        ...

    async def list_images(self, refs: Sequence[ContainerRef]) -> Sequence[ImageSummary]: ...
    async def release(self) -> None:
        """Let go of what the backend holds for the command so far (the native backend's project
        locks), so that other commands can change the project while a long-lived one (``watch``)
        waits for its next change; the next change takes it again."""
        ...

    async def aclose(self) -> None: ...
