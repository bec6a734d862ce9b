"""Stage 8: the checks that no schema can express.

``validate_objects`` runs on every load (mutually exclusive attributes of one object);
``check_consistency`` is the cross-reference check that ``--no-consistency`` skips: every
name a service uses must be defined, dependencies must not loop, and so on. Each error
carries the model path of the offending value.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from composer.errors import SourceLocation, SpecValidationError
from composer.spec.modelpath import PathKey, format_path
from composer.spec.units import UnitError, parse_bytes

Locate = Callable[[PathKey], SourceLocation | None]


def _fail(message: str, path: PathKey, locate: Locate) -> SpecValidationError:
    return SpecValidationError(message, location=locate(path), path=format_path(path))


def validate_objects(tree: dict[str, Any], locate: Locate) -> None:
    """Rules on single objects: exclusive attributes, external resources, host IPs."""
    for name, volume in (tree.get("volumes") or {}).items():
        if isinstance(volume, dict) and volume.get("external"):
            for key in ("driver", "driver_opts", "labels"):
                if volume.get(key):
                    raise _fail(f'conflicting parameters "external" and "{key}" specified for volume "{name}"',
                                ("volumes", name), locate)
    for name, network in (tree.get("networks") or {}).items():
        if isinstance(network, dict) and network.get("external"):
            for key in ("driver", "driver_opts", "ipam", "internal", "labels"):
                if network.get(key):
                    raise _fail(f'conflicting parameters "external" and "{key}" specified for network "{name}"',
                                ("networks", name), locate)
    _check_file_objects(tree, "configs", ("file", "environment", "content"), locate)
    _check_file_objects(tree, "secrets", ("file", "environment"), locate)
    for service_name, service in (tree.get("services") or {}).items():
        _validate_service(service_name, service or {}, locate)


def _check_file_objects(tree: dict[str, Any], kind: str, keys: tuple[str, ...], locate: Locate) -> None:
    for name, item in (tree.get(kind) or {}).items():
        item = item or {}
        present = [key for key in keys if key in item]
        if len(present) > 1:
            raise _fail(f"{'|'.join(keys)} attributes are mutually exclusive", (kind, name), locate)
        if not present and "driver" not in item and "external" not in item:
            raise _fail(f"one of {'|'.join(keys)} must be set", (kind, name), locate)


def _validate_service(name: str, service: dict[str, Any], locate: Locate) -> None:
    for index, port in enumerate(service.get("ports") or []):
        host_ip = port.get("host_ip") if isinstance(port, dict) else None
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError:
                raise _fail(f"invalid ip address: {host_ip}", ("services", name, "ports", index), locate) from None
    requests = list(enumerate(service.get("gpus") or []))
    for index, device in requests:
        if isinstance(device, dict) and "count" in device and "device_ids" in device:
            raise _fail("count and device_ids attributes are mutually exclusive",
                        ("services", name, "gpus", index), locate)


def check_consistency(tree: dict[str, Any], disabled: dict[str, Any], locate: Locate) -> None:
    """Cross references between services and resources; dependency cycles.

    :raises SpecValidationError: at the first inconsistency.
    """
    services: dict[str, Any] = tree.get("services") or {}
    container_names: dict[str, str] = {}
    for name, service in services.items():
        _check_service(tree, name, service, disabled, locate)
        container_name = service.get("container_name")
        if container_name and container_name in container_names:
            raise _fail(f'container name "{container_name}" is already in use by service '
                        f'{container_names[container_name]}', ("services", name, "container_name"), locate)
        if container_name:
            container_names[container_name] = name
    for name, secret in (tree.get("secrets") or {}).items():
        if not secret.get("external") and not secret.get("file") and not secret.get("environment"):
            raise _fail(f'secret "{name}" must declare either `file` or `environment`', ("secrets", name), locate)
    check_dependency_cycles(services, locate)


def _check_service(
    tree: dict[str, Any], name: str, service: dict[str, Any], disabled: dict[str, Any], locate: Locate
) -> None:
    path: PathKey = ("services", name)
    build = service.get("build")
    if build is None and not service.get("image") and not service.get("provider"):
        raise _fail(f'service "{name}" has neither an image nor a build context specified', path, locate)
    if isinstance(build, dict) and build.get("dockerfile_inline") and build.get("dockerfile"):
        raise _fail(f'service "{name}" declares mutually exclusive dockerfile and dockerfile_inline',
                    (*path, "build"), locate)
    if isinstance(build, dict) and build.get("platforms") and service.get("platform"):
        if service["platform"] not in build["platforms"]:
            raise _fail(f'service.build.platforms MUST include service.platform "{service["platform"]}"',
                        (*path, "build", "platforms"), locate)
    if service.get("network_mode") and service.get("networks"):
        raise _fail(f"service {name} declares mutually exclusive `network_mode` and `networks`",
                    (*path, "network_mode"), locate)
    networks = tree.get("networks") or {}
    for network in service.get("networks") or {}:
        if network not in networks:
            raise _fail(f'service "{name}" refers to undefined network {network}', (*path, "networks", network), locate)
    test = (service.get("healthcheck") or {}).get("test")
    if test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        raise _fail('healthcheck.test must start either by "CMD", "CMD-SHELL" or "NONE"',
                    (*path, "healthcheck", "test"), locate)
    services = tree.get("services") or {}
    for dependency, condition in (service.get("depends_on") or {}).items():
        if dependency in services:
            continue
        if dependency in disabled and not (condition or {}).get("required", True):
            continue
        raise _fail(f'service "{name}" depends on undefined service "{dependency}"',
                    (*path, "depends_on", dependency), locate)
    mode = service.get("network_mode")
    if isinstance(mode, str) and mode.startswith("service:") and mode[8:] not in services:
        raise _fail(f"service \"{mode[8:]}\" not found for network_mode 'service:{mode[8:]}'",
                    (*path, "network_mode"), locate)
    _check_references(tree, name, service, locate)
    _check_scale(name, service, locate)
    _check_resources(name, service, locate)
    _check_mount_targets(name, service, locate)


def _check_references(tree: dict[str, Any], name: str, service: dict[str, Any], locate: Locate) -> None:
    path: PathKey = ("services", name)
    volumes = tree.get("volumes") or {}
    for index, mount in enumerate(service.get("volumes") or []):
        source = mount.get("source")
        if mount.get("type") == "volume" and source and source not in volumes:
            raise _fail(f'service "{name}" refers to undefined volume {source}', (*path, "volumes", index), locate)
    build = service.get("build")
    secrets = tree.get("secrets") or {}
    if isinstance(build, dict):
        for index, secret in enumerate(build.get("secrets") or []):
            if secret.get("source") not in secrets:
                raise _fail(f'service "{name}" refers to undefined build secret {secret.get("source")}',
                            (*path, "build", "secrets", index), locate)
    configs = tree.get("configs") or {}
    for index, config in enumerate(service.get("configs") or []):
        if config.get("source") not in configs:
            raise _fail(f'service "{name}" refers to undefined config {config.get("source")}',
                        (*path, "configs", index), locate)
    models = tree.get("models") or {}
    for model in service.get("models") or {}:
        if model not in models:
            raise _fail(f'service "{name}" refers to undefined model {model}', (*path, "models", model), locate)
    for index, secret in enumerate(service.get("secrets") or []):
        if secret.get("source") not in secrets:
            raise _fail(f'service "{name}" refers to undefined secret {secret.get("source")}',
                        (*path, "secrets", index), locate)


def _check_scale(name: str, service: dict[str, Any], locate: Locate) -> None:
    path: PathKey = ("services", name)
    scale = service.get("scale")
    replicas = (service.get("deploy") or {}).get("replicas")
    if scale is not None and replicas is not None and scale != replicas:
        raise _fail("can't set distinct values on 'scale' and 'deploy.replicas'", (*path, "scale"), locate)
    if scale is not None and scale < 0:
        raise _fail(f"invalid scale value {scale}", (*path, "scale"), locate)
    effective = scale if scale is not None else replicas
    if effective is not None and effective > 1 and service.get("container_name"):
        attribute = "scale" if scale is not None else "deploy.replicas"
        raise _fail(f"can't set container_name and {attribute} as container name must be unique",
                    (*path, "container_name"), locate)


# A service key and the deploy.resources field that says the same: compose-go's checkConsistency
# refuses distinct values, an absent field included once its ``limits``/``reservations`` exists.
_RESOURCE_ALIASES = (("cpus", "limits", "cpus"), ("mem_limit", "limits", "memory"),
                     ("mem_reservation", "reservations", "memory"), ("pids_limit", "limits", "pids"))


def _resource_value(key: str, value: Any) -> float:
    if value is None:
        return 0.0
    if key in ("mem_limit", "mem_reservation", "memory"):
        try:
            return float(parse_bytes(value))
        except UnitError:
            return float("nan")  # the schema or the binding names the bad value
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _check_resources(name: str, service: dict[str, Any], locate: Locate) -> None:
    resources = (service.get("deploy") or {}).get("resources") or {}
    for key, group, field in _RESOURCE_ALIASES:
        value = _resource_value(key, service.get(key))
        section = resources.get(group)
        if not value or section is None:
            continue
        if _resource_value(field, section.get(field)) != value:
            raise _fail(f"can't set distinct values on '{key}' and 'deploy.resources.{group}.{field}'",
                        ("services", name, key), locate)


def _check_mount_targets(name: str, service: dict[str, Any], locate: Locate) -> None:
    mounted: dict[str, str] = {}
    for index, tmpfs in enumerate(service.get("tmpfs") or []):
        target = tmpfs.split(":")[0]
        here = f"services.{name}.tmpfs[{index}]"
        if target in mounted:
            raise _fail(f"target {target} already mounted as {mounted[target]}",
                        ("services", name, "tmpfs", index), locate)
        mounted[target] = here
    for index, mount in enumerate(service.get("volumes") or []):
        target = mount.get("target")
        here = f"services.{name}.volumes[{index}]"
        if target in mounted:
            raise _fail(f"target {target} already mounted as {mounted[target]}",
                        ("services", name, "volumes", index), locate)
        mounted[target] = here


def check_dependency_cycles(services: dict[str, Any], locate: Locate) -> None:
    """Refuse ``depends_on`` loops, naming the whole cycle."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, chain: list[str]) -> None:
        state[name] = 1
        for dependency in sorted((services[name].get("depends_on") or {}).keys()):
            if dependency not in services:
                continue
            if state.get(dependency) == 1:
                cycle = [*chain[chain.index(dependency):], dependency] if dependency in chain else [name, dependency]
                raise _fail(f"dependency cycle detected: {' -> '.join(cycle)}",
                            ("services", name, "depends_on", dependency), locate)
            if state.get(dependency) is None:
                visit(dependency, [*chain, dependency])
        state[name] = 2

    for name in sorted(services):
        if state.get(name) is None:
            visit(name, [name])
