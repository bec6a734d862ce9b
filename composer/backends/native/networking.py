"""The one place where native networking plugs into the native backend.

Until composer.backends.native.network (bridges, veths, DNS, published ports) is wired in, the
native backend offers what needs no network setup: ``network_mode: none`` and ``host``, and the
project's default network as "loopback only" (each container has its own network namespace with
``lo`` up and nothing else). Anything that needs more is refused in one line, never ignored.

The backend calls exactly these functions:

* ``create_network`` / ``remove_network`` / ``networks``: the project's networks (records under
  ``<store root>/networks/<name>.json`` carrying Compose's labels, so the planner sees them);
* ``container_settings(spec)`` at create: validates the service's networking and returns what
  is stored under ``"network"`` in the container's config.json;
* ``start_options(config)`` when a container is started (by the supervisor, or by an attached
  one-off): keyword arguments for ``Runtime.start`` (``netns=``, ``on_netns=``);
* ``released(config)`` once a container is removed (addresses, DNS names, port proxies).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer import labels
from composer.backends.native.runtime.init import atomic_json
from composer.errors import AlreadyExistsError, NotFoundError, UnsupportedFeatureError

if TYPE_CHECKING:
    from composer.backends.base import ContainerSpec
    from composer.spec.models import NetworkConfig

BACKEND = "native"


def _unsupported(message: str, operation: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(f"{message} (use --backend docker)", backend_name=BACKEND, operation=operation)


def _folder(store_root: Path) -> Path:
    return store_root / "networks"


def create_network(store_root: Path, project: str, key: str, name: str, config: NetworkConfig) -> str:
    """Record the project's default network (loopback only); refuse any other.

    :raises UnsupportedFeatureError: a custom network, or options the loopback network lacks.
    """
    if key != "default" or config.driver not in (None, "bridge") or config.ipam.config or config.internal:
        raise _unsupported(f"network {name}: custom networks are not supported by the native backend yet",
                           "create network")
    path = _folder(store_root) / f"{name}.json"
    if path.exists():
        raise AlreadyExistsError(f"network with name {name} already exists", backend_name=BACKEND,
                                 operation="create network")
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    record = {"id": name, "name": name, "driver": "loopback",
              "labels": {**config.labels, labels.NETWORK: key, labels.PROJECT: project,
                         labels.VERSION: labels.COMPATIBLE_VERSION}}
    atomic_json(str(path), record)
    return name


def remove_network(store_root: Path, name: str) -> None:
    try:
        (_folder(store_root) / f"{name}.json").unlink()
    except FileNotFoundError:
        raise NotFoundError(f"network {name} not found", backend_name=BACKEND, operation="remove network") from None


def networks(store_root: Path) -> Iterable[dict[str, Any]]:
    folder = _folder(store_root)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        with contextlib.suppress(OSError, ValueError):
            yield json.loads(path.read_bytes())


def container_settings(spec: ContainerSpec) -> dict[str, Any]:
    """What the container's config.json records about its networking.

    :raises UnsupportedFeatureError: published ports, a non-default network, network_mode
        service:/container:.
    """
    service = spec.service
    mode = service.network_mode
    if service.ports:
        raise _unsupported(f"service {service.name}: published ports are not supported by the native backend yet",
                           "create")
    if mode in ("none", "host"):
        return {"mode": mode}
    if mode not in (None, "bridge", "default"):
        raise _unsupported(f"service {service.name}: network_mode: {mode} is not supported by the native backend "
                           "yet", "create")
    project_default = f"{spec.project_name}_default"
    others = [a.network_name for a in spec.networks if a.network_name != project_default]
    if others:
        raise _unsupported(f"service {service.name}: network {others[0]} is not supported by the native backend "
                           "yet (only the default network, as loopback only)", "create")
    return {"mode": "loopback"}


def start_options(config: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for Runtime.start: nothing to set up for loopback, none and host (the
    runtime's config already says which namespace: a new one, or the host's)."""
    return {}


def released(config: dict[str, Any]) -> None:
    """The container is gone: nothing to release for loopback, none and host."""
    return None
