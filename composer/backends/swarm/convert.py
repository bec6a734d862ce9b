"""ServiceSpec -> the Engine API's service spec, as ``docker stack deploy`` writes it.

Pure: no engine, no I/O. Fields follow the Engine API (``/services/create``): docker-py passes
these dictionaries through unchanged. A Compose key that a Swarm service cannot express is
refused by ``refusals`` before anything is created, one line naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from composer.labels import STACK_NAMESPACE

if TYPE_CHECKING:
    from composer.contract.services import ServiceSpec
    from composer.spec.models import ServiceConfig
    from composer.spec.models.service import Healthcheck, UpdateConfig

Json = dict[str, Any]

SUPPORTED = frozenset({
    "name", "image", "build", "command", "entrypoint", "environment", "env_file", "label_file", "labels",
    "hostname", "user", "working_dir", "group_add", "healthcheck", "extra_hosts", "dns", "dns_search", "dns_opt",
    "secrets", "configs", "init", "sysctls", "cap_add", "cap_drop", "ulimits", "tty", "stdin_open", "read_only",
    "stop_signal", "stop_grace_period", "volumes", "tmpfs", "networks", "ports", "expose", "deploy", "restart",
    "depends_on", "profiles", "scale", "pull_policy", "extensions", "logging", "isolation",
})
"""The Compose service keys a Swarm service expresses; any other one that is set is refused."""

_NANOS = 1_000_000_000
_RESTART = {"always": "any", "unless-stopped": "any", "on-failure": "on-failure", "no": "none"}


def refusals(service: ServiceConfig) -> list[str]:
    """One line per key ``service`` sets that Swarm cannot run (``docker stack deploy`` drops
    them with a warning; composer refuses instead)."""
    found = []
    for field_name, info in type(service).model_fields.items():
        if field_name in SUPPORTED:
            continue
        value = getattr(service, field_name)
        default = info.get_default(call_default_factory=True)
        if value != default and value not in (None, (), {}, False):
            found.append(f"services.{service.name}.{field_name} is not supported by the swarm backend "
                         "(a Swarm service has no such option)")
    deploy = service.deploy
    if deploy is not None and deploy.resources.limits is not None and deploy.resources.limits.devices:
        found.append(f"services.{service.name}.deploy.resources.limits.devices is not supported by the swarm backend")
    return found


def _put(target: Json, key: str, value: Any) -> None:
    if value is not None and value != [] and value != {}:
        target[key] = value


def _nanos(duration: Any) -> int | None:
    return None if duration is None else int(duration.nanoseconds)


def _healthcheck(check: Healthcheck | None) -> Json | None:
    if check is None:
        return None
    if check.disable:
        return {"Test": ["NONE"]}
    result: Json = {}
    _put(result, "Test", list(check.test) if check.test else None)
    _put(result, "Interval", _nanos(check.interval))
    _put(result, "Timeout", _nanos(check.timeout))
    _put(result, "StartPeriod", _nanos(check.start_period))
    _put(result, "Retries", check.retries)
    return result


def _extra_host(entry: str) -> str:
    """``host:ip`` or ``host=ip`` -> ``ip host``, the /etc/hosts order Swarm takes."""
    separator = "=" if "=" in entry else ":"
    host, _, address = entry.partition(separator)
    return f"{address} {host}"


def _mounts(spec: ServiceSpec) -> list[Json]:
    mounts: list[Json] = []
    for volume in spec.service.volumes:
        mount: Json = {"Target": volume.target, "Type": volume.type, "ReadOnly": bool(volume.read_only)}
        if volume.type == "volume":
            if volume.source:
                mount["Source"] = spec.volume_names.get(volume.source, volume.source)
            mount["VolumeOptions"] = {"Labels": {STACK_NAMESPACE: spec.project_name}}
            if volume.volume is not None and volume.volume.nocopy:
                mount["VolumeOptions"]["NoCopy"] = True
        elif volume.type == "bind":
            mount["Source"] = volume.source
        elif volume.type == "tmpfs" and volume.tmpfs is not None and volume.tmpfs.size is not None:
            mount["TmpfsOptions"] = {"SizeBytes": int(volume.tmpfs.size)}
        mounts.append(mount)
    for entry in spec.service.tmpfs:
        mounts.append({"Type": "tmpfs", "Target": entry.partition(":")[0]})
    return mounts


def _grants(spec: ServiceSpec, kind: str, object_ids: Mapping[tuple[str, str], str]) -> list[Json]:
    """The service's secrets or configs; the engine wants each object's id beside its name."""
    result = []
    for grant in spec.grants:
        if grant.kind != kind:
            continue
        file = {"Name": grant.target, "UID": grant.uid, "GID": grant.gid, "Mode": grant.mode}
        prefix = "Secret" if kind == "secret" else "Config"
        result.append({"File": file, f"{prefix}Name": grant.name, f"{prefix}ID": object_ids[(kind, grant.name)]})
    return result


def container_spec(spec: ServiceSpec, object_ids: Mapping[tuple[str, str], str]) -> Json:
    service = spec.service
    result: Json = {"Image": spec.image, "Labels": dict(spec.container_labels)}
    _put(result, "Command", list(service.entrypoint) if service.entrypoint else None)
    _put(result, "Args", list(service.command) if service.command else None)
    _put(result, "Hostname", service.hostname)
    _put(result, "Env", sorted(f"{key}={value}" for key, value in service.environment.items() if value is not None))
    _put(result, "Dir", service.working_dir)
    _put(result, "User", service.user)
    _put(result, "Groups", list(service.group_add))
    _put(result, "Healthcheck", _healthcheck(service.healthcheck))
    _put(result, "Hosts", [_extra_host(entry) for entry in service.extra_hosts])
    dns: Json = {}
    _put(dns, "Nameservers", list(service.dns))
    _put(dns, "Search", list(service.dns_search))
    _put(dns, "Options", list(service.dns_opt))
    _put(result, "DNSConfig", dns)
    _put(result, "Secrets", _grants(spec, "secret", object_ids))
    _put(result, "Configs", _grants(spec, "config", object_ids))
    _put(result, "Init", service.init)
    _put(result, "Sysctls", dict(service.sysctls))
    _put(result, "CapabilityAdd", list(service.cap_add))
    _put(result, "CapabilityDrop", list(service.cap_drop))
    _put(result, "Ulimits", [{"Name": name, "Soft": limit.soft, "Hard": limit.hard}
                             for name, limit in sorted(service.ulimits.items())])
    _put(result, "Mounts", _mounts(spec))
    _put(result, "StopSignal", service.stop_signal)
    _put(result, "StopGracePeriod", _nanos(service.stop_grace_period))
    if service.tty:
        result["TTY"] = True
    if service.stdin_open:
        result["OpenStdin"] = True
    if service.read_only:
        result["ReadOnly"] = True
    _put(result, "Isolation", service.isolation)
    return result


def _resources(service: ServiceConfig) -> Json:
    result: Json = {}
    if service.deploy is None:
        return result
    for key, resource in (("Limits", service.deploy.resources.limits),
                          ("Reservations", service.deploy.resources.reservations)):
        if resource is None:
            continue
        entry: Json = {}
        _put(entry, "NanoCPUs", int(resource.cpus * _NANOS) if resource.cpus is not None else None)
        _put(entry, "MemoryBytes", int(resource.memory) if resource.memory is not None else None)
        if key == "Limits":
            _put(entry, "Pids", resource.pids)
        _put(result, key, entry)
    return result


def _restart_policy(service: ServiceConfig) -> Json | None:
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if policy is not None:
        result: Json = {}
        _put(result, "Condition", policy.condition)
        _put(result, "Delay", _nanos(policy.delay))
        _put(result, "MaxAttempts", policy.max_attempts)
        _put(result, "Window", _nanos(policy.window))
        return result
    if service.restart:  # as docker stack deploy: restart maps onto the policy's condition
        condition = _RESTART.get(service.restart.partition(":")[0])
        if condition is not None:
            return {"Condition": condition}
    return None


def _placement(service: ServiceConfig) -> Json | None:
    if service.deploy is None:
        return None
    placement = service.deploy.placement
    result: Json = {}
    _put(result, "Constraints", list(placement.constraints))
    _put(result, "Preferences", [{"Spread": {"SpreadDescriptor": preference.spread}}
                                 for preference in placement.preferences if preference.spread])
    _put(result, "MaxReplicas", placement.max_replicas_per_node)
    return result or None


def update_config(config: UpdateConfig | None) -> Json | None:
    if config is None:
        return None
    result: Json = {}
    _put(result, "Parallelism", config.parallelism)
    _put(result, "Delay", _nanos(config.delay))
    _put(result, "FailureAction", config.failure_action)
    _put(result, "Monitor", _nanos(config.monitor))
    _put(result, "MaxFailureRatio", config.max_failure_ratio)
    _put(result, "Order", config.order)
    return result


def mode(spec: ServiceSpec) -> Json:
    deploy = spec.service.deploy
    name = deploy.mode if deploy is not None and deploy.mode else "replicated"
    if name == "global":
        return {"Global": {}}
    if name == "global-job":
        return {"GlobalJob": {}}
    if name == "replicated-job":
        return {"ReplicatedJob": {"MaxConcurrent": spec.replicas or 1, "TotalCompletions": spec.replicas or 1}}
    return {"Replicated": {"Replicas": spec.replicas}}


def endpoint_spec(service: ServiceConfig) -> Json | None:
    result: Json = {}
    if service.deploy is not None and service.deploy.endpoint_mode:
        result["Mode"] = service.deploy.endpoint_mode
    ports = []
    for port in service.ports:
        entry: Json = {"Protocol": port.protocol, "TargetPort": port.target, "PublishMode": port.mode}
        if port.published:
            entry["PublishedPort"] = int(port.published.partition("-")[0])
        ports.append(entry)
    _put(result, "Ports", ports)
    return result or None


def service_arguments(spec: ServiceSpec, object_ids: Mapping[tuple[str, str], str], *,
                      force_update: int = 0) -> Json:
    """``APIClient.create_service``/``update_service`` keyword arguments (Engine API dictionaries);
    ``object_ids``: (kind, name) -> id of each secret and config the service uses."""
    service = spec.service
    task: Json = {"ContainerSpec": container_spec(spec, object_ids)}
    _put(task, "Resources", _resources(service))
    _put(task, "RestartPolicy", _restart_policy(service))
    _put(task, "Placement", _placement(service))
    _put(task, "Networks", [{"Target": attachment.network_name, "Aliases": list(attachment.aliases)}
                            for attachment in spec.networks])
    if service.logging is not None and service.logging.driver:
        task["LogDriver"] = {"Name": service.logging.driver, "Options": dict(service.logging.options)}
    if force_update:
        task["ForceUpdate"] = force_update
    arguments: Json = {"task_template": task, "name": spec.service_name, "labels": dict(spec.labels),
                       "mode": mode(spec)}
    deploy = service.deploy
    _put(arguments, "update_config", update_config(deploy.update_config if deploy is not None else None))
    _put(arguments, "rollback_config", update_config(deploy.rollback_config if deploy is not None else None))
    _put(arguments, "endpoint_spec", endpoint_spec(service))
    return arguments


def labels_of(item: Mapping[str, Any]) -> Mapping[str, str]:
    spec = item.get("Spec") or {}
    found: Mapping[str, str] = spec.get("Labels") or {}
    return found
