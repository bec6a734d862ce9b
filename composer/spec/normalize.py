"""Stages 6 and 7: defaults, resolved environment, absolute paths, profiles, unused resources.

These run once, on the merged canonical tree:
- ``resolve_environment`` folds ``env_file``/``label_file`` into ``environment``/``labels``
  and fills ``KEY`` entries without a value from the project environment;
- ``resolve_paths`` makes relative paths absolute against the project folder;
- ``apply_defaults`` adds the default network, resource names, build defaults and the
  dependencies implied by ``links``, ``network_mode: service:x`` and ``volumes_from``;
- ``apply_profiles`` drops services whose profiles are not active;
- ``drop_unused_resources`` keeps only networks, volumes, secrets and configs in use.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from composer.errors import EnvFileError, SourceLocation
from composer.spec.dotenv import DotenvError, read_dotenv_file
from composer.spec.limits import InputLimitError, read_bounded

RESOURCE_KINDS = ("networks", "volumes", "secrets", "configs", "models")


def _read_env_file(path: str, required: bool, environment: Mapping[str, str], fmt: str | None) -> dict[str, str]:
    if not os.path.exists(path):
        if required:
            raise EnvFileError(f"env file {path} not found: stat {path}: no such file or directory",
                               location=SourceLocation(path))
        return {}
    if fmt == "raw":
        return _read_raw_env_file(path)
    try:
        return read_dotenv_file(path, environment.get)
    except DotenvError as exc:
        raise EnvFileError(exc.message, location=SourceLocation(path, exc.line)) from None


def _read_raw_env_file(path: str) -> dict[str, str]:
    values: dict[str, str] = {}
    try:
        text = read_bounded(path).decode("utf-8")
    except InputLimitError as exc:
        raise EnvFileError(exc.message, location=SourceLocation(path)) from None
    except OSError as exc:
        raise EnvFileError(f"open {path}: {exc.strerror or exc}", location=SourceLocation(path)) from None
    except UnicodeDecodeError as exc:
        raise EnvFileError(f"file is not valid UTF-8: {exc.reason}", location=SourceLocation(path)) from None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, _, value = line.partition("=")
        values[key] = value
    return values


def resolve_service_environment(
    service: dict[str, Any], environment: Mapping[str, str], working_dir: str, *, discard_files: bool = True
) -> dict[str, Any]:
    """A service with env files folded into ``environment`` and bare keys resolved."""
    result = dict(service)
    file_values: dict[str, str] = {}
    for entry in service.get("env_file") or []:
        path = os.path.join(working_dir, entry["path"])
        file_values.update(_read_env_file(path, entry.get("required", True), environment, entry.get("format")))
    merged: dict[str, Any] = dict(file_values)
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            value = environment.get(key)
        if value is not None or key not in merged:
            merged[key] = value
    if merged or "environment" in service:
        result["environment"] = merged
    if discard_files:
        result.pop("env_file", None)
    build = result.get("build")
    if isinstance(build, dict) and isinstance(build.get("args"), dict):
        args = {}
        for key, value in build["args"].items():
            resolved = value if value is not None else environment.get(key)
            if resolved is not None:
                args[key] = resolved
        result["build"] = {**build, "args": args}
    label_values: dict[str, str] = {}
    for label_file in service.get("label_file") or []:
        label_values.update(_read_env_file(os.path.join(working_dir, label_file), True, {}, "raw"))
    if label_values:
        result["labels"] = {**label_values, **(service.get("labels") or {})}
    result.pop("label_file", None)
    return result


def resolve_environment(tree: dict[str, Any], environment: Mapping[str, str], working_dir: str) -> dict[str, Any]:
    services = tree.get("services") or {}
    return {**tree, "services": {
        name: resolve_service_environment(service, environment, working_dir) for name, service in services.items()
    }}


# --- paths -------------------------------------------------------------------------


def _is_remote_context(context: str) -> bool:
    prefixes = ("http://", "https://", "git://", "github.com/", "git@", "ssh://")
    return context.startswith(prefixes) or "://" in context


def _expand_home(path: str, home: str | None) -> str:
    if path == "~" or path.startswith("~/"):
        return (home or os.path.expanduser("~")) + path[1:]
    return path


def _is_windows_absolute(path: str) -> bool:
    return (len(path) >= 3 and path[0].isalpha() and path[1] == ":" and path[2] in "\\/") or path.startswith("\\\\")


def _absolute(path: str, base_dir: str, home: str | None = None) -> str:
    path = _expand_home(path, home)
    if os.path.isabs(path) or _is_windows_absolute(path):
        return path
    return os.path.normpath(os.path.join(base_dir, path))


def resolve_service_paths(service: dict[str, Any], base_dir: str, home: str | None = None) -> dict[str, Any]:
    """A service whose relative paths are made absolute against ``base_dir``."""
    result = dict(service)
    build = result.get("build")
    if isinstance(build, dict):
        build = dict(build)
        context = build.get("context")
        if isinstance(context, str) and not _is_remote_context(context):
            build["context"] = _absolute(context, base_dir, home)
        contexts = build.get("additional_contexts")
        if isinstance(contexts, dict):
            build["additional_contexts"] = {
                key: value if not isinstance(value, str) or _is_remote_context(value) or ":" in value.split("/")[0]
                else _absolute(value, base_dir, home)
                for key, value in contexts.items()
            }
        result["build"] = build
    if isinstance(result.get("env_file"), list):
        result["env_file"] = [
            {**entry, "path": _absolute(entry["path"], base_dir, home)} for entry in result["env_file"]
        ]
    if isinstance(result.get("label_file"), list):
        result["label_file"] = [_absolute(path, base_dir, home) for path in result["label_file"]]
    if isinstance(result.get("volumes"), list):
        result["volumes"] = [_absolute_mount(mount, base_dir, home) for mount in result["volumes"]]
    extends = result.get("extends")
    if isinstance(extends, dict) and isinstance(extends.get("file"), str):
        result["extends"] = {**extends, "file": _absolute(extends["file"], base_dir, home)}
    develop = result.get("develop")
    if isinstance(develop, dict) and isinstance(develop.get("watch"), list):
        result["develop"] = {**develop, "watch": [
            {**rule, "path": _absolute(rule["path"], base_dir, home)}
            if isinstance(rule, dict) and isinstance(rule.get("path"), str) else rule
            for rule in develop["watch"]
        ]}
    return result


def _absolute_mount(mount: Any, base_dir: str, home: str | None) -> Any:
    if not isinstance(mount, dict) or mount.get("type") != "bind":
        return mount
    source = mount.get("source")
    if not isinstance(source, str) or not source:
        return mount
    return {**mount, "source": _absolute(source, base_dir, home)}


def resolve_paths(tree: dict[str, Any], working_dir: str, home: str | None) -> dict[str, Any]:
    result = dict(tree)
    if isinstance(tree.get("services"), dict):
        result["services"] = {
            name: resolve_service_paths(service, working_dir, home) if isinstance(service, dict) else service
            for name, service in tree["services"].items()
        }
    for kind in ("secrets", "configs"):
        resources = tree.get(kind)
        if isinstance(resources, dict):
            result[kind] = {
                name: {**item, "file": _absolute(item["file"], working_dir, home)}
                if isinstance(item, dict) and isinstance(item.get("file"), str) else item
                for name, item in resources.items()
            }
    volumes = tree.get("volumes")
    if isinstance(volumes, dict):
        result["volumes"] = {name: _volume_device(item, working_dir, home) for name, item in volumes.items()}
    return result


def _volume_device(volume: Any, working_dir: str, home: str | None) -> Any:
    if not isinstance(volume, dict):
        return volume
    options = volume.get("driver_opts")
    if not isinstance(options, dict) or "bind" not in str(options.get("o", "")).split(","):
        return volume
    device = options.get("device")
    if not isinstance(device, str):
        return volume
    return {**volume, "driver_opts": {**options, "device": _absolute(device, working_dir, home)}}


# --- defaults ----------------------------------------------------------------------


def _implicit_dependencies(service: dict[str, Any]) -> list[tuple[str, bool]]:
    """(service name, restart with it) for links, ``service:`` modes and volumes_from."""
    names: list[tuple[str, bool]] = []
    for link in service.get("links") or []:
        names.append((str(link).split(":")[0], True))
    for mode_key in ("network_mode", "ipc", "pid"):
        mode = service.get(mode_key)
        if isinstance(mode, str) and mode.startswith("service:"):
            names.append((mode[len("service:"):], True))
    for source in service.get("volumes_from") or []:
        source = str(source)
        if not source.startswith("container:"):
            names.append((source.split(":")[0], False))
    return names


def _service_defaults(service: dict[str, Any], name: str) -> dict[str, Any]:
    result = dict(service)
    result.setdefault("command", None)
    result.setdefault("entrypoint", None)
    if "network_mode" not in result and not result.get("networks") and "provider" not in result:
        result["networks"] = {"default": None}
    build = result.get("build")
    if isinstance(build, dict):
        build = dict(build)
        build.setdefault("context", ".")
        if "dockerfile" not in build and "dockerfile_inline" not in build:
            build["dockerfile"] = "Dockerfile"
        result["build"] = build
    implicit = _implicit_dependencies(result)
    if implicit:
        depends_on = dict(result.get("depends_on") or {})
        for dependency, restart in implicit:
            condition: dict[str, Any] = {"condition": "service_started", "required": True}
            if restart:
                condition["restart"] = True
            depends_on.setdefault(dependency, condition)
        result["depends_on"] = depends_on
    for port in result.get("ports") or []:
        if isinstance(port, dict):
            port.setdefault("mode", "ingress")
            port.setdefault("protocol", "tcp")
    if isinstance(result.get("secrets"), list):
        result["secrets"] = [
            {**secret, "target": f"/run/secrets/{secret.get('source')}"}
            if isinstance(secret, dict) and not secret.get("target") else secret
            for secret in result["secrets"]
        ]
    if result.get("pull_policy") == "if_not_present":
        result["pull_policy"] = "missing"
    return result


def apply_defaults(tree: dict[str, Any], project_name: str) -> dict[str, Any]:
    result = dict(tree)
    services = {name: _service_defaults(dict(service or {}), name)
                for name, service in (tree.get("services") or {}).items()}
    result["services"] = services
    uses_default = any("default" in (service.get("networks") or {}) for service in services.values())
    networks = dict(tree.get("networks") or {})
    if uses_default and "default" not in networks:
        networks["default"] = {}
    if networks:
        result["networks"] = networks
    for kind in RESOURCE_KINDS:
        resources = result.get(kind)
        if isinstance(resources, dict):
            result[kind] = {
                key: _resource_name(kind, key, resource, project_name) for key, resource in resources.items()
            }
    return result


def _resource_name(kind: str, key: str, resource: Any, project_name: str) -> Any:
    resource = dict(resource or {})
    if kind == "models":
        return resource
    if "name" not in resource or resource["name"] is None:
        resource["name"] = key if resource.get("external") else f"{project_name}_{key}"
    return resource


# --- profiles and selection ----------------------------------------------------------


def is_enabled(service: dict[str, Any], profiles: list[str]) -> bool:
    service_profiles = service.get("profiles") or []
    if not service_profiles:
        return True
    return "*" in profiles or any(profile in profiles for profile in service_profiles)


def apply_profiles(
    tree: dict[str, Any], profiles: list[str], selected: list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tree with only the enabled services, the disabled ones); named services are enabled."""
    enabled: dict[str, Any] = {}
    disabled: dict[str, Any] = {}
    for name, service in (tree.get("services") or {}).items():
        if is_enabled(service or {}, profiles) or name in selected:
            enabled[name] = service
        else:
            disabled[name] = service
    return {**tree, "services": enabled}, disabled


def select_services(tree: dict[str, Any], selected: list[str]) -> dict[str, Any]:
    """Keep the named services and everything they depend on."""
    services = tree.get("services") or {}
    keep: list[str] = []
    pending = list(selected)
    while pending:
        name = pending.pop(0)
        if name in keep or name not in services:
            continue
        keep.append(name)
        pending.extend((services[name].get("depends_on") or {}).keys())
    return {**tree, "services": {name: service for name, service in services.items() if name in keep}}


def used_resources(services: Mapping[str, Any]) -> dict[str, set[str]]:
    used: dict[str, set[str]] = {kind: set() for kind in RESOURCE_KINDS}
    for service in services.values():
        used["networks"].update((service.get("networks") or {}).keys())
        for mount in service.get("volumes") or []:
            if isinstance(mount, dict) and mount.get("type") == "volume" and mount.get("source"):
                used["volumes"].add(mount["source"])
        for kind in ("secrets", "configs"):
            for mount in service.get(kind) or []:
                if isinstance(mount, dict):
                    used[kind].add(str(mount.get("source")))
        build = service.get("build")
        if isinstance(build, dict):
            for mount in build.get("secrets") or []:
                if isinstance(mount, dict):
                    used["secrets"].add(str(mount.get("source")))
        models = service.get("models")
        if isinstance(models, dict):
            used["models"].update(models.keys())
        elif isinstance(models, list):
            used["models"].update(str(model) for model in models)
    return used


def drop_unused_resources(tree: dict[str, Any]) -> dict[str, Any]:
    used = used_resources(tree.get("services") or {})
    result = dict(tree)
    for kind in RESOURCE_KINDS:
        resources = tree.get(kind)
        if isinstance(resources, dict):
            kept = {key: value for key, value in resources.items() if key in used[kind]}
            if kept:
                result[kind] = kept
            else:
                result.pop(kind, None)
    return result
