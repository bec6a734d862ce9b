"""The one place where native networking plugs into the native backend (the rest of this
package is the machinery: ``manager`` and what it drives).

Networks are composer.backends.native.network's NetworkManager: a bridge per Compose network, a
veth per container created inside its namespace, per-project DNS and published ports; plus
``network_mode: none`` and ``host``. What it cannot do (drivers other than bridge, a port without
a host port) is refused in one line, never ignored. ``network_mode: service:X`` and
``container:X`` join X's network namespace when started (X must be running), as Docker does.

The backend calls exactly these functions:

* ``create_network`` / ``remove_network`` / ``networks``: the project's networks (records under
  ``<run root>/networks/`` carrying Compose's labels, so the planner sees them);
* ``container_settings(spec)`` at create: validates the service's networking and returns what
  is stored under ``"network"`` in the container's config.json;
* ``shared_etc(config)`` at create: the run directory of the container a ``network_mode:
  service:X`` container joins (its hostname, hosts and resolv.conf are shared);
* ``start_options(config)`` when a container is started (by the supervisor, or by an attached
  one-off): keyword arguments for ``Runtime.start`` (``netns=``, ``on_netns=``);
* ``published_ports`` for listings (``ps``, ``port``): every container's published ports;
* ``released(config)`` once a container is removed (addresses, DNS names, port proxies).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer import labels
from composer.backends.native.namespaces import owner_project, running_pid
from composer.errors import AlreadyExistsError, NotFoundError, UnsupportedFeatureError

if TYPE_CHECKING:
    from composer.contract.backend import ContainerSpec
    from composer.contract.observed import PortMapping
    from composer.spec.models import NetworkConfig

BACKEND = "native"


def _unsupported(message: str, operation: str) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(f"{message} (use --backend docker)", backend_name=BACKEND, operation=operation)


def _manager(run_root: Path | str) -> Any:
    from composer.backends.native.network import NetworkManager

    return NetworkManager(run_root)


def create_network(run_root: Path, project: str, key: str, name: str, config: NetworkConfig, *,
                   config_hash: str | None = None) -> str:
    """Create network ``name`` (a bridge, through NetworkManager).

    :raises AlreadyExistsError: a network of that name exists.
    :raises UnsupportedFeatureError: a driver other than bridge.
    """
    manager = _manager(run_root)
    if manager.network(name) is not None:
        raise AlreadyExistsError(f"network with name {name} already exists", backend_name=BACKEND,
                                 operation="create network")
    manager.create_network(project, key, name, config, config_hash=config_hash)
    return name


def remove_network(run_root: Path, name: str) -> None:
    """Remove network ``name``; once the project has no network left, the manager's state of
    the project (endpoints elsewhere, DNS daemon) goes too."""
    manager = _manager(run_root)
    state = manager.network(name)
    if state is None:
        raise NotFoundError(f"network {name} not found", backend_name=BACKEND, operation="remove network")
    manager.remove_network(name)
    project = str(state.get("project") or "")
    if project and not manager.networks(project):
        manager.down(project)


def network_states(run_root: Path) -> list[dict[str, Any]]:
    """Every network's state file, read without importing the manager (pyroute2 and the rest:
    ~0.2 s that listings such as ps and observe do not need)."""
    folder = Path(run_root) / "networks"
    found = []
    for path in sorted(folder.glob("cmp-*.json")) if folder.is_dir() else ():  # manager.BRIDGE_PREFIX
        try:
            state = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue
        if isinstance(state, dict):
            found.append(state)
    return found


def networks(run_root: Path) -> Iterable[dict[str, Any]]:
    for state in network_states(run_root):
        yield {"id": state["name"], "name": state["name"], "driver": state.get("driver", "bridge"),
               "labels": {**(state.get("labels") or {}), labels.NETWORK: state.get("key", ""),
                          labels.PROJECT: state.get("project", ""), labels.VERSION: labels.COMPATIBLE_VERSION,
                          **({labels.CONFIG_HASH: state["config_hash"]} if state.get("config_hash") else {})}}


def published_ports(run_root: Path) -> dict[str, list[PortMapping]]:
    """Container name -> its published ports, read once for a whole listing."""
    from composer.contract.observed import PortMapping

    found: dict[str, list[PortMapping]] = {}
    for state in network_states(run_root):
        for container, endpoint in (state.get("endpoints") or {}).items():
            found.setdefault(container, []).extend(
                PortMapping(int(port["target"]), str(port["protocol"]), str(port["host_ip"]), int(port["host_port"]))
                for port in endpoint.get("ports") or ())
    return found


# ``extra_hosts: name:host-gateway``: the address the host answers on (composer.backends.native.
# network.manager writes it into /etc/hosts at start).
HOST_GATEWAY = "host-gateway"


def _address(entry: str) -> str:
    """The address of an ``extra_hosts`` entry (``name=address`` or ``name:address``)."""
    return entry.partition("=")[2] if "=" in entry else entry.partition(":")[2]


def container_settings(spec: ContainerSpec, run_root: Path) -> dict[str, Any]:
    """What the container's config.json records about its networking.

    :raises UnsupportedFeatureError: network_mode service:/container:, ports the native backend
        cannot publish.
    """
    from composer.backends.native.network.manager import expand_ports

    service = spec.service
    mode = service.network_mode
    if mode is not None and mode.startswith(("service:", "container:")):
        if service.ports:
            raise _unsupported(f"service {service.name}: conflicting options: port publishing and the container "
                               "type network mode", "create")
        owner = spec.namespace_containers.get("network_mode") or mode.partition(":")[2]
        project = owner_project(run_root, spec.project_name, owner)
        return {"mode": "container", "run_root": str(run_root), "project": project, "container": owner}
    if mode in ("none", "host") and any(_address(entry) == HOST_GATEWAY for entry in service.extra_hosts):
        raise _unsupported(f"service {service.name}: extra_hosts: {HOST_GATEWAY} needs a network (it is the gateway "
                           f"of the container's first network), not network_mode: {mode}", "create")
    if mode in ("none", "host"):
        if service.ports and mode == "none":
            raise _unsupported(f"service {service.name}: published ports need a network", "create")
        return {"mode": mode}
    if mode not in (None, "bridge", "default"):
        raise _unsupported(f"service {service.name}: network_mode: {mode} is not supported by the native backend "
                           "yet", "create")
    ports = [{"protocol": p.protocol, "host_ip": p.host_ip, "host_port": p.host_port, "target": p.target}
             for p in expand_ports(service.ports or (), default_host_ip="")]
    attachments = [{"network": a.network_name, "aliases": list(a.aliases), "ipv4_address": a.ipv4_address,
                    "ipv6_address": a.ipv6_address, "mac_address": a.mac_address} for a in spec.networks]
    return {"mode": "bridge", "run_root": str(run_root), "attachments": attachments, "ports": ports,
            "service": {"name": service.name, "hostname": service.hostname, "domainname": service.domainname,
                        "links": list(service.links or ()), "external_links": list(service.external_links or ()),
                        "dns": list(service.dns or ())}}


def shared_etc(config: dict[str, Any]) -> Path | None:
    """The run directory of the container whose network namespace this one joins (its hostname,
    hosts and resolv.conf are shared too), or None."""
    settings = config.get("network") or {}
    if settings.get("mode") != "container":
        return None
    return Path(settings["run_root"], settings["project"], settings["container"])


def start_options(config: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for Runtime.start: for a bridged container, the hook attaching its
    namespace to its networks (and publishing its ports); for ``service:X``, X's namespace to
    join; nothing for none and host.

    :raises BackendError: X is not running.
    """
    settings = config.get("network") or {}
    if settings.get("mode") == "container":
        return {"netns": joined_namespace(settings)}
    if settings.get("mode") != "bridge":
        return {}
    from types import SimpleNamespace

    from composer.backends.native.network import Attachment

    manager = _manager(settings["run_root"])
    ports = [SimpleNamespace(target=p["target"], protocol=p["protocol"], host_ip=p["host_ip"],
                             published_range=(p["host_port"], p["host_port"])) for p in settings.get("ports", ())]
    service = SimpleNamespace(**settings["service"], ports=ports)
    attachments = [Attachment(a["network"], tuple(a["aliases"]), a["ipv4_address"], a["ipv6_address"],
                              a["mac_address"]) for a in settings.get("attachments", ())]
    project, name = str(config["project"]), str(config["name"])
    run_dir = Path(settings["run_root"]) / project / name
    return {"on_netns": manager.on_netns(project, name, service, attachments, run_dir=run_dir)}


def joined_namespace(settings: dict[str, Any]) -> str:
    """``/proc/<pid>/ns/net`` of the running container a ``service:X`` container joins."""
    return f"/proc/{running_pid(settings, 'network')}/ns/net"


def released(config: dict[str, Any]) -> None:
    """The container is gone: its endpoints (addresses, DNS names, published ports) go too."""
    settings = config.get("network") or {}
    if settings.get("mode") == "bridge":
        _manager(settings["run_root"]).detach(str(config["project"]), str(config["name"]), exited=True)
