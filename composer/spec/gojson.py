"""Compose v2's configuration hashes: Go's encoding/json of compose-go's ServiceConfig and NetworkConfig.

v2 labels each container with ``com.docker.compose.config-hash``: the sha256 of the service
marshalled by Go's ``json.Marshal`` (compact, struct fields in declaration order, map keys
sorted, ``<``, ``>`` and ``&`` escaped), without build, pull_policy, scale, deploy.replicas,
depends_on and profiles. The service it marshals is the one ``config --format json`` prints, so
the input here is composer.spec.render's form of a service. Computing the same hash lets each
tool keep the containers the other created.

The field orders below are compose-go's struct declarations, as v2.40.3's output shows them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

# Fields v2 clears before hashing: they never change a running container.
HASH_IGNORED = ("build", "pull_policy", "scale", "depends_on", "profiles")

_SERVICE = (
    "profiles", "annotations", "attach", "build", "develop", "blkio_config", "cap_add", "cap_drop", "cgroup_parent",
    "cgroup", "cpu_count", "cpu_percent", "cpu_period", "cpu_quota", "cpu_rt_period", "cpu_rt_runtime", "cpus",
    "cpuset", "cpu_shares", "command", "configs", "container_name", "credential_spec", "depends_on", "deploy",
    "device_cgroup_rules", "devices", "dns", "dns_opt", "dns_search", "dockerfile", "domainname", "entrypoint",
    "provider", "environment", "env_file", "expose", "extends", "external_links", "extra_hosts", "group_add", "gpus",
    "hostname", "healthcheck", "image", "init", "ipc", "isolation", "labels", "label_file", "links", "logging",
    "log_driver", "log_opt", "mem_limit", "mem_reservation", "memswap_limit", "mem_swappiness", "mac_address",
    "models", "net", "network_mode", "networks", "oom_kill_disable", "oom_score_adj", "pid", "pids_limit",
    "platform", "ports", "privileged", "pull_policy", "read_only", "restart", "runtime", "scale", "secrets",
    "security_opt", "shm_size", "stdin_open", "stop_grace_period", "stop_signal", "storage_opt", "sysctls", "tmpfs",
    "tty", "ulimits", "use_api_socket", "user", "userns_mode", "uts", "volume_driver", "volumes", "volumes_from",
    "working_dir", "post_start", "pre_stop",
)
_FILE_REFERENCE = ("source", "target", "uid", "gid", "mode")
_UPDATE = ("parallelism", "delay", "failure_action", "monitor", "max_failure_ratio", "order")
_RESOURCE = ("cpus", "memory", "pids", "devices", "generic_resources")
_DEVICE_REQUEST = ("capabilities", "driver", "count", "device_ids", "options")

STRUCTS: dict[str, tuple[str, ...]] = {
    "service": _SERVICE,
    "service.blkio_config": ("weight", "weight_device", "device_read_bps", "device_read_iops", "device_write_bps",
                             "device_write_iops"),
    "service.blkio_config.weight_device[]": ("Path", "Weight"),
    "service.blkio_config.device_read_bps[]": ("Path", "Rate"),
    "service.blkio_config.device_read_iops[]": ("Path", "Rate"),
    "service.blkio_config.device_write_bps[]": ("Path", "Rate"),
    "service.blkio_config.device_write_iops[]": ("Path", "Rate"),
    "service.configs[]": _FILE_REFERENCE,
    "service.secrets[]": _FILE_REFERENCE,
    "service.credential_spec": ("config", "file", "registry"),
    "service.deploy": ("mode", "replicas", "labels", "update_config", "rollback_config", "resources",
                       "restart_policy", "placement", "endpoint_mode"),
    "service.deploy.update_config": _UPDATE,
    "service.deploy.rollback_config": _UPDATE,
    "service.deploy.resources": ("limits", "reservations"),
    "service.deploy.resources.limits": _RESOURCE,
    "service.deploy.resources.reservations": _RESOURCE,
    "service.deploy.resources.limits.devices[]": _DEVICE_REQUEST,
    "service.deploy.resources.reservations.devices[]": _DEVICE_REQUEST,
    "service.deploy.resources.reservations.generic_resources[]": ("discrete_resource_spec",),
    "service.deploy.resources.reservations.generic_resources[].discrete_resource_spec": ("kind", "value"),
    "service.deploy.restart_policy": ("condition", "delay", "max_attempts", "window"),
    "service.deploy.placement": ("constraints", "preferences", "max_replicas_per_node"),
    "service.deploy.placement.preferences[]": ("spread",),
    "service.develop": ("watch",),
    "service.develop.watch[]": ("path", "action", "target", "exec", "ignore", "include", "initial_sync"),
    "service.develop.watch[].exec": ("command", "user", "privileged", "working_dir", "environment"),
    "service.devices[]": ("source", "target", "permissions"),
    "service.env_file[]": ("path", "required", "format"),
    "service.extends": ("file", "service"),
    "service.gpus[]": _DEVICE_REQUEST,
    "service.healthcheck": ("test", "timeout", "interval", "retries", "start_period", "start_interval", "disable"),
    "service.logging": ("driver", "options"),
    "service.models": ("endpoint_var", "model_var"),
    "service.networks": ("aliases", "driver_opts", "gw_priority", "interface_name", "ipv4_address", "ipv6_address",
                         "link_local_ips", "mac_address", "priority"),
    "service.ports[]": ("name", "mode", "host_ip", "target", "published", "protocol", "app_protocol"),
    "service.post_start[]": ("command", "user", "privileged", "working_dir", "environment"),
    "service.pre_stop[]": ("command", "user", "privileged", "working_dir", "environment"),
    "service.provider": ("type", "options"),
    "service.ulimits": ("soft", "hard"),
    "service.volumes[]": ("type", "source", "target", "read_only", "consistency", "bind", "volume", "tmpfs",
                          "image"),
    "service.volumes[].bind": ("selinux", "propagation", "create_host_path", "recursive"),
    "service.volumes[].volume": ("labels", "nocopy", "subpath"),
    "service.volumes[].tmpfs": ("size", "mode"),
    "service.volumes[].image": ("subpath",),
    "network": ("name", "driver", "driver_opts", "ipam", "external", "internal", "attachable", "labels",
                "enable_ipv4", "enable_ipv6"),
    "network.ipam": ("driver", "config"),
    "network.ipam.config[]": ("subnet", "gateway", "ip_range", "aux_addresses"),
}
# Attributes that are Go maps (keys sorted; their values are structs of the same name, if any).
MAPS = frozenset({
    "environment", "labels", "annotations", "sysctls", "storage_opt", "driver_opts", "options", "args",
    "additional_contexts", "extra_labels", "log_opt", "networks", "ulimits", "models", "aux_addresses",
})


def _ordered(value: dict[str, Any], context: str) -> list[tuple[str, Any]]:
    order = STRUCTS.get(context)
    if order is None:
        return sorted(value.items())
    rank = {key: index for index, key in enumerate(order)}
    return sorted(value.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0]))


def _go(value: Any, context: str, *, in_map: bool = False) -> Any:
    """``value`` with its keys in the order Go writes them (dicts keep insertion order), numbers as
    Go prints them. ``in_map``: ``value`` is an entry of the map ``context`` (a struct of it)."""
    if isinstance(value, dict):
        if not in_map and context.rsplit(".", 1)[-1] in MAPS:  # a map: sorted keys, struct values
            return {name: _go(item, context, in_map=True) for name, item in sorted(value.items())}
        return {name: _go(item, f"{context}.{name}") for name, item in _ordered(value, context)}
    if isinstance(value, list):
        return [_go(item, f"{context}[]") for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return int(value)  # Go prints 2, not 2.0
    return value


def go_json(value: Any, context: str) -> str:
    """Compact JSON as Go's json.Marshal writes ``value``, a struct of ``context``."""
    text = json.dumps(_go(value, context), separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"), ("\u2028", "\\u2028"),
                          ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def network_hash(network: dict[str, Any]) -> str:
    """v2's config hash of a network (``com.docker.compose.config-hash`` on the networks it
    creates), given as ``config --format json`` prints it."""
    return hashlib.sha256(go_json(network, "network").encode("utf-8")).hexdigest()


def service_hash(service: dict[str, Any]) -> str:
    """v2's config hash of ``service``, given as ``config --format json`` prints it."""
    hashed = {key: value for key, value in service.items() if key not in HASH_IGNORED}
    deploy = hashed.get("deploy")
    if isinstance(deploy, dict):
        hashed["deploy"] = {key: value for key, value in deploy.items() if key != "replicas"}
    return hashlib.sha256(go_json(hashed, "service").encode("utf-8")).hexdigest()
