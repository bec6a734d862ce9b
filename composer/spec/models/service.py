"""The typed model of one service and everything nested in it.

Field names are the Compose attribute names. ``None`` means the attribute was not set
(the engine or image default applies), which Compose keeps apart from an explicit zero,
empty string or empty list where it matters (``command``, ``entrypoint``, ``init``...).
List-valued attributes that Compose does not distinguish from "unset" default to ``()``,
mapping-valued ones to an empty mapping.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from composer.spec.models.scalars import (
    EMPTY,
    ByteSize,
    ComposeModel,
    Duration,
    FileModeBits,
    FrozenMapping,
    OptionalStrMapping,
    StrMapping,
    StrTuple,
)

# --- ports, volumes, devices ---------------------------------------------------------


class PortConfig(ComposeModel):
    """One published or exposed port, in long syntax (``"8080:80/udp"`` is already split here)."""

    name: str | None = None
    mode: str = "ingress"
    """``ingress`` (the default) or ``host``."""
    host_ip: str | None = None
    """The host address to bind; ``None`` binds every address."""
    target: int | None = None
    """The container port."""
    published: str | None = None
    """The host port or range (``"8080"``, ``"8000-8010"``); ``None`` lets the engine pick one."""
    protocol: str = "tcp"
    app_protocol: str | None = None

    @property
    def published_range(self) -> tuple[int, int] | None:
        """The published ports as an inclusive (first, last) range, or None when unpublished."""
        if not self.published:
            return None
        first, _, last = self.published.partition("-")
        return int(first), int(last or first)


class BindOptions(ComposeModel):
    propagation: str | None = None
    create_host_path: bool | None = None
    """Create the source folder when missing; short syntax sets it to True, long syntax leaves it None."""
    recursive: Literal["enabled", "disabled", "writable", "readonly"] | None = None
    selinux: Literal["z", "Z"] | None = None


class VolumeOptions(ComposeModel):
    labels: StrMapping = EMPTY
    nocopy: bool = False
    """Do not copy the image's data at the target into a new volume."""
    subpath: str | None = None


class TmpfsOptions(ComposeModel):
    size: ByteSize | None = None
    mode: FileModeBits | None = None


class ImageOptions(ComposeModel):
    subpath: str | None = None


class ServiceVolume(ComposeModel):
    """A mount of a service, in long syntax. Bind sources are absolute paths."""

    type: Literal["bind", "volume", "tmpfs", "cluster", "npipe", "image"]
    source: str | None = None
    """Host path (bind), volume name (volume; None for an anonymous volume), image (image)."""
    target: str | None = None
    read_only: bool = False
    consistency: str | None = None
    bind: BindOptions | None = None
    volume: VolumeOptions | None = None
    tmpfs: TmpfsOptions | None = None
    image: ImageOptions | None = None


class DeviceMapping(ComposeModel):
    """A host device made available in the container (``/dev/sda:/dev/xvda:rwm``)."""

    source: str
    target: str | None = None
    permissions: str | None = None


class DeviceRequest(ComposeModel):
    """A request for devices such as GPUs (``gpus:``, ``deploy.resources.reservations.devices``)."""

    capabilities: StrTuple = ()
    count: int | None = None
    """How many devices; -1 means all. None when ``device_ids`` names them."""
    device_ids: StrTuple = ()
    driver: str | None = None
    options: StrMapping = EMPTY


class Ulimit(ComposeModel):
    """A resource limit; ``nofile: 1024`` (a single number) sets soft and hard alike."""

    soft: int
    hard: int
    single: int | None = None
    """The number when the file gave one (v2 keeps that form: its configuration hash covers it)."""


def _ulimit(value: Any) -> Any:
    if isinstance(value, int | str) and not isinstance(value, bool):
        return {"soft": value, "hard": value, "single": value}
    return value


UlimitEntry = Annotated[Ulimit, BeforeValidator(_ulimit)]


# --- dependencies, health, hooks -------------------------------------------------------


class DependsOnCondition(ComposeModel):
    """How a service waits for one of its dependencies."""

    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = "service_started"
    required: bool = True
    """False: a missing or disabled dependency is ignored instead of being an error."""
    restart: bool = False
    """Restart this service when the dependency is updated (set for links and ``service:`` modes too)."""


class Healthcheck(ComposeModel):
    """The container's health check; unset fields fall back to the image's HEALTHCHECK."""

    test: tuple[str, ...] | None = None
    """``("CMD", ...)``, ``("CMD-SHELL", cmd)`` or ``("NONE",)``; a string in the file is CMD-SHELL.
    None: keep the image's test."""
    interval: Duration | None = None
    timeout: Duration | None = None
    start_period: Duration | None = None
    start_interval: Duration | None = None
    retries: int | None = None
    disable: bool = False
    """True disables the image's health check (same as ``test: ["NONE"]``)."""


class ServiceHook(ComposeModel):
    """A command run in the container after start (``post_start``) or before stop (``pre_stop``)."""

    command: tuple[str, ...] | None = None
    user: str | None = None
    privileged: bool = False
    working_dir: str | None = None
    environment: OptionalStrMapping = EMPTY


# --- build ------------------------------------------------------------------------------


class FileMount(ComposeModel):
    """A secret or config granted to a service (or to a build, for secrets)."""

    source: str
    """The name of the top-level secret or config."""
    target: str | None = None
    """Path in the container; the loader fills ``/run/secrets/<source>`` for secrets. For configs,
    None means ``/<source>``."""
    uid: str | None = None
    gid: str | None = None
    mode: str | None = None
    """Permission bits as an octal string (``"0440"``); None: the engine default (0444)."""

    @property
    def mode_bits(self) -> int | None:
        return None if self.mode is None else int(self.mode, 8)


class BuildConfig(ComposeModel):
    """How to build the service's image. ``context`` is absolute unless it is a URL."""

    context: str | None = None
    dockerfile: str | None = None
    """Relative to the context; the loader sets ``Dockerfile`` unless ``dockerfile_inline`` is given."""
    dockerfile_inline: str | None = None
    entitlements: StrTuple = ()
    args: OptionalStrMapping = EMPTY
    """Build arguments; None values (declared, not set anywhere) are normally dropped by the loader."""
    ssh: StrTuple = ()
    labels: StrMapping = EMPTY
    cache_from: StrTuple = ()
    cache_to: StrTuple = ()
    no_cache: bool = False
    additional_contexts: StrMapping = EMPTY
    network: str | None = None
    provenance: str | None = None
    sbom: str | None = None
    pull: bool = False
    target: str | None = None
    shm_size: ByteSize | None = None
    extra_hosts: StrTuple = ()
    """``host=address`` entries."""
    isolation: str | None = None
    privileged: bool = False
    secrets: tuple[FileMount, ...] = ()
    tags: StrTuple = ()
    ulimits: FrozenMapping[str, UlimitEntry] = EMPTY
    platforms: StrTuple = ()

    def attestations(self) -> tuple[str, ...]:
        """The attestations asked for (``provenance``, ``sbom``): set to anything but a Go false
        (``false``, ``0``...: BuildKit's ``provenance: false`` turns them off)."""
        return tuple(key for key in ("provenance", "sbom")
                     if (value := getattr(self, key)) is not None and value not in ("0", "f", "F", "false", "FALSE",
                                                                                     "False"))


# --- deploy ------------------------------------------------------------------------------


class DiscreteResourceSpec(ComposeModel):
    kind: str | None = None
    value: int | None = None


class GenericResource(ComposeModel):
    discrete_resource_spec: DiscreteResourceSpec | None = None


class Resource(ComposeModel):
    """Limits or reservations; None fields are unconstrained."""

    cpus: float | None = None
    memory: ByteSize | None = None
    pids: int | None = None
    generic_resources: tuple[GenericResource, ...] = ()
    devices: tuple[DeviceRequest, ...] = ()


class Resources(ComposeModel):
    limits: Resource | None = None
    reservations: Resource | None = None


class RestartPolicy(ComposeModel):
    condition: str | None = None
    """``none``, ``on-failure`` or ``any``."""
    delay: Duration | None = None
    max_attempts: int | None = None
    window: Duration | None = None


class UpdateConfig(ComposeModel):
    """``update_config`` and ``rollback_config``."""

    parallelism: int | None = None
    delay: Duration | None = None
    failure_action: str | None = None
    monitor: Duration | None = None
    max_failure_ratio: float | None = None
    order: Literal["start-first", "stop-first"] | None = None


class PlacementPreference(ComposeModel):
    spread: str | None = None


class Placement(ComposeModel):
    constraints: StrTuple = ()
    preferences: tuple[PlacementPreference, ...] = ()
    max_replicas_per_node: int | None = None


class DeployConfig(ComposeModel):
    mode: str | None = None
    """``replicated`` (default), ``global``, ``replicated-job`` or ``global-job``."""
    endpoint_mode: str | None = None
    replicas: int | None = None
    """None: one container (or ``scale``)."""
    labels: StrMapping = EMPTY
    rollback_config: UpdateConfig | None = None
    update_config: UpdateConfig | None = None
    resources: Resources = Field(default_factory=Resources)
    restart_policy: RestartPolicy | None = None
    placement: Placement = Field(default_factory=Placement)


# --- logging, networks, models, develop, misc ----------------------------------------------


class LoggingConfig(ComposeModel):
    driver: str | None = None
    """None: the engine's default driver."""
    options: OptionalStrMapping = EMPTY


class ServiceNetworkConfig(ComposeModel):
    """How a service joins one network."""

    aliases: StrTuple = ()
    interface_name: str | None = None
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    link_local_ips: StrTuple = ()
    mac_address: str | None = None
    driver_opts: StrMapping = EMPTY
    priority: int | None = None
    gw_priority: int | None = None


class ServiceModelConfig(ComposeModel):
    """How a service uses one top-level model."""

    endpoint_var: str | None = None
    model_var: str | None = None


class WatchRule(ComposeModel):
    """A ``develop.watch`` rule; ``path`` is absolute."""

    path: str
    action: Literal["rebuild", "sync", "restart", "sync+restart", "sync+exec"]
    target: str | None = None
    ignore: StrTuple = ()
    include: StrTuple = ()
    exec: ServiceHook | None = None
    initial_sync: bool = False


class DevelopConfig(ComposeModel):
    watch: tuple[WatchRule, ...] = ()


class BlkioLimit(ComposeModel):
    """A rate for one device: bytes per second (``*_bps``) or operations per second (``*_iops``)."""

    path: str | None = None
    rate: ByteSize | None = None


class BlkioWeight(ComposeModel):
    path: str | None = None
    weight: int | None = None


class BlkioConfig(ComposeModel):
    device_read_bps: tuple[BlkioLimit, ...] = ()
    device_read_iops: tuple[BlkioLimit, ...] = ()
    device_write_bps: tuple[BlkioLimit, ...] = ()
    device_write_iops: tuple[BlkioLimit, ...] = ()
    weight: int | None = None
    weight_device: tuple[BlkioWeight, ...] = ()


class CredentialSpec(ComposeModel):
    config: str | None = None
    file: str | None = None
    registry: str | None = None


class ExtendsConfig(ComposeModel):
    """Where the service came from; the loader has already merged the base service in."""

    service: str
    file: str | None = None


class ProviderConfig(ComposeModel):
    """A service managed by an external provider (``type``) instead of a container."""

    type: str
    options: FrozenMapping[str, StrTuple] = EMPTY
    """Each option's values, as strings."""


class EnvFile(ComposeModel):
    path: str
    required: bool = True
    format: str | None = None


# --- the service ------------------------------------------------------------------------------


class ServiceConfig(ComposeModel):
    """One service, resolved: long syntax, defaults applied, paths absolute, env files folded in."""

    name: str
    """The service's key under ``services:``."""

    develop: DevelopConfig | None = None
    deploy: DeployConfig | None = None
    annotations: StrMapping = EMPTY
    attach: bool | None = None
    """Attach to the service's log output; None means yes."""
    build: BuildConfig | None = None
    """None: the service only runs ``image``."""
    blkio_config: BlkioConfig | None = None
    cap_add: StrTuple = ()
    cap_drop: StrTuple = ()
    cgroup: Literal["host", "private"] | None = None
    cgroup_parent: str | None = None
    command: tuple[str, ...] | None = None
    """None: the image's CMD; ``()``: explicitly cleared (``command: []`` or ``""``). Strings are
    already split the way a POSIX shell splits them."""
    configs: tuple[FileMount, ...] = ()
    container_name: str | None = None
    cpu_count: int | None = None
    cpu_percent: float | None = None
    cpu_shares: int | None = None
    cpu_quota: int | None = None
    cpu_period: int | None = None
    cpu_rt_period: int | None = None
    cpu_rt_runtime: int | None = None
    cpus: float | None = None
    cpuset: str | None = None
    credential_spec: CredentialSpec | None = None
    depends_on: FrozenMapping[str, DependsOnCondition] = EMPTY
    """Services to start first, in declaration order. Includes the dependencies implied by
    ``links``, ``volumes_from`` and ``network_mode``/``ipc``/``pid: service:x``."""
    device_cgroup_rules: StrTuple = ()
    devices: tuple[DeviceMapping, ...] = ()
    dns: StrTuple = ()
    dns_opt: StrTuple = ()
    dns_search: StrTuple = ()
    domainname: str | None = None
    entrypoint: tuple[str, ...] | None = None
    """None: the image's ENTRYPOINT; ``()``: explicitly cleared."""
    env_file: tuple[EnvFile, ...] = ()
    """Normally empty: the loader reads env files into ``environment``."""
    label_file: StrTuple = ()
    """Normally empty: the loader reads label files into ``labels``."""
    environment: OptionalStrMapping = EMPTY
    """The container's variables, env files included. None: declared without a value and unset in
    the project environment (the variable is not passed)."""
    expose: StrTuple = ()
    """Ports or ranges (``"3000"``, ``"8000-8010/udp"``) exposed without publishing."""
    extends: ExtendsConfig | None = None
    provider: ProviderConfig | None = None
    external_links: StrTuple = ()
    extra_hosts: StrTuple = ()
    """``host=address`` entries (an IPv6 address is unbracketed)."""
    gpus: tuple[DeviceRequest, ...] = ()
    """``gpus: all`` is one request with count -1."""
    group_add: StrTuple = ()
    healthcheck: Healthcheck | None = None
    """None: the image's health check, if any."""
    hostname: str | None = None
    image: str | None = None
    """None with ``build``: the image is named ``<project>-<service>``."""
    init: bool | None = None
    """None: the engine default (no init)."""
    ipc: str | None = None
    isolation: str | None = None
    labels: StrMapping = EMPTY
    links: StrTuple = ()
    logging: LoggingConfig | None = None
    mac_address: str | None = None
    mem_limit: ByteSize | None = None
    mem_reservation: ByteSize | None = None
    mem_swappiness: int | None = None
    memswap_limit: ByteSize | None = None
    """-1: unlimited swap."""
    network_mode: str | None = None
    """``bridge``, ``host``, ``none``, ``service:<name>``, ``container:<name>``; None: the
    ``networks`` below."""
    models: FrozenMapping[str, ServiceModelConfig | None] = EMPTY
    """Top-level models the service uses; None: with the default variable names."""
    networks: FrozenMapping[str, ServiceNetworkConfig | None] = EMPTY
    """Networks joined, by their key in the top-level ``networks``; None: joined without options.
    The loader adds ``default`` when neither this nor ``network_mode`` is set."""
    oom_kill_disable: bool = False
    oom_score_adj: int | None = None
    pid: str | None = None
    pids_limit: int | None = None
    """-1: unlimited."""
    platform: str | None = None
    ports: tuple[PortConfig, ...] = ()
    post_start: tuple[ServiceHook, ...] = ()
    pre_stop: tuple[ServiceHook, ...] = ()
    privileged: bool = False
    profiles: StrTuple = ()
    """The service only runs when one of these profiles is active; empty: always."""
    pull_policy: str | None = None
    """``always``, ``never``, ``missing`` (``if_not_present`` is normalised to it), ``build``,
    ``refresh``, ``daily``, ``weekly``, ``every_<duration>``; None: ``missing``."""
    pull_refresh_after: str | None = None
    read_only: bool = False
    restart: str | None = None
    """``no``, ``always``, ``on-failure[:N]``, ``unless-stopped``; None: ``no``."""
    runtime: str | None = None
    scale: int | None = None
    """None: ``deploy.replicas``, else 1."""
    security_opt: StrTuple = ()
    shm_size: ByteSize | None = None
    secrets: tuple[FileMount, ...] = ()
    sysctls: StrMapping = EMPTY
    stdin_open: bool = False
    stop_grace_period: Duration | None = None
    """None: the engine default (10s)."""
    stop_signal: str | None = None
    storage_opt: StrMapping = EMPTY
    tmpfs: StrTuple = ()
    """``/path[:options]`` entries."""
    tty: bool = False
    ulimits: FrozenMapping[str, UlimitEntry] = EMPTY
    use_api_socket: bool = False
    user: str | None = None
    uts: str | None = None
    userns_mode: str | None = None
    volumes: tuple[ServiceVolume, ...] = ()
    volumes_from: StrTuple = ()
    """``service[:ro|rw]`` or ``container:<name>[:ro|rw]``."""
    working_dir: str | None = None

    @property
    def replicas(self) -> int:
        """How many containers run: ``scale``, else ``deploy.replicas``, else 1."""
        if self.scale is not None:
            return self.scale
        if self.deploy is not None and self.deploy.replicas is not None:
            return self.deploy.replicas
        return 1
