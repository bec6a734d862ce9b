"""What ``composer config`` prints, computed from a loaded project (no printing here)."""

from __future__ import annotations

from typing import Any, NamedTuple

from composer.errors import UsageError
from composer.spec import render
from composer.spec.deepstack import run_deep
from composer.spec.loader import LoadedConfig, LoadOptions, load_config
from composer.spec.options import ProjectOptions


class ConfigRequest(NamedTuple):
    services: tuple[str, ...] = ()
    format: str = "yaml"
    list_services: bool = False
    list_volumes: bool = False
    list_networks: bool = False
    list_profiles: bool = False
    list_images: bool = False
    hash_services: str | None = None
    interpolate: bool = True
    normalize: bool = True
    consistency: bool = True
    resolve_paths: bool = True


class ConfigResult(NamedTuple):
    text: str
    warnings: list[str]


def service_hash(service: dict[str, Any]) -> str:
    """v2's configuration hash of a service of the tree (composer.spec.gojson)."""
    from composer.spec.gojson import service_hash as v2_hash

    return v2_hash(render.service_output(service))


def _lines(names: list[str]) -> str:
    return "".join(f"{name}\n" for name in names)


def _listing(loaded: LoadedConfig, request: ConfigRequest) -> str | None:
    tree = loaded.tree
    services: dict[str, Any] = tree.get("services") or {}
    if request.list_services:
        return _lines(list(services))
    if request.list_volumes:
        return _lines(list(tree.get("volumes") or {}))
    if request.list_networks:
        return _lines(list(tree.get("networks") or {}))
    if request.list_profiles:
        profiles = {p for s in [*services.values(), *loaded.disabled.values()] for p in (s or {}).get("profiles") or []}
        return _lines(sorted(profiles))
    if request.list_images:
        return _lines([_image_name(loaded.project_name, name, service) for name, service in services.items()])
    if request.hash_services is not None:
        wanted = list(services) if request.hash_services == "*" else request.hash_services.split(",")
        missing = [name for name in wanted if name not in services]
        if missing:
            raise UsageError(f"no such service: {missing[0]}")
        return _lines([f"{name} {service_hash(services[name])}" for name in wanted])
    return None


def _image_name(project_name: str, service_name: str, service: dict[str, Any]) -> str:
    image = service.get("image")
    return str(image) if image else f"{project_name}-{service_name}"


def render_config(project: ProjectOptions, request: ConfigRequest) -> ConfigResult:
    """Load the project and render it as ``config`` would (rendering walks the tree as deep as
    the loader: both run on composer.spec.deepstack's thread).

    :raises SpecError: the project is invalid.
    """
    return run_deep(lambda: _render_config(project, request), project.files)


def _render_config(project: ProjectOptions, request: ConfigRequest) -> ConfigResult:
    options = LoadOptions(
        interpolate=request.interpolate, normalize=request.normalize, consistency=request.consistency,
        resolve_paths=request.resolve_paths, services=request.services,
    )
    loaded = load_config(project, options)
    listing = _listing(loaded, request)
    if listing is not None:
        return ConfigResult(listing, loaded.warnings)
    output = render.project_output(loaded.tree, yaml=request.format != "json")
    text = render.to_json(output) if request.format == "json" else render.to_yaml(output)
    if request.interpolate:
        text = render.escape_dollars(text)
    return ConfigResult(text, loaded.warnings)
