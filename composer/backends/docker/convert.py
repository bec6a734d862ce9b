"""ContainerSpec -> the keyword arguments of docker-py's low-level container calls (pure).

``convert`` decides nothing and calls nothing: it maps each service key the engine supports
onto ``APIClient.create_container_config``, ``create_host_config``, ``create_endpoint_config``
and ``connect_container_to_network``, the way Compose v2 fills the engine's create request.
Values are plain JSON-able data (lists, dicts, str, int, bool) so the result is golden-tested
as JSON. Empty and unset values are left out, so the engine (or the image) default applies;
``command: []`` and ``entrypoint: []`` are kept, since Compose means "clear" by them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from composer import labels
from composer.backends.docker.coverage import COVERAGE
from composer.backends.docker.errors import BACKEND_NAME
from composer.backends.seccomp_file import ProfileError, read_profile
from composer.contract.backend import ContainerSpec, NetworkAttachment
from composer.contract.coverage import refuse
from composer.errors import NotFoundError
from composer.spec.models import (
    DeviceRequest,
    Healthcheck,
    NetworkConfig,
    Resource,
    ServiceConfig,
    ServiceVolume,
    VolumeConfig,
)

_BUILTIN_NETWORK_MODES = ("none", "host", "bridge", "default")
_RESTART_NAMES = {"none": "no", "no": "no", "on-failure": "on-failure", "unless-stopped": "unless-stopped",
                  "any": "always", "always": "always"}

Kwargs = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateArgs:
    """What it takes to create one container: the create call, then extra network connections."""

    name: str
    container: Kwargs  # create_container_config(**container, host_config=..., networking_config=...)
    host_config: Kwargs  # create_host_config(**host_config)
    endpoint: tuple[str, Kwargs] | None = None  # the network joined at create: name, create_endpoint_config kwargs
    connect: tuple[tuple[str, Kwargs], ...] = ()  # connect_container_to_network(id, name, **kwargs), in order
    platform: str | None = None
    config_overrides: Kwargs = field(default_factory=dict)  # set on the container config after it is built
    host_overrides: Kwargs = field(default_factory=dict)  # HostConfig fields docker-py has no argument for
    console_size: tuple[int, int] | None = None  # HostConfig.ConsoleSize (rows, columns) of a tty

    def as_dict(self) -> Kwargs:
        return {
            "name": self.name,
            "platform": self.platform,
            "container": self.container,
            "host_config": self.host_config,
            "endpoint": list(self.endpoint) if self.endpoint else None,
            "connect": [list(item) for item in self.connect],
            "config_overrides": self.config_overrides,
            "host_overrides": self.host_overrides,
        }


def _put(target: Kwargs, key: str, value: Any) -> None:
    """Set ``key`` unless ``value`` is unset: None, False or an empty collection."""
    if value is None or value is False or (isinstance(value, list | dict | tuple | str) and not value):
        return
    target[key] = value


def convert(spec: ContainerSpec, *, inherited_volumes: Mapping[str, str] | None = None) -> CreateArgs:
    """The docker-py arguments that create ``spec``'s container.

    ``inherited_volumes`` maps a target path to the anonymous volume of the replaced container
    mounted there, so a recreated container keeps its anonymous volumes (as v2 does).

    :raises NotFoundError: a ``service:x`` namespace has no container in ``spec.namespace_containers``.
    :raises UnsupportedFeatureError: the service sets a key the backend refuses (its coverage table).
    """
    service = spec.service
    refuse(COVERAGE, BACKEND_NAME, service)
    endpoint, connect = _networks(spec)
    interactive = service.stdin_open and spec.labels.get(labels.ONEOFF) == "True"
    return CreateArgs(
        name=spec.container_name,
        container=_container_config(spec),
        host_config=_host_config(spec, inherited_volumes or {}),
        endpoint=endpoint,
        connect=connect,
        platform=service.platform,
        # v2 attaches stdout/stderr (for `up` to follow) but never stdin, so StdinOnce stays false;
        # except an interactive one-off (`run -i`): once its stdin ends the engine closes the
        # container's stdin rather than the attached output streams.
        config_overrides={"AttachStdin": interactive, "AttachStdout": True, "AttachStderr": True,
                          "StdinOnce": interactive},
        console_size=spec.console_size if service.tty else None,
        host_overrides={"Annotations": dict(service.annotations)} if service.annotations else {},
    )


# --- the container config ------------------------------------------------------------------


def _container_config(spec: ContainerSpec) -> Kwargs:
    service = spec.service
    config: Kwargs = {"image": spec.image, "command": None if service.command is None else list(service.command)}
    if service.entrypoint is not None:
        config["entrypoint"] = list(service.entrypoint)
    _put(config, "environment", [f"{key}={value}" for key, value in service.environment.items() if value is not None])
    config["labels"] = {**service.labels, **spec.labels}
    for key in ("hostname", "domainname", "user", "working_dir", "stop_signal", "mac_address"):
        _put(config, key, getattr(service, key))
    _put(config, "tty", service.tty)
    _put(config, "stdin_open", service.stdin_open)
    _put(config, "ports", _exposed_ports(service))
    if service.stop_grace_period is not None:
        config["stop_timeout"] = int(service.stop_grace_period.seconds)  # v2 truncates to whole seconds
    _put(config, "healthcheck", _healthcheck(service.healthcheck))
    return config


def _expand(port_range: str) -> list[int]:
    first, _, last = port_range.partition("-")
    return list(range(int(first), int(last or first) + 1))


def _exposed_ports(service: ServiceConfig) -> list[tuple[int, str]]:
    """(port, protocol) tuples, the form docker-py reads for ExposedPorts."""
    exposed: list[tuple[int, str]] = []
    for port in service.ports:
        if port.target is not None and (port.target, port.protocol) not in exposed:
            exposed.append((port.target, port.protocol))
    for entry in service.expose:
        numbers, _, protocol = entry.partition("/")
        for number in _expand(numbers):
            if (number, protocol or "tcp") not in exposed:
                exposed.append((number, protocol or "tcp"))
    return exposed


def _healthcheck(healthcheck: Healthcheck | None) -> Kwargs | None:
    if healthcheck is None:
        return None
    if healthcheck.disable:
        return {"test": ["NONE"]}
    result: Kwargs = {}
    _put(result, "test", list(healthcheck.test) if healthcheck.test else None)
    for key in ("interval", "timeout", "start_period"):
        duration = getattr(healthcheck, key)
        _put(result, key, duration.nanoseconds if duration is not None else None)
    _put(result, "retries", healthcheck.retries)
    return result


def start_interval(service: ServiceConfig) -> int | None:
    """``healthcheck.start_interval`` in ns; docker-py has no argument for it (API 1.44+)."""
    healthcheck = service.healthcheck
    if healthcheck is None or healthcheck.disable or healthcheck.start_interval is None:
        return None
    return healthcheck.start_interval.nanoseconds


# --- the host config -----------------------------------------------------------------------


def _host_config(spec: ContainerSpec, inherited_volumes: Mapping[str, str]) -> Kwargs:
    service = spec.service
    host: Kwargs = {}
    binds, mounts = _mounts(spec, inherited_volumes)
    _put(host, "binds", binds)
    _put(host, "mounts", mounts)
    _put(host, "port_bindings", _port_bindings(service))
    _put(host, "network_mode", _network_mode(spec))
    _put(host, "ipc_mode", _namespace(spec, "ipc", service.ipc))
    _put(host, "pid_mode", _namespace(spec, "pid", service.pid))
    _put(host, "volumes_from", list(spec.volumes_from))
    _put(host, "restart_policy", _restart_policy(service))
    _put(host, "log_config", _log_config(service))
    _put(host, "devices", [_device(device.source, device.target, device.permissions) for device in service.devices])
    _put(host, "tmpfs", _tmpfs(service.tmpfs))
    _put(host, "ulimits", [{"name": name, "soft": limit.soft, "hard": limit.hard}
                           for name, limit in service.ulimits.items()])
    _put(host, "extra_hosts", [_extra_host(entry) for entry in service.extra_hosts])
    _put(host, "sysctls", dict(service.sysctls))
    _put(host, "storage_opt", dict(service.storage_opt))
    _put(host, "security_opt", [_security_opt(option) for option in service.security_opt])
    for key, name in (("cap_add", "cap_add"), ("cap_drop", "cap_drop"), ("dns", "dns"),
                      ("dns_search", "dns_search"), ("dns_opt", "dns_opt"),
                      ("group_add", "group_add"), ("device_cgroup_rules", "device_cgroup_rules")):
        _put(host, name, list(getattr(service, key)))
    for key, name in (("privileged", "privileged"), ("read_only", "read_only"), ("shm_size", "shm_size"),
                      ("oom_score_adj", "oom_score_adj"), ("runtime", "runtime"), ("cgroup", "cgroupns"),
                      ("cgroup_parent", "cgroup_parent"), ("isolation", "isolation"), ("uts", "uts_mode"),
                      ("userns_mode", "userns_mode"), ("oom_kill_disable", "oom_kill_disable")):
        _put(host, name, getattr(service, key))
    if service.init is not None:
        host["init"] = service.init
    host.update(_resources(service))
    return host


def _security_opt(option: str) -> str:
    """``seccomp=<file>`` as the engine takes it: the profile's JSON, read here (as Compose v2 and the
    docker CLI read it on the client); other options as written."""
    key, separator, value = option.replace("=", ":", 1).partition(":")
    if key != "seccomp" or not separator or value in ("unconfined", "builtin", ""):
        return option
    data = read_profile(value)
    try:
        profile = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProfileError(f"seccomp profile {value}: not valid JSON: {exc}") from None
    return "seccomp=" + json.dumps(profile, separators=(",", ":"))


def _port_bindings(service: ServiceConfig) -> dict[str, list[dict[str, str]]]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in service.ports:
        if port.target is None:
            continue
        binding = {"HostIp": port.host_ip or "", "HostPort": port.published or ""}
        bindings.setdefault(f"{port.target}/{port.protocol}", []).append(binding)
    return bindings


def _namespace(spec: ContainerSpec, key: str, mode: str | None) -> str | None:
    """``service:x`` -> ``container:<id>`` through ``spec.namespace_containers``."""
    if mode is None:
        return None
    kind, _, name = mode.partition(":")
    if kind not in ("service", "container"):
        return mode
    container = spec.namespace_containers.get(mode) or (spec.namespace_containers.get(name) if kind == "service"
                                                        else None)
    if container is not None:
        return f"container:{container}"
    if kind == "container":
        return mode
    raise NotFoundError(f"service {spec.service.name} depends on service {name} for its {key} namespace, "
                        f"but {name} has no running container", backend_name=BACKEND_NAME, operation="create")


def _network_mode(spec: ContainerSpec) -> str | None:
    if spec.service.network_mode is not None:
        return _namespace(spec, "network", spec.service.network_mode)
    return spec.networks[0].network_name if spec.networks else None


def _restart_policy(service: ServiceConfig) -> Kwargs | None:
    name: str | None = None
    attempts = 0
    if service.restart:
        name, _, count = service.restart.partition(":")
        attempts = int(count) if count.isdigit() else 0
    if service.deploy is not None and service.deploy.restart_policy is not None:
        policy = service.deploy.restart_policy
        name, attempts = policy.condition or "", policy.max_attempts or 0
    if name is None:
        return None
    return {"Name": _RESTART_NAMES.get(name, name), "MaximumRetryCount": attempts}


def _log_config(service: ServiceConfig) -> Kwargs | None:
    if service.logging is None:
        return None
    options = {key: value for key, value in service.logging.options.items() if value is not None}
    return {"type": service.logging.driver or "", "config": options}


def _device(source: str, target: str | None, permissions: str | None) -> dict[str, str]:
    return {"PathOnHost": source, "PathInContainer": target or source, "CgroupPermissions": permissions or "rwm"}


def _tmpfs(entries: tuple[str, ...]) -> dict[str, str]:
    result: dict[str, str] = {}
    for entry in entries:
        path, _, options = entry.partition(":")
        result[path] = options
    return result


def _extra_host(entry: str) -> str:
    """``host=address`` (the model's form) -> ``host:address`` (the engine's)."""
    name, separator, address = entry.partition("=")
    return f"{name}:{address}" if separator else entry


# --- resources ------------------------------------------------------------------------------


def _resources(service: ServiceConfig) -> Kwargs:
    """Memory, CPU, pids and blkio, then deploy.resources over them (v2's getDeployResources)."""
    result: Kwargs = {}
    for key, name in (("mem_limit", "mem_limit"), ("memswap_limit", "memswap_limit"),
                      ("mem_reservation", "mem_reservation"), ("mem_swappiness", "mem_swappiness"),
                      ("cpu_shares", "cpu_shares"), ("cpuset", "cpuset_cpus"), ("cpu_quota", "cpu_quota"),
                      ("cpu_period", "cpu_period"), ("cpu_rt_period", "cpu_rt_period"),
                      ("cpu_rt_runtime", "cpu_rt_runtime"), ("cpu_count", "cpu_count"), ("pids_limit", "pids_limit")):
        _put(result, name, getattr(service, key))
    if service.cpus:
        result["nano_cpus"] = round(service.cpus * 1e9)
    if service.cpu_percent:
        result["cpu_percent"] = int(service.cpu_percent)
    result.update(_blkio(service))
    # gpus asks for GPUs whatever capabilities it names: v2 adds the "gpu" capability to each.
    requests = [_device_request(request, also="gpu") for request in service.gpus]
    if service.deploy is not None:
        _apply_limits(service.deploy.resources.limits, result)
        reservations = service.deploy.resources.reservations
        if reservations is not None:
            # CPU reservations are a Swarm feature and pids only a limit, so v2 maps just these two.
            if reservations.memory:
                result["mem_reservation"] = reservations.memory
            requests.extend(_device_request(request) for request in reservations.devices)
    _put(result, "device_requests", requests)
    return result


def _apply_limits(limits: Resource | None, result: Kwargs) -> None:
    if limits is None:
        return
    if limits.memory:
        result["mem_limit"] = limits.memory
    if limits.cpus:
        result["nano_cpus"] = round(limits.cpus * 1e9)
    if limits.pids is not None and limits.pids > 0:
        result["pids_limit"] = limits.pids


def _device_request(request: DeviceRequest, also: str | None = None) -> Kwargs:
    count = request.count
    if count is None:
        count = 0 if request.device_ids else -1  # neither count nor ids: every device
    capabilities = list(request.capabilities)
    if also is not None and also not in capabilities:
        capabilities.append(also)
    return {
        "driver": request.driver or "",
        "count": count,
        "device_ids": list(request.device_ids),
        "capabilities": [capabilities] if capabilities else [],
        "options": dict(request.options),
    }


def _blkio(service: ServiceConfig) -> Kwargs:
    blkio = service.blkio_config
    result: Kwargs = {}
    if blkio is None:
        return result
    _put(result, "blkio_weight", blkio.weight)
    _put(result, "blkio_weight_device", [{"Path": item.path, "Weight": item.weight} for item in blkio.weight_device])
    for key in ("device_read_bps", "device_read_iops", "device_write_bps", "device_write_iops"):
        _put(result, key, [{"Path": item.path, "Rate": item.rate} for item in getattr(blkio, key)])
    return result


# --- mounts -----------------------------------------------------------------------------------


def _mounts(spec: ContainerSpec, inherited_volumes: Mapping[str, str]) -> tuple[list[str], list[Kwargs]]:
    """Binds (``src:dst:opts`` strings) and Mounts, as v2 splits them.

    The Mount API refuses a missing bind source, so a bind that may create its source (short
    syntax) goes through Binds unless it needs an option only Mounts has (propagation, recursive).
    """
    binds: list[str] = []
    mounts: list[Kwargs] = []
    for volume in spec.service.volumes:
        if volume.type == "bind" and _bind_via_binds(volume):
            binds.append(_bind_string(volume))
        else:
            mounts.append(_mount(volume, spec.volume_names, inherited_volumes))
    # uid, gid and mode cannot apply to a bind mount; v2 ignores them with a warning.
    mounts.extend({"Type": "bind", "Source": source, "Target": target, "ReadOnly": True}
                  for source, target in spec.file_mounts())
    return binds, mounts


def _bind_via_binds(volume: ServiceVolume) -> bool:
    bind = volume.bind
    if bind is None:
        return True
    return bool(bind.create_host_path) and not bind.propagation and not bind.recursive


def _bind_string(volume: ServiceVolume) -> str:
    options = ["ro" if volume.read_only else "rw"]
    if volume.bind is not None and volume.bind.selinux:
        options.append(volume.bind.selinux)
    if volume.bind is not None and volume.bind.propagation:
        options.append(volume.bind.propagation)
    return f"{volume.source}:{volume.target}:{','.join(options)}"


def _mount(volume: ServiceVolume, volume_names: Mapping[str, str], inherited: Mapping[str, str]) -> Kwargs:
    mount: Kwargs = {"Type": volume.type, "Target": volume.target, "Source": volume.source or "",
                     "ReadOnly": volume.read_only}
    _put(mount, "Consistency", volume.consistency)
    if volume.type == "volume":
        if volume.source:
            mount["Source"] = volume_names.get(volume.source, volume.source)
        elif volume.target is not None and volume.target in inherited:
            mount["Source"] = inherited[volume.target]
        options: Kwargs = {}
        if volume.volume is not None:
            _put(options, "NoCopy", volume.volume.nocopy)
            _put(options, "Labels", dict(volume.volume.labels))
            _put(options, "Subpath", volume.volume.subpath)
        _put(mount, "VolumeOptions", options)
    elif volume.type == "bind" and volume.bind is not None:
        options = {}
        _put(options, "Propagation", volume.bind.propagation)
        if volume.bind.recursive == "disabled":
            options["NonRecursive"] = True
        _put(mount, "BindOptions", options)
    elif volume.type == "tmpfs" and volume.tmpfs is not None:
        options = {}
        _put(options, "SizeBytes", volume.tmpfs.size)
        _put(options, "Mode", volume.tmpfs.mode)
        _put(mount, "TmpfsOptions", options)
    elif volume.type == "image" and volume.image is not None:
        _put(mount, "ImageOptions", {"Subpath": volume.image.subpath} if volume.image.subpath else None)
    return mount


# --- networks -------------------------------------------------------------------------------


def _endpoint(attachment: NetworkAttachment) -> Kwargs:
    endpoint: Kwargs = {}
    _put(endpoint, "aliases", list(attachment.aliases))
    _put(endpoint, "ipv4_address", attachment.ipv4_address)
    _put(endpoint, "ipv6_address", attachment.ipv6_address)
    _put(endpoint, "mac_address", attachment.mac_address)
    return endpoint


def _networks(spec: ContainerSpec) -> tuple[tuple[str, Kwargs] | None, tuple[tuple[str, Kwargs], ...]]:
    """The first network joins at create, the others after it and before start (API < 1.44, as v2)."""
    mode = spec.service.network_mode
    if mode is not None and (mode in _BUILTIN_NETWORK_MODES or ":" in mode):
        return None, ()
    if not spec.networks:
        return None, ()
    first, *others = spec.networks
    endpoint = _endpoint(first)
    _put(endpoint, "links", list(spec.links))  # v2 links on the first network (its getLinks)
    return (first.network_name, endpoint), tuple((other.network_name, _endpoint(other)) for other in others)


# --- networks and volumes -------------------------------------------------------------------


def resource_labels(project_name: str, kind_label: str, key: str, user_labels: Mapping[str, str]) -> dict[str, str]:
    return {**user_labels, kind_label: key, labels.PROJECT: project_name, labels.VERSION: labels.COMPATIBLE_VERSION}


def network_kwargs(project_name: str, key: str, network_name: str, config: NetworkConfig, *,
                   config_hash: str | None = None) -> Kwargs:
    """``APIClient.create_network`` arguments; CheckDuplicate makes a second create a conflict.
    ``config_hash`` labels the network as v2 does (it recreates a network whose hash changed)."""
    network_labels = resource_labels(project_name, labels.NETWORK, key, config.labels)
    if config_hash:
        network_labels[labels.CONFIG_HASH] = config_hash
    kwargs: Kwargs = {"name": network_name, "check_duplicate": True, "labels": network_labels}
    _put(kwargs, "driver", config.driver)
    _put(kwargs, "options", dict(config.driver_opts))
    _put(kwargs, "internal", config.internal)
    _put(kwargs, "attachable", config.attachable)
    _put(kwargs, "enable_ipv6", config.enable_ipv6)
    ipam = config.ipam
    if ipam.driver or ipam.config or ipam.options:
        pools = []
        for pool in ipam.config:
            entry: Kwargs = {}
            _put(entry, "Subnet", pool.subnet)
            _put(entry, "IPRange", pool.ip_range)
            _put(entry, "Gateway", pool.gateway)
            _put(entry, "AuxiliaryAddresses", dict(pool.aux_addresses))
            pools.append(entry)
        kwargs["ipam"] = {"Driver": ipam.driver or "default", "Config": pools, "Options": dict(ipam.options)}
    return kwargs


def volume_kwargs(project_name: str, key: str, volume_name: str, config: VolumeConfig) -> Kwargs:
    """``APIClient.create_volume`` arguments."""
    kwargs: Kwargs = {"name": volume_name, "labels": resource_labels(project_name, labels.VOLUME, key, config.labels)}
    _put(kwargs, "driver", config.driver)
    _put(kwargs, "driver_opts", dict(config.driver_opts))
    return kwargs
