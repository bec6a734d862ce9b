"""Stage 4: the canonical long syntax, per document and before merging.

Every attribute that Compose lets users write in several shapes is turned into one shape
here (``ports: ["80:80"]`` into port mappings, ``environment: [A=b]`` into a mapping,
``command: "a b"`` into a list...), so that the merge stage combines like with like.
The rules are a table keyed by service attribute (``SERVICE_RULES``); adding support for
an attribute means adding one row and, if needed, one small function.

Values the schema allowed but whose content is wrong (``ports: ["x:y"]``) raise
CanonicalError with the model path of the value.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable
from typing import Any

from composer.spec import shortsyntax
from composer.spec.modelpath import PathKey
from composer.spec.units import UnitError, normalize_duration, parse_bytes


class CanonicalError(ValueError):
    """A value is well-typed but cannot be understood; ``path`` says where."""

    def __init__(self, path: PathKey, message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


Rule = Callable[[Any, PathKey], Any]


def go_string(value: Any) -> str:
    """A YAML scalar as Go's fmt prints it (how v2 stringifies mapping values)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value)) if abs(value) < 1e21 and len(str(int(value))) <= 20 else repr(value)
        return repr(value)
    return str(value)


def mapping_with_equals(value: Any, path: PathKey) -> dict[str, str | None]:
    """environment-like: ``[A=b, C]`` or ``{A: b, C: null}``; a bare key maps to null."""
    if isinstance(value, dict):
        return {key: None if item is None else go_string(item) for key, item in value.items()}
    result: dict[str, str | None] = {}
    for item in value or []:
        text = go_string(item)
        key, sep, rest = text.partition("=")
        result[key] = rest if sep else None
    return result


def mapping(value: Any, path: PathKey) -> dict[str, str]:
    """labels-like: ``[A=b, C]`` or ``{A: b, C: null}``; a bare key maps to an empty string."""
    if isinstance(value, dict):
        return {key: "" if item is None else go_string(item) for key, item in value.items()}
    result: dict[str, str] = {}
    for item in value or []:
        key, _, rest = go_string(item).partition("=")
        result[key] = rest
    return result


def string_list(value: Any, path: PathKey) -> list[str]:
    """A string or a list of strings (dns, tmpfs...) as a list."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [go_string(item) for item in value]
    return [go_string(value)]


def shell_command(value: Any, path: PathKey) -> list[str] | None:
    """command/entrypoint: a string is split as a POSIX shell would split it."""
    if value is None:
        return None
    if isinstance(value, list):
        return [go_string(item) for item in value]
    try:
        return shlex.split(str(value))
    except ValueError as exc:
        raise CanonicalError(path, f"invalid command line {value!r}: {exc}") from None


def duration(value: Any, path: PathKey) -> str:
    try:
        return normalize_duration(value)
    except UnitError as exc:
        raise CanonicalError(path, str(exc)) from None


def byte_size(value: Any, path: PathKey) -> int:
    try:
        return parse_bytes(value)
    except UnitError as exc:
        raise CanonicalError(path, str(exc)) from None


def ports(value: Any, path: PathKey) -> list[Any]:
    result: list[Any] = []
    for index, entry in enumerate(value or []):
        if isinstance(entry, dict):
            port = dict(entry)
            if isinstance(port.get("published"), int) and not isinstance(port.get("published"), bool):
                port["published"] = str(port["published"])
            if isinstance(port.get("target"), str):
                try:
                    port["target"] = int(port["target"])
                except ValueError:
                    raise CanonicalError((*path, index, "target"), "invalid port target") from None
            result.append(port)
            continue
        try:
            result.extend(shortsyntax.parse_port(go_string(entry)))
        except ValueError as exc:
            raise CanonicalError((*path, index), str(exc)) from None
    return result


def volumes(value: Any, path: PathKey) -> list[Any]:
    result: list[Any] = []
    for index, entry in enumerate(value or []):
        if isinstance(entry, dict):
            result.append(_clean_target(_long_volume(entry, (*path, index))))
            continue
        try:
            result.append(_clean_target(shortsyntax.parse_volume(entry)))
        except ValueError as exc:
            raise CanonicalError((*path, index), str(exc)) from None
    return result


def go_path_clean(path: str) -> str:
    """Go's ``path.Clean``: ``.`` and ``..`` resolved lexically, repeated and trailing slashes
    dropped (``/data/`` -> ``/data``, ``//a`` -> ``/a``, ``""`` -> ``.``)."""
    import posixpath

    cleaned = posixpath.normpath(path) if path else "."
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def _clean_target(volume: Any) -> Any:
    """A mount's target as compose-go cleans it (transform/volume.go ``cleanTarget``, short and long
    syntax alike): the only path of a service v2 cleans (not tmpfs, working_dir, devices, secrets,
    configs or develop.watch targets: checked side by side)."""
    if isinstance(volume, dict) and isinstance(volume.get("target"), str) and volume["target"]:
        return {**volume, "target": go_path_clean(volume["target"])}
    return volume


def _long_volume(entry: dict[str, Any], path: PathKey) -> dict[str, Any]:
    volume = dict(entry)
    if volume.get("type") == "bind" and not volume.get("source"):
        raise CanonicalError(path, "invalid mount config for type \"bind\": field Source must not be empty")
    tmpfs = volume.get("tmpfs")
    if isinstance(tmpfs, dict) and "size" in tmpfs:
        volume["tmpfs"] = {**tmpfs, "size": byte_size(tmpfs["size"], (*path, "tmpfs", "size"))}
    return volume


def devices(value: Any, path: PathKey) -> list[Any]:
    result: list[Any] = []
    for index, entry in enumerate(value or []):
        if isinstance(entry, dict):
            result.append(entry)
            continue
        try:
            result.append(shortsyntax.parse_device(entry))
        except ValueError as exc:
            raise CanonicalError((*path, index), str(exc)) from None
    return result


def extra_hosts(value: Any, path: PathKey) -> list[str]:
    if isinstance(value, dict):
        hosts = []
        for host, ips in sorted(value.items()):
            for ip in ips if isinstance(ips, list) else [ips]:
                hosts.append(f"{host}={go_string(ip)}")
        return hosts
    result: list[str] = []
    for index, entry in enumerate(value or []):
        try:
            host, ip = shortsyntax.parse_extra_host(go_string(entry))
        except ValueError as exc:
            raise CanonicalError((*path, index), str(exc)) from None
        result.extend(f"{host}={address}" for address in ip.split(","))
    return result


def depends_on(value: Any, path: PathKey) -> dict[str, Any]:
    if isinstance(value, list):
        return {name: {"condition": "service_started", "required": True} for name in value}
    result: dict[str, Any] = {}
    for name, entry in (value or {}).items():
        dependency = dict(entry or {})
        dependency.setdefault("condition", "service_started")
        dependency.setdefault("required", True)
        result[name] = dependency
    return result


def service_networks(value: Any, path: PathKey) -> dict[str, Any]:
    if isinstance(value, list):
        return dict.fromkeys(value)
    return dict(value or {})


def file_mounts(value: Any, path: PathKey) -> list[Any]:
    """secrets/configs of a service: a name, or a mapping with an octal mode."""
    result = []
    for index, entry in enumerate(value or []):
        if not isinstance(entry, dict):
            result.append({"source": entry})
            continue
        mount = dict(entry)
        mode = mount.get("mode")
        if isinstance(mode, str):
            # v2 reads a string mode as octal digits (strconv.ParseInt base 8): "440" is 0440.
            if not _OCTAL.fullmatch(mode):
                raise CanonicalError((*path, index, "mode"), f'strconv.ParseInt: parsing "{mode}": invalid syntax')
            mode = int(mode, 8)
        if isinstance(mode, int) and not isinstance(mode, bool):
            mount["mode"] = f"0{mode:o}"
        result.append(mount)
    return result


_OCTAL = re.compile(r"[+-]?[0-7]+")


def env_files(value: Any, path: PathKey) -> list[dict[str, Any]]:
    entries = value if isinstance(value, list) else [value]
    result = []
    for entry in entries:
        if isinstance(entry, dict):
            env_file = dict(entry)
            env_file.setdefault("required", True)
            result.append(env_file)
        else:
            result.append({"path": entry, "required": True})
    return result


def healthcheck(value: Any, path: PathKey) -> dict[str, Any]:
    check = dict(value or {})
    test = check.get("test")
    if isinstance(test, str):
        check["test"] = ["CMD-SHELL", test]
    for key in ("interval", "timeout", "start_period", "start_interval"):
        if key in check and check[key] is not None:
            check[key] = duration(check[key], (*path, key))
    return check


def ulimits(value: Any, path: PathKey) -> dict[str, Any]:
    return dict(value or {})


def device_requests(value: Any, path: PathKey) -> list[Any]:
    """gpus and deploy devices: ``count: all`` is -1, the default when no device_ids are named."""
    if value == "all":
        return [{"count": -1}]
    result = []
    for index, entry in enumerate(value or []):
        device = dict(entry)
        count = device.get("count")
        if count == "all" or ("count" not in device and "device_ids" not in device):
            device["count"] = -1
        elif isinstance(count, str):
            try:
                device["count"] = int(count)
            except ValueError:
                raise CanonicalError((*path, index, "count"), f"invalid value {count!r}, the only value "
                                     "allowed is 'all' or a number") from None
        if "count" in entry and "device_ids" in device:
            raise CanonicalError((*path, index), "count and device_ids attributes are mutually exclusive")
        if isinstance(device.get("options"), dict):
            device["options"] = mapping(device["options"], (*path, index, "options"))
        result.append(device)
    return result


def build(value: Any, path: PathKey) -> dict[str, Any]:
    if isinstance(value, str):
        return {"context": value}
    config = dict(value or {})
    for key, rule in BUILD_RULES.items():
        if key in config and config[key] is not None:
            config[key] = rule(config[key], (*path, key))
    return config


def ssh(value: Any, path: PathKey) -> list[str]:
    if isinstance(value, dict):
        value = [f"{key}={item}" if item is not None else key for key, item in value.items()]
    keys = string_list(value, path)
    for index, key in enumerate(keys):
        if "=" in key:
            # v2 accepts the KEY=PATH form when reading but cannot print it back.
            raise CanonicalError((*path, index), f"ssh key {key!r}: the id=path form is not supported")
    return keys


def deploy(value: Any, path: PathKey) -> dict[str, Any]:
    config = dict(value or {})
    if "labels" in config:
        config["labels"] = mapping(config["labels"], (*path, "labels"))
    for section in ("update_config", "rollback_config", "restart_policy"):
        if isinstance(config.get(section), dict):
            config[section] = _durations(config[section], (*path, section), ("delay", "monitor", "window"))
    resources = config.get("resources")
    if isinstance(resources, dict):
        config["resources"] = {
            kind: _resource_limits(limits, (*path, "resources", kind)) if isinstance(limits, dict) else limits
            for kind, limits in resources.items()
        }
    return config


def _durations(section: dict[str, Any], path: PathKey, keys: tuple[str, ...]) -> dict[str, Any]:
    result = dict(section)
    for key in keys:
        if result.get(key) is not None:
            result[key] = duration(result[key], (*path, key))
    return result


def _resource_limits(limits: dict[str, Any], path: PathKey) -> dict[str, Any]:
    result = dict(limits)
    if "cpus" in result:
        result["cpus"] = _cpus(result["cpus"], (*path, "cpus"))
    if "memory" in result:
        result["memory"] = byte_size(result["memory"], (*path, "memory"))
    if "devices" in result:
        result["devices"] = device_requests(result["devices"], (*path, "devices"))
    return result


def _cpus(value: Any, path: PathKey) -> float:
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        raise CanonicalError(path, f"invalid cpus value {value!r}") from None
    if not math.isfinite(cpus):  # v2 takes "inf" and "nan" here; no engine can
        raise CanonicalError(path, f"invalid cpus value {value!r}: not a finite number")
    return cpus


def _provider(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("options"), dict):
        return value
    options = {
        key: [go_string(item) for item in entry] if isinstance(entry, list) else [go_string(entry)]
        for key, entry in value["options"].items()
    }
    return {**value, "options": options}


def logging(value: Any, path: PathKey) -> dict[str, Any]:
    config = dict(value or {})
    if isinstance(config.get("options"), dict):
        config["options"] = {
            key: None if item is None else go_string(item) for key, item in config["options"].items()
        }
    return config


def blkio(value: Any, path: PathKey) -> dict[str, Any]:
    config = dict(value or {})
    for key in ("device_read_bps", "device_write_bps"):
        if isinstance(config.get(key), list):
            config[key] = [
                {**entry, "rate": byte_size(entry.get("rate"), (*path, key, index, "rate"))}
                if isinstance(entry, dict) and "rate" in entry else entry
                for index, entry in enumerate(config[key])
            ]
    return config


def hooks(value: Any, path: PathKey) -> list[Any]:
    result = []
    for index, hook in enumerate(value or []):
        hook = dict(hook)
        if "command" in hook:
            hook["command"] = shell_command(hook["command"], (*path, index, "command"))
        if "environment" in hook:
            hook["environment"] = mapping_with_equals(hook["environment"], (*path, index, "environment"))
        result.append(hook)
    return result


def develop(value: Any, path: PathKey) -> dict[str, Any]:
    config = dict(value or {})
    watch = config.get("watch")
    if isinstance(watch, list):
        rules = []
        for index, rule in enumerate(watch):
            rule = dict(rule)
            if isinstance(rule.get("exec"), dict):
                rule["exec"] = hooks([rule["exec"]], (*path, "watch", index, "exec"))[0]
            for key in ("ignore", "include"):
                if isinstance(rule.get(key), str):
                    rule[key] = [rule[key]]
            rules.append(rule)
        config["watch"] = rules
    return config


def stringified_list(value: Any, path: PathKey) -> list[str]:
    return [go_string(item) for item in value or []]


BUILD_RULES: dict[str, Rule] = {
    "args": mapping_with_equals,
    "labels": mapping,
    "additional_contexts": mapping,
    "extra_hosts": extra_hosts,
    "ssh": ssh,
    "secrets": file_mounts,
    "shm_size": byte_size,
    "ulimits": ulimits,
    "cache_from": stringified_list,
    "cache_to": stringified_list,
    "tags": stringified_list,
    "platforms": stringified_list,
    "sbom": lambda value, path: go_string(value),
    "provenance": lambda value, path: go_string(value),
}

SERVICE_RULES: dict[str, Rule] = {
    "annotations": mapping,
    "blkio_config": blkio,
    "build": build,
    "command": shell_command,
    "configs": file_mounts,
    "depends_on": depends_on,
    "deploy": deploy,
    "devices": devices,
    "dns": string_list,
    "dns_opt": string_list,
    "dns_search": string_list,
    "entrypoint": shell_command,
    "env_file": env_files,
    "label_file": string_list,
    "environment": mapping_with_equals,
    "expose": stringified_list,
    "extra_hosts": extra_hosts,
    "gpus": device_requests,
    "models": lambda value, path: dict.fromkeys(value) if isinstance(value, list) else value,
    "provider": lambda value, path: _provider(value),
    "group_add": stringified_list,
    "healthcheck": healthcheck,
    "labels": mapping,
    "logging": logging,
    "mem_limit": byte_size,
    "mem_reservation": byte_size,
    "memswap_limit": byte_size,
    "mem_swappiness": byte_size,
    "networks": service_networks,
    "ports": ports,
    "secrets": file_mounts,
    "shm_size": byte_size,
    "stop_grace_period": duration,
    "storage_opt": mapping,
    "sysctls": mapping,
    "tmpfs": string_list,
    "ulimits": ulimits,
    "volumes": volumes,
    "post_start": hooks,
    "pre_stop": hooks,
    "develop": develop,
}


class NullService(dict[str, Any]):
    """A service written as ``name:`` with no body; it reads as an empty mapping."""


def canonical_service(service: Any, path: PathKey) -> dict[str, Any]:
    """One service in long syntax (a null service is an empty one)."""
    if isinstance(service, NullService):
        return service
    result = dict(service or {})
    for key, value in list(result.items()):
        rule = SERVICE_RULES.get(key)
        if rule is not None and value is not None:
            result[key] = rule(value, (*path, key))
        elif key in ("command", "entrypoint") and value is None:
            result[key] = None
    if isinstance(result.get("extends"), str):
        result["extends"] = {"service": result["extends"]}
    return result


def canonical_resource(resource: Any, path: PathKey, warnings: list[str]) -> dict[str, Any]:
    """A network, volume, secret or config; ``external: {name: x}`` becomes ``name`` + ``external``."""
    result = dict(resource or {})
    for key in ("labels", "driver_opts"):
        if isinstance(result.get(key), list | dict):
            result[key] = mapping(result[key], (*path, key))
    ipam = result.get("ipam")
    if isinstance(ipam, dict) and isinstance(ipam.get("options"), dict):
        result["ipam"] = {**ipam, "options": mapping(ipam["options"], (*path, "ipam", "options"))}
    external = result.get("external")
    if isinstance(external, dict):
        kind, name = path[0], path[1]
        if "name" in external and result.get("name") and result["name"] != external["name"]:
            raise CanonicalError(path, f"{kind}.{name}: name and external.name conflict; only use name")
        warnings.append(f"{kind}.{name}: external.name is deprecated. Please set name and external: true")
        if "name" in external:
            result["name"] = external["name"]
        result["external"] = True
    return result


def canonical_tree(tree: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
    """The whole document in long syntax."""
    result = dict(tree)
    services = tree.get("services")
    if isinstance(services, dict):
        result["services"] = {
            name: canonical_service(service, ("services", name)) for name, service in services.items()
        }
    for kind in ("networks", "volumes", "secrets", "configs"):
        resources = tree.get(kind)
        if isinstance(resources, dict):
            result[kind] = {
                name: canonical_resource(resource, (kind, name), warnings)
                for name, resource in resources.items()
            }
    return result
