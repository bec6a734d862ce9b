"""Compose networks for the native backend: bridges, IPAM, veths, DNS and published ports.

State (JSON written atomically, serialised by an flock on ``networks/.lock``)::

    <run root>/networks/<bridge>.json   one per network: name, project, key, bridge, internal,
                                         driver, driver_opts, labels, enable_ipv6, pools
                                         [{subnet, gateway, ip_range, aux_addresses}], users
                                         (other projects using it as external), endpoints
                                         {container: {project, service, ipv4, ipv6, mac, names,
                                         links, veth, dns, ports, proxy {pid, start}}}
    <run root>/<project>/dns/           the project's DNS daemon (dns.py)

Bridges are ``cmp-<8 hex>`` (a hash of run root and network name); host-side veths
``cv<10 hex>``; the container side is ``eth<i>`` in the order of the service's networks (or
its ``interface_name``), created directly inside ``/proc/<pid>/ns/net``.

Published ports are DNAT rules (firewall.py) for what reaches the host from outside or on its
own non-loopback addresses, and a port proxy per container (proxy.py, Docker's docker-proxy) for
the host's 127.0.0.0/8: bridges keep route_localnet=0, so nothing on a bridge reaches the host's
loopback services.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import ipaddress
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from composer import durable, faults
from composer.backends.native.network import bridge_options, firewall, ipam, netlink, owners
from composer.errors import BackendError, NotFoundError, PortInUseError, UnsupportedFeatureError

BACKEND = "native"
DEFAULT_RUN_ROOT = "/run/composer"
BRIDGE_PREFIX = "cmp-"
VETH_PREFIX = "cv"


def _error(message: str, operation: str, cls: type[BackendError] = BackendError) -> BackendError:
    return cls(message, backend_name=BACKEND, operation=operation)


RELEASE_WAIT_SECONDS = 2.0
REMOVING_SUFFIX = ".removing"  # a network's state being removed: .<bridge>.json.removing (a journal)
CREATING_SUFFIX = ".creating"  # a bridge being made, its state not yet written: .<bridge>.json.creating


def _releasing(state: dict[str, Any]) -> dict[str, dict[str, str]]:
    """The pairs of exited containers the kernel has not deleted yet (see ``detach``), by veth
    name; those it has deleted are forgotten."""
    releasing: dict[str, dict[str, str]] = state.get("releasing", {})
    for veth in [v for v in releasing if not os.path.exists(f"/sys/class/net/{v}")]:
        del releasing[veth]
    return releasing


def _await_released(state: dict[str, Any], patience: float = RELEASE_WAIT_SECONDS) -> list[str]:
    """Wait until the kernel has deleted the releasing pairs; those still there after ``patience``."""
    deadline = time.monotonic() + patience
    while _releasing(state) and time.monotonic() < deadline:
        time.sleep(0.005)
    return list(_releasing(state))


def _atomic_json(path: Path, data: Mapping[str, Any]) -> None:
    # compact: with indent, json falls back to its pure-Python encoder, and a network's state
    # (every endpoint) is rewritten at each container start; under the run root: not fsynced
    # (composer.durable's sync=False, a new boot discards it)
    durable.write_file(path, json.dumps(data, sort_keys=True, separators=(",", ":")).encode(), mode=0o644,
                       sync=False)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class PublishedPort:
    """One published port of a container (``composer port``)."""

    protocol: str
    host_ip: str
    host_port: int
    target: int

    def __str__(self) -> str:
        return f"{self.target}/{self.protocol} -> {self.host_ip}:{self.host_port}"


@dataclass(frozen=True)
class Attachment:
    """How a container joins one network (``networks:`` of the service, in order)."""

    network: str  # the network's full name
    aliases: Sequence[str] = ()
    ipv4_address: str | None = None
    ipv6_address: str | None = None
    mac_address: str | None = None
    interface_name: str | None = None


def expand_ports(ports: Sequence[Any], default_host_ip: str = "0.0.0.0") -> list[PublishedPort]:
    """Compose ``ports`` (PortConfig) as one mapping per host port; a range maps port by port;
    a port without a host address on ``default_host_ip`` ("" at create: the network decides at
    start, its ``host_binding_ipv4`` or every address).

    A port without a published one gets host port 0: ``attach`` picks a free one.

    :raises UnsupportedFeatureError: an IPv6 host address, an unknown protocol.
    """
    result = []
    for port in ports:
        if port.target is None:
            continue
        protocol = (port.protocol or "tcp").lower()
        if protocol not in ("tcp", "udp"):
            raise _error(f"port {port.target}/{protocol}: only tcp and udp are supported", "create",
                         UnsupportedFeatureError)
        host_ip = port.host_ip or default_host_ip
        first, last = port.published_range or (0, 0)
        if ":" in host_ip:
            raise _error(f"port {host_ip}:{first}: IPv6 host addresses are not supported yet", "create",
                         UnsupportedFeatureError)
        try:  # an address, never a name: iptables and bind would each resolve a name their own way
            ipaddress.IPv4Address(host_ip or "0.0.0.0")  # "": decided at start (host_binding_ipv4)
        except ValueError:
            raise _error(f"port {port.target}: invalid host address {host_ip!r}", "create") from None
        if first == 0:  # none published: host port 0, a free one chosen at start (attach), as Docker does
            result.append(PublishedPort(protocol, host_ip, 0, int(port.target)))
            continue
        for offset in range(last - first + 1):
            result.append(PublishedPort(protocol, host_ip, first + offset, int(port.target) + offset))
    return result


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's ip_local_port_range (Docker's allocator uses it too), else 32768-60999."""
    try:
        low, high = (int(part) for part in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


EPHEMERAL_ATTEMPTS = 10  # moby's portmapper: maxAllocatePortAttempts


def _bindable(protocol: str, host_ip: str, port: int) -> bool:
    kind = socket.SOCK_STREAM if protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as probe:
        if kind == socket.SOCK_STREAM:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host_ip, port))
        except OSError:
            return False
    return True


def _bind_port(port: PublishedPort) -> socket.socket:
    """A socket bound to the published port's host address and port (SO_REUSEADDR for TCP).

    :raises PortInUseError: the port is taken.
    :raises BackendError: the address is not the host's, or another bind error.
    """
    kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    if kind == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((port.host_ip, port.host_port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise _error(f"Bind for {port.host_ip}:{port.host_port}/{port.protocol} failed: port is "
                         "already allocated", "start", PortInUseError) from None
        if exc.errno != errno.EADDRNOTAVAIL:
            raise _error(f"cannot publish {port.host_ip}:{port.host_port}/{port.protocol}: "
                         f"{exc.strerror}", "start") from None
        raise _error(f"cannot publish on {port.host_ip}: not an address of this host", "start") from None
    return sock


def _no_route_localnet(bridge: str) -> None:
    """route_localnet 0 on ``bridge``, even where the host's default is 1: with 1, a container
    could send to the host's 127.0.0.0/8 services through its gateway (raw packets need only
    CAP_NET_RAW, which containers have). Docker sets it only with userland-proxy=false; the host
    reaches ports published on 127.0.0.1 through composer's proxy instead (proxy.py)."""
    with contextlib.suppress(OSError):
        netlink.write_sysctl(f"net.ipv4.conf.{bridge}.route_localnet", "0")


BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def _bridged_frames_through_iptables() -> None:
    """Have frames between ports of one bridge go through iptables (br_netfilter), without which
    an ``enable_icc: false`` rule would never see them; dockerd loads and sets the same.

    :raises BackendError: the module cannot be loaded (the option would then be ignored).
    """
    if not os.path.exists(BRIDGE_NF):
        subprocess.run(["modprobe", "br_netfilter"], capture_output=True, check=False)
    try:
        netlink.write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
    except OSError as exc:
        raise _error(f"enable_icc=false needs the br_netfilter module (bridge-nf-call-iptables): {exc.strerror}",
                     "create network") from None


def _netns_pid(netns: str) -> int | None:
    """The pid in ``/proc/<pid>/ns/net``, else None."""
    parts = netns.split("/")
    if len(parts) == 5 and parts[:2] == ["", "proc"] and parts[2].isdigit() and parts[3:] == ["ns", "net"]:
        return int(parts[2])
    return None


# The proxies this process started, by pid: kept (not dropped while running, which warns) and
# reaped once they have exited.
_PROXIES: dict[int, subprocess.Popen[bytes]] = {}


def _reap_proxies() -> None:
    for pid, child in list(_PROXIES.items()):
        if child.poll() is not None:
            del _PROXIES[pid]


def stop_proxy(endpoint: Mapping[str, Any]) -> None:
    """Kill the endpoint's port proxy (when it is still the process recorded) and wait until it
    is gone, so its ports are free again."""
    from composer.backends.native.network.dns import process_start_time

    record = endpoint.get("proxy") or {}
    if not record.get("pid"):
        return
    try:
        fd = os.pidfd_open(int(record["pid"]))
    except OSError:
        return
    try:
        if process_start_time(int(record["pid"])) == record.get("start"):  # the pid was not reused
            with contextlib.suppress(ProcessLookupError):  # it ended between the open and the signal
                signal.pidfd_send_signal(fd, signal.SIGKILL)  # (CI's down -t 0 failed on that ESRCH)
            select.select([fd], [], [], 5)
    finally:
        os.close(fd)
    _reap_proxies()


def attachments(service: Any, names: Mapping[str, str]) -> list[Attachment]:
    """The service's networks in order (``names``: Compose key -> full network name)."""
    result = []
    items = sorted(service.networks.items(), key=lambda kv: (-(kv[1].priority or 0) if kv[1] else 0, kv[0]))
    for key, settings in items or [("default", None)]:
        network = names.get(key, key)
        if settings is None:
            result.append(Attachment(network))
        else:
            result.append(Attachment(network, tuple(settings.aliases), settings.ipv4_address, settings.ipv6_address,
                                     settings.mac_address, settings.interface_name))
    return result


class NetworkManager:
    """Networks and container endpoints under ``run_root`` (COMPOSER_RUN_ROOT or /run/composer).
    Synchronous and thread-safe (file locks); the backend calls it from worker threads."""

    def __init__(self, run_root: Path | str | None = None, *, python: str | None = None) -> None:
        self.run_root = Path(run_root or os.environ.get("COMPOSER_RUN_ROOT") or DEFAULT_RUN_ROOT)
        self.networks_dir = self.run_root / "networks"
        self._finished: list[str] = []
        self.python = python or sys.executable

    # --- names and state -----------------------------------------------------------------------

    def bridge_name(self, network: str) -> str:
        digest = hashlib.sha256(f"{self.run_root.resolve()}\0{network}".encode()).hexdigest()
        return f"{BRIDGE_PREFIX}{digest[:8]}"

    def veth_name(self, container: str, network: str) -> str:
        digest = hashlib.sha256(f"{self.run_root.resolve()}\0{container}\0{network}".encode()).hexdigest()
        return f"{VETH_PREFIX}{digest[:10]}"

    def _path(self, network: str) -> Path:
        return self.networks_dir / f"{self.bridge_name(network)}.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The networks' lock; once held, what a holder killed midway left is finished first:
        removals journalled by ``remove_network`` and temporaries of state writes."""
        self.networks_dir.mkdir(mode=0o711, parents=True, exist_ok=True)
        fd = os.open(self.networks_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._finished = self._finish_removals()
            yield
        finally:
            os.close(fd)

    def _finish_removals(self) -> list[str]:
        """Finish the removals a killed ``remove_network`` left (their journal files); the
        bridges torn down. Call it holding the lock."""
        done = []
        for name in os.listdir(self.networks_dir):
            if durable.is_temporary(name):
                continue
            journal = self.networks_dir / name
            if name.startswith(".") and name.endswith(REMOVING_SUFFIX):
                state = _read_json(journal)
                if state is not None:
                    self._teardown(state)
                    done.append(str(state.get("bridge")))
                journal.unlink(missing_ok=True)
            elif name.startswith(".") and name.endswith(CREATING_SUFFIX):
                bridge = str((_read_json(journal) or {}).get("bridge") or "")
                if bridge.startswith(BRIDGE_PREFIX) and not (self.networks_dir / f"{bridge}.json").exists():
                    self._teardown_bridge(bridge)  # made, never recorded: nobody else would ever remove it
                    done.append(bridge)
                journal.unlink(missing_ok=True)
        durable.remove_stale_temporaries(self.networks_dir)
        return done

    def recover(self) -> list[str]:
        """Finish what commands killed midway left (journals, temporaries); the bridges removed."""
        with self._locked():
            return self._finished

    def _teardown(self, state: Mapping[str, Any]) -> None:
        """A network's bridge, rules, endpoints' veths and proxies (none of them an error when gone)."""
        with netlink.host() as links:
            for endpoint in state.get("endpoints", {}).values():
                stop_proxy(endpoint)
                with contextlib.suppress(netlink.LinkError):
                    links.delete(endpoint.get("veth") or "")
            for veth in _await_released(dict(state)):  # the kernel is slow to: delete them
                with contextlib.suppress(netlink.LinkError):
                    links.delete(veth)
        self._teardown_bridge(state["bridge"])

    def network(self, name: str) -> dict[str, Any] | None:
        """The state of network ``name`` (its full name), or None."""
        return _read_json(self._path(name))

    def all_networks(self) -> list[dict[str, Any]]:
        if not self.networks_dir.is_dir():
            return []
        found = (_read_json(p) for p in sorted(self.networks_dir.glob(f"{BRIDGE_PREFIX}*.json")))
        return [n for n in found if n is not None]

    def networks(self, project: str) -> list[dict[str, Any]]:
        """The networks ``project`` created."""
        return [n for n in self.all_networks() if n.get("project") == project]

    # --- networks ------------------------------------------------------------------------------

    def _used_subnets(self) -> list[ipam.Network]:
        used: list[ipam.Network] = []
        with netlink.host() as links:
            for family in (socket.AF_INET, socket.AF_INET6):
                used += links.routes(family)
            used += [i.network for i in links.addresses()]
        for network in self.all_networks():
            used += [ipaddress.ip_network(p["subnet"]) for p in network.get("pools") or ()]
        return used

    def create_network(self, project: str, key: str, name: str, config: Any, *,
                       config_hash: str | None = None) -> dict[str, Any]:
        """Create network ``name`` (Compose ``key`` of ``project``) from ``config`` (a
        NetworkConfig); an existing one is returned as it is. External networks must exist.

        :raises NotFoundError: an external network that does not exist.
        :raises UnsupportedFeatureError: a driver other than bridge.
        :raises BackendError: a bad ipam config, no free subnet, or netlink/iptables failing.
        """
        if config.external:
            with self._locked():
                existing = self.network(name)
                if existing is None:
                    raise _error(f"network {name} declared as external, but could not be found", "create network",
                                 NotFoundError)
                if project != existing.get("project") and project not in existing.get("users", []):
                    existing["users"] = [*existing.get("users", []), project]
                    _atomic_json(self._path(name), existing)
                return existing
        if (config.driver or "bridge") != "bridge":
            raise _error(f"network {name}: driver {config.driver} is not supported by the native backend",
                         "create network", UnsupportedFeatureError)
        try:
            options = bridge_options.parse(name, config.driver_opts)
        except bridge_options.BridgeOptionError as exc:
            raise _error(str(exc), "create network", UnsupportedFeatureError) from None
        with self._locked():
            existing = self.network(name)
            if existing is not None:
                return existing
            try:
                pools = self._pools(name, config)
            except ipam.IPAMError as exc:
                raise _error(str(exc), "create network") from None
            bridge = options.name or self.bridge_name(name)
            if options.name is not None and os.path.exists(f"/sys/class/net/{bridge}"):
                # Docker would enslave its containers to a bridge of the host's: composer owns
                # (and at down deletes) the bridges it plumbs, so an existing link is refused.
                raise _error(f"network {name}: driver_opts {bridge_options.BRIDGE_NAME}: a link named {bridge} "
                             "exists already", "create network")
            elif os.path.exists(f"/sys/class/net/{bridge}"):  # made by a create killed before its state was written
                self._teardown_bridge(bridge)
            state = {"name": name, "project": project, "key": key, "bridge": bridge, "driver": "bridge",
                     "driver_opts": dict(config.driver_opts), "options": options.to_json(),
                     "labels": dict(config.labels),
                     "internal": bool(config.internal), "enable_ipv6": bool(config.enable_ipv6),
                     "attachable": bool(config.attachable), "pools": [p.to_json() for p in pools],
                     "users": [], "endpoints": {}, "created": time.time(), "config_hash": config_hash}
            # journalled: a create killed between the bridge and its state file leaves the journal,
            # and the next holder of the lock (any command of any project) removes that bridge
            journal = self.networks_dir / f".{bridge}.json{CREATING_SUFFIX}"
            _atomic_json(journal, {"bridge": bridge, "name": name})
            try:
                self._setup_bridge(bridge, pools, internal=bool(config.internal), options=options)
                faults.point("network.create.bridge-made")
                _atomic_json(self._path(name), state)
            except BaseException:
                self._teardown_bridge(bridge)
                raise
            finally:
                journal.unlink(missing_ok=True)
        try:
            self._dns_sync(project)
        except BaseException:
            self.remove_network(name)
            raise
        return state

    def _pools(self, name: str, config: Any) -> list[ipam.Pool]:
        pools = [ipam.configured_pool(name, p.subnet, p.ip_range, p.gateway, dict(p.aux_addresses))
                 for p in config.ipam.config if p.subnet]
        used = self._used_subnets()
        for pool in pools:
            clash = [u for u in used if u.version == pool.version and u.overlaps(pool.subnet)]  # type: ignore[arg-type,unused-ignore]
            if clash:
                raise ipam.IPAMError(f"network {name}: subnet {pool.subnet} overlaps {clash[0]}, already in use")
        if config.enable_ipv4 is not False and not any(p.version == 4 for p in pools):
            pools.insert(0, ipam.default_v4(used))
        if config.enable_ipv6 and not any(p.version == 6 for p in pools):
            pools.append(ipam.default_v6(name, used))
        return pools

    def _setup_bridge(self, bridge: str, pools: Sequence[ipam.Pool], *, internal: bool,
                      options: bridge_options.BridgeOptions | None = None) -> None:
        options = options or bridge_options.BridgeOptions()
        digest = hashlib.sha256(bridge.encode()).hexdigest() if options.name else bridge[4:]
        mac = "02:" + ":".join(digest[i:2 + i] for i in (0, 2, 4)) + ":00:01"
        if not options.icc:
            _bridged_frames_through_iptables()
        with netlink.host() as links:
            links.add_bridge(bridge, mac, options.mtu)
            owners.label(bridge, self.run_root)
            for pool in pools:
                links.add_address(bridge, ipaddress.ip_interface(f"{pool.gateway}/{pool.subnet.prefixlen}"))
            links.set_up(bridge)
        _no_route_localnet(bridge)
        if not internal:
            netlink.write_sysctl("net.ipv4.ip_forward", "1")
        firewall.add_network(bridge, [str(p.subnet) for p in pools], internal=internal, icc=options.icc,
                             masquerade=options.masquerade)

    def _teardown_bridge(self, bridge: str) -> None:
        with contextlib.suppress(netlink.LinkError), netlink.host() as links:
            links.delete(bridge)
        firewall.remove_network(bridge)

    def remove_network(self, name: str) -> None:
        """Remove network ``name``: its bridge, rules, endpoints' veths and state; a missing one
        is no error. An external network is only forgotten by the projects using it."""
        with self._locked():
            state = self.network(name)
            if state is None:
                return
            # journalled: the state file is renamed out of sight first, so that a removal killed
            # midway is finished by the next holder of the lock (_finish_removals), whether the
            # next command is an up or a down, instead of leaving a network without its bridge
            path = self._path(name)
            journal = path.with_name(f".{path.name}{REMOVING_SUFFIX}")
            os.replace(path, journal)
            self._teardown(state)
            faults.point("network.remove.bridge-removed")
            journal.unlink(missing_ok=True)
        self._dns_sync(state["project"])

    # --- containers ----------------------------------------------------------------------------

    def on_netns(self, project: str, container: str, service: Any, networks: Sequence[Attachment], *,
                 run_dir: Path | str | None = None) -> NetnsHook:
        """The hook for ``Runtime.start(on_netns=...)``: attaches the container's namespace."""
        return NetnsHook(self, project, container, service, networks, run_dir)

    def attach(self, project: str, container: str, service: Any, networks: Sequence[Attachment], *,
               netns: str, run_dir: Path | str | None = None) -> dict[str, dict[str, Any]]:
        """Connect the network namespace at ``netns`` to ``networks``: addresses (static ones
        checked), a veth each (peer created inside), loopback up, the default route via the
        first non-internal network's gateway, DNS names, published ports; rewrites
        ``run_dir``'s resolv.conf and hosts. All or nothing: on error every piece is undone.

        :raises PortInUseError: a published port is taken (by anything, composer included).
        :raises NotFoundError: a network that does not exist.
        :raises BackendError: a bad static address, netlink or iptables failing.
        """
        reservation = self.reserve(project, container, service, networks)
        return self.connect_retrying(reservation, netns=netns, run_dir=run_dir)

    def connect_retrying(self, reservation: Reservation, *, netns: str,
                         run_dir: Path | str | None = None) -> dict[str, dict[str, Any]]:
        """``connect``; when a host port chosen from the ephemeral range was bound by someone else
        between the reservation's probe and the proxy's bind (another run root's container: run
        roots share no lock), reserved again (another port), up to EPHEMERAL_ATTEMPTS times, as
        moby's port mapper retries an ephemeral port (never an explicit one)."""
        for attempt in range(1, EPHEMERAL_ATTEMPTS + 1):
            try:
                return self.connect(reservation, netns=netns, run_dir=run_dir)
            except PortInUseError:
                ports = expand_ports(getattr(reservation.service, "ports", ()) or ())
                if attempt == EPHEMERAL_ATTEMPTS or not any(port.host_port == 0 for port in ports):
                    raise
                reservation = self.reserve(reservation.project, reservation.container, reservation.service,
                                           reservation.networks)
        raise AssertionError("unreachable")

    def reserve(self, project: str, container: str, service: Any, networks: Sequence[Attachment]) -> Reservation:
        """The first half of ``attach``, which needs no namespace yet: the container's addresses
        and published ports, taken in the networks' state. On error nothing stays taken."""
        endpoints: dict[str, dict[str, Any]] = {}
        try:
            with self._locked():
                # a port without a host address binds the first network's host_binding_ipv4, as Docker's
                first = self.network(networks[0].network) if networks else None
                binding = bridge_options.from_state(first).host_binding_ipv4 if first is not None else None
                ports = expand_ports(getattr(service, "ports", ()) or (), default_host_ip=binding or "0.0.0.0")
                if ports:
                    self._release_ports(container)
                ports = self._choose_host_ports(container, ports)
                self._check_ports(container, ports)
                states = []
                for attachment in networks:
                    state = self.network(attachment.network)
                    if state is None:
                        raise _error(f"network {attachment.network} not found", "start", NotFoundError)
                    # a container of the same name, just removed: _plumb deletes its old pair first
                    state.get("releasing", {}).pop(self.veth_name(container, attachment.network), None)
                    states.append(state)
                    endpoints[attachment.network] = self._allocate(state, project, container, service, attachment,
                                                                   ports if len(endpoints) == 0 else [])
                for state, attachment in zip(states, networks, strict=True):
                    state["endpoints"][container] = endpoints[attachment.network]
                    _atomic_json(self._path(attachment.network), state)
        except BaseException:
            self.detach(project, container)
            raise
        return Reservation(project, container, service, tuple(networks), states, endpoints, ports)

    def connect(self, reservation: Reservation, *, netns: str,
                run_dir: Path | str | None = None) -> dict[str, dict[str, Any]]:
        """The second half of ``attach``: the reserved addresses plumbed into ``netns``, ports
        published (DNAT rules, and the proxy for the host's 127.0.0.0/8, which exits with the
        process whose namespace ``netns`` is, when it is ``/proc/<pid>/ns/net``), ``run_dir``'s
        files rewritten. On error everything is undone, the reservation too."""
        states, endpoints, ports = reservation.states, reservation.endpoints, reservation.ports
        try:
            self._plumb(netns, states, reservation.networks, endpoints)
            if ports and states:
                first = states[0]
                address = endpoints[first["name"]]["ipv4"]
                rules = [firewall.PortRule(p.protocol, p.host_ip, p.host_port, address, p.target) for p in ports]
                firewall.add_ports(first["bridge"], reservation.container, rules)
                if address:
                    self._start_proxy(first["name"], reservation.container, ports, address, _netns_pid(netns))
            if run_dir is not None:
                self._write_etc(Path(run_dir), reservation.service, states, endpoints)
        except BaseException:
            self.detach(reservation.project, reservation.container)
            raise
        return endpoints

    def _release_ports(self, container: str) -> None:
        """A restart: the previous start's proxy goes (it may still hold the ports, until it sees
        the old PID 1 gone) and its DNAT rules (they point at the old address) before new ones."""
        for state in self.all_networks():
            endpoint = state.get("endpoints", {}).get(container)
            if endpoint and endpoint.get("ports"):
                stop_proxy(endpoint)
                firewall.remove_ports(state["bridge"], container)

    def _choose_host_ports(self, container: str, ports: Sequence[PublishedPort]) -> list[PublishedPort]:
        """Host port 0 replaced by a free port of the ephemeral range, lowest first, as Docker's
        allocator does (``0.0.0.0:32768->80/tcp``): not published by another container, and
        bindable now."""
        taken = {(p["protocol"], int(p["host_port"])) for n in self.all_networks()
                 for name, e in n.get("endpoints", {}).items() if name != container for p in e.get("ports", ())}
        low, high = _ephemeral_range()
        chosen: list[PublishedPort] = []
        for port in ports:
            if port.host_port != 0:
                chosen.append(port)
                continue
            for candidate in range(low, high + 1):
                if (port.protocol, candidate) in taken or not _bindable(port.protocol, port.host_ip, candidate):
                    continue
                taken.add((port.protocol, candidate))
                chosen.append(PublishedPort(port.protocol, port.host_ip, candidate, port.target))
                break
            else:
                raise _error(f"no free host port for {port.target}/{port.protocol} in {low}-{high}", "start",
                             PortInUseError)
        return chosen

    def _check_ports(self, container: str, ports: Sequence[PublishedPort]) -> None:
        taken = {(p["protocol"], p["host_port"]): (name, p["host_ip"]) for n in self.all_networks()
                 for name, e in n.get("endpoints", {}).items() if name != container for p in e.get("ports", ())}
        for port in ports:
            owner = taken.get((port.protocol, port.host_port))
            if owner is not None and (owner[1] == port.host_ip or "0.0.0.0" in (owner[1], port.host_ip)):
                raise _error(f"Bind for {port.host_ip}:{port.host_port}/{port.protocol} failed: port is already "
                             f"allocated (by {owner[0]})", "start", PortInUseError)
            _bind_port(port).close()

    def _start_proxy(self, network: str, container: str, ports: Sequence[PublishedPort], address: str,
                     pid: int | None) -> None:
        """Run the container's port proxy (proxy.py) with its listening sockets, bound here so
        that a port taken meanwhile fails the start in one line, and recorded in its endpoint
        for ``stop_proxy``. Not waited for: the kernel queues connections until it accepts."""
        sockets: list[socket.socket] = []
        pidfd = -1
        try:
            for port in ports:
                sockets.append(_bind_port(port))
                if port.protocol == "tcp":
                    sockets[-1].listen(socket.SOMAXCONN)
            if pid is not None:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    raise _error(f"container {container} exited before its ports were published", "start") from None
            spec = {"pidfd": pidfd if pidfd >= 0 else None,
                    "ports": [{"fd": s.fileno(), "protocol": p.protocol, "address": address, "port": p.target}
                              for s, p in zip(sockets, ports, strict=True)]}
            process = subprocess.Popen(
                [self.python, "-I", "-S", str(Path(__file__).with_name("proxy.py")), str(self.run_root), container,
                 json.dumps(spec)], pass_fds=[s.fileno() for s in sockets] + ([pidfd] if pidfd >= 0 else []),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            for sock in sockets:
                sock.close()
            if pidfd >= 0:
                os.close(pidfd)
        from composer.backends.native.network.dns import process_start_time

        _reap_proxies()
        _PROXIES[process.pid] = process
        record = {"pid": process.pid, "start": process_start_time(process.pid)}
        with self._locked():
            state = self.network(network)
            endpoint = (state or {}).get("endpoints", {}).get(container)
            if state is None or endpoint is None:  # detached meanwhile
                stop_proxy({"proxy": record})
                return
            endpoint["proxy"] = record
            _atomic_json(self._path(network), state)

    def _allocate(self, state: dict[str, Any], project: str, container: str, service: Any, attachment: Attachment,
                  ports: Sequence[PublishedPort]) -> dict[str, Any]:
        pools = [ipam.Pool.from_json(p) for p in state["pools"]]
        others = [e for name, e in state["endpoints"].items() if name != container]
        others += list(_releasing(state).values())
        endpoint: dict[str, Any] = {"project": project, "service": service.name, "ipv4": None, "ipv6": None}
        for pool in pools:
            key = f"ipv{pool.version}"
            taken = [ipaddress.ip_address(e[key]) for e in others if e.get(key)]
            requested = attachment.ipv4_address if pool.version == 4 else attachment.ipv6_address
            try:
                if requested:
                    address = ipam.check_static(pool, ipaddress.ip_address(requested), taken,
                                                f"service {service.name}: {key}_address")
                else:
                    address = ipam.allocate(pool, taken)
            except ValueError as exc:
                raise _error(str(exc) if isinstance(exc, ipam.IPAMError) else
                             f"service {service.name}: invalid {key}_address {requested!r}", "start") from None
            if endpoint[key] is None:
                endpoint[key] = str(address)
                endpoint[f"prefix{pool.version}"] = pool.subnet.prefixlen
                endpoint[f"gateway{pool.version}"] = str(pool.gateway)
        for requested, version in ((attachment.ipv4_address, 4), (attachment.ipv6_address, 6)):
            if requested and not any(p.version == version for p in pools):
                raise _error(f"service {service.name}: ipv{version}_address {requested} but network "
                             f"{state['name']} has no IPv{version} subnet", "start")
        if endpoint["ipv4"] is None and endpoint["ipv6"] is None:
            raise _error(f"network {state['name']} has no subnet", "start")
        first = ipaddress.ip_address(endpoint["ipv4"] or endpoint["ipv6"])
        endpoint["mac"] = attachment.mac_address or ipam.mac_for(first)
        hostname = getattr(service, "hostname", None)
        names = [service.name, *attachment.aliases, *([hostname] if hostname else [])]
        endpoint["names"] = list(dict.fromkeys(n for n in names if n and n != container))
        links: dict[str, str] = {}
        for link in (*getattr(service, "links", ()), *getattr(service, "external_links", ())):
            target, _, alias = link.partition(":")
            links[alias or target] = target
        endpoint["links"] = links
        endpoint["dns"] = list(getattr(service, "dns", ()) or ())
        endpoint["veth"] = self.veth_name(container, state["name"])
        endpoint["ports"] = [{"protocol": p.protocol, "host_ip": p.host_ip, "host_port": p.host_port,
                              "target": p.target} for p in ports]
        return endpoint

    def _plumb(self, netns: str, states: Sequence[dict[str, Any]], networks: Sequence[Attachment],
               endpoints: Mapping[str, dict[str, Any]]) -> None:
        with netlink.host() as host:
            for i, (state, attachment) in enumerate(zip(states, networks, strict=True)):
                _no_route_localnet(state["bridge"])  # a bridge made by an older composer had 1 (~30 µs)
                endpoint = endpoints[attachment.network]
                if os.path.exists(f"/sys/class/net/{endpoint['veth']}"):
                    host.delete(endpoint["veth"])  # a stale one from a crashed start
                host.add_veth(endpoint["veth"], state["bridge"], netns, attachment.interface_name or f"eth{i}",
                              endpoint["mac"], bridge_options.from_state(state).mtu)
                faults.point("network.attach.veth-made")
                owners.label(endpoint["veth"], self.run_root)
        with netlink.namespace(netns) as inside:
            inside.set_up("lo")
            default_set: set[int] = set()
            for i, (state, attachment) in enumerate(zip(states, networks, strict=True)):
                endpoint = endpoints[attachment.network]
                ifname = attachment.interface_name or f"eth{i}"
                for version in (4, 6):
                    if endpoint.get(f"ipv{version}"):
                        inside.add_address(ifname, ipaddress.ip_interface(
                            f"{endpoint[f'ipv{version}']}/{endpoint[f'prefix{version}']}"))
                inside.set_up(ifname)
                if state.get("internal"):
                    continue
                for version in (4, 6):
                    if endpoint.get(f"ipv{version}") and version not in default_set:
                        inside.add_default_route(ipaddress.ip_address(endpoint[f"gateway{version}"]))
                        default_set.add(version)

    def _write_etc(self, run_dir: Path, service: Any, states: Sequence[dict[str, Any]],
                   endpoints: Mapping[str, dict[str, Any]]) -> None:
        """resolv.conf (nameserver: the first network's gateway) and hosts (the container's
        addresses for its hostname), rewritten in place: they may already be bind-mounted."""
        if not states:
            return
        first = endpoints[states[0]["name"]]
        gateway = first.get("gateway4") or first.get("gateway6")
        resolv = run_dir / "resolv.conf"
        lines = [line for line in (resolv.read_text() if resolv.exists() else "").splitlines()
                 if not line.startswith("nameserver")]
        text = f"nameserver {gateway}\n" + "".join(f"{line}\n" for line in lines)
        with open(resolv, "r+" if resolv.exists() else "w") as f:
            f.seek(0)
            f.write(text)
            f.truncate()
        hosts = run_dir / "hosts"
        if hosts.exists():
            hostname = (run_dir / "hostname").read_text().strip() if (run_dir / "hostname").exists() else ""
            domain = getattr(service, "domainname", None)
            full = f"{hostname}.{domain} {hostname}" if domain else hostname
            body = [line for line in hosts.read_text().splitlines() if not line.startswith("127.0.1.1\t")]
            # extra_hosts' host-gateway: Docker writes the default bridge's gateway (docker0's
            # address, the host's). The native backend has no default bridge: the host's end of
            # the container's first network is the address of the host it surely reaches (its
            # default route goes there when that network is not internal, and it is on-link
            # anyway), so that network's gateway stands for the host, IPv4 first as in Docker.
            body = [f"{gateway}\t{line.partition(chr(9))[2]}" if line.startswith("host-gateway\t") else line
                    for line in body]
            body += [f"{first[k]}\t{full}" for k in ("ipv4", "ipv6") if first.get(k)]
            with open(hosts, "r+") as f:
                f.seek(0)
                f.write("\n".join(body) + "\n")
                f.truncate()

    def detach(self, project: str, container: str, *, exited: bool = False) -> None:
        """Remove the container from every network: veths, published ports, DNS names and
        addresses. Nothing attached is no error.

        ``exited``: the container's processes are gone, so its network namespace goes too and
        the kernel deletes the veth pair with it (a few ms later, asynchronously). The pair is
        then not deleted here (~15 ms: what ``run --rm`` would wait for), but its addresses stay
        taken until it is gone (``releasing``): an address given out meanwhile could still be
        answered for, by ARP, from the dying namespace. ``remove_network`` waits for them."""
        with self._locked():
            for state in self.all_networks():
                endpoint = state.get("endpoints", {}).pop(container, None)
                if endpoint is None:
                    continue
                veth = endpoint.get("veth") or ""
                # A stopped container's namespace took its veth pair with it: ask netlink only
                # when the host end is still there (a netlink socket per container adds up in down).
                if veth and os.path.exists(f"/sys/class/net/{veth}"):
                    if exited:
                        state.setdefault("releasing", {})[veth] = {
                            "project": project, **{key: endpoint[key] for key in ("ipv4", "ipv6") if endpoint.get(key)}}
                    else:
                        with contextlib.suppress(netlink.LinkError), netlink.host() as links:
                            links.delete(veth)
                if endpoint.get("ports"):
                    stop_proxy(endpoint)
                    firewall.remove_ports(state["bridge"], container)
                _atomic_json(self._path(state["name"]), state)

    def ports(self, container: str) -> list[PublishedPort]:
        """The container's published ports."""
        return [PublishedPort(p["protocol"], p["host_ip"], int(p["host_port"]), int(p["target"]))
                for n in self.all_networks() for p in n.get("endpoints", {}).get(container, {}).get("ports", ())]

    def endpoints(self, container: str) -> dict[str, dict[str, Any]]:
        """The container's endpoints by network name."""
        return {n["name"]: n["endpoints"][container] for n in self.all_networks()
                if container in n.get("endpoints", {})}

    # --- the project as a whole ------------------------------------------------------------------

    def down(self, project: str) -> None:
        """Remove the project's networks, its endpoints on other projects' networks, and its
        DNS daemon and state."""
        for state in self.all_networks():
            for name, endpoint in list(state.get("endpoints", {}).items()):
                if endpoint.get("project") == project:
                    self.detach(project, name)
        for state in self.networks(project):
            self.remove_network(state["name"])
        with self._locked():
            for state in self.all_networks():
                # the project's pairs on other projects' networks: gone too before down returns
                mine = {veth: entry for veth, entry in state.get("releasing", {}).items()
                        if entry.get("project") == project}
                for veth in _await_released({"releasing": mine}):
                    with contextlib.suppress(netlink.LinkError), netlink.host() as links:
                        links.delete(veth)
                if project in state.get("users", []) or mine:
                    if project in state.get("users", []):
                        state["users"].remove(project)
                    for veth in mine:
                        state["releasing"].pop(veth, None)
                    _atomic_json(self._path(state["name"]), state)
        self.stop_dns(project)

    # --- DNS daemon ----------------------------------------------------------------------------

    def dns_dir(self, project: str) -> Path:
        return self.run_root / project / "dns"

    def dns_pid(self, project: str) -> int | None:
        """The project's DNS daemon, None when it is gone (a zombie is gone: a daemon killed -9
        and not yet reaped answers no SIGHUP, and the sync waited for it in vain)."""
        from composer.owner import alive

        data = _read_json(self.dns_dir(project) / "pid.json")
        if not data:
            return None
        pid = int(data["pid"])
        return pid if alive(pid, data.get("start")) else None

    def _dns_sync(self, project: str) -> None:
        """Start the project's DNS daemon, or make it listen on the networks' current gateways;
        returns once it listens (or stops it when the project has no network left). Under the
        networks' lock: two networks of a project created in parallel each found no daemon and
        started one, and the one whose pid.json lost was never stopped."""
        with self._locked():
            self._dns_sync_locked(project)

    def _dns_sync_locked(self, project: str) -> None:
        gateways = sorted({p["gateway"] for n in self.all_networks()
                           if project == n.get("project") for p in n.get("pools", ())})
        pid = self.dns_pid(project)
        if not gateways:
            if pid is not None:
                self.stop_dns(project)
            return
        if pid is not None:
            try:
                before: int | None = (self.dns_dir(project) / "listening.json").stat().st_mtime_ns
            except FileNotFoundError:
                before = None
            try:
                os.kill(pid, signal.SIGHUP)
            except ProcessLookupError:  # it ended after dns_pid looked (CI's down failed on ESRCH): a new one
                pid = None
            else:
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    listening = self.dns_dir(project) / "listening.json"
                    with contextlib.suppress(FileNotFoundError):
                        if listening.stat().st_mtime_ns != before:
                            break
                    time.sleep(0.005)
        if pid is None:
            self._start_dns(project)
            faults.point("network.dns.started")
        status = _read_json(self.dns_dir(project) / "listening.json") or {}
        missing = [g for g in gateways if g not in status.get("addresses", [])]
        if missing:
            raise _error(f"DNS for project {project} cannot listen on {', '.join(missing)}: "
                         f"{'; '.join(status.get('errors', [])) or 'unknown error'}", "create network")

    def _start_dns(self, project: str) -> None:
        self.dns_dir(project).mkdir(parents=True, exist_ok=True)
        process = subprocess.Popen([self.python, "-m", "composer.backends.native.network.dns", str(self.run_root),
                                    project], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL, start_new_session=True)
        assert process.stdout is not None
        line = process.stdout.readline().decode(errors="replace").strip()
        process.stdout.close()
        process.wait()
        if line != "ready":
            raise _error(f"DNS for project {project} did not start: {line or 'no answer'}", "create network")

    def stop_dns(self, project: str) -> None:
        """Stop the project's DNS daemon and remove its state directory."""
        pid = self.dns_pid(project)
        if pid is not None:
            with contextlib.suppress(OSError):
                fd = os.pidfd_open(pid)
                try:
                    signal.pidfd_send_signal(fd, signal.SIGTERM)
                    if not select.select([fd], [], [], 5)[0]:
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                        select.select([fd], [], [], 5)
                finally:
                    os.close(fd)
        folder = self.dns_dir(project)
        if folder.is_dir():
            for child in folder.iterdir():
                with contextlib.suppress(OSError):
                    child.unlink()
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            folder.parent.rmdir()


class Reservation:
    """What ``NetworkManager.reserve`` took for a container, for ``connect``."""

    __slots__ = ("container", "endpoints", "networks", "ports", "project", "service", "states")

    def __init__(self, project: str, container: str, service: Any, networks: tuple[Attachment, ...],
                 states: list[dict[str, Any]], endpoints: dict[str, dict[str, Any]],
                 ports: list[PublishedPort]) -> None:
        self.project = project
        self.container = container
        self.service = service
        self.networks = networks
        self.states = states
        self.endpoints = endpoints
        self.ports = ports


class NetnsHook:
    """``spawn``'s network hook. ``prepare`` (called while the container's PID 1 is on its way, no
    namespace needed) reserves the addresses and ports; the call with PID 1's pid plumbs them into
    its namespace; ``abandon`` (the start failed before the call) gives them back."""

    def __init__(self, manager: NetworkManager, project: str, container: str, service: Any,
                 networks: Sequence[Attachment], run_dir: Path | str | None) -> None:
        self.manager = manager
        self.project = project
        self.container = container
        self.service = service
        self.networks = tuple(networks)
        self.run_dir = run_dir
        self.reservation: Reservation | None = None
        self.failure: BaseException | None = None

    def prepare(self) -> None:
        try:
            self.reservation = self.manager.reserve(self.project, self.container, self.service, self.networks)
        except BaseException as exc:  # raised where the start expects it: from the call
            self.failure = exc

    def __call__(self, pid: int) -> None:
        if self.failure is not None:
            raise self.failure
        if self.reservation is None:
            self.prepare()
            if self.failure is not None:
                raise self.failure
        assert self.reservation is not None
        self.manager.connect_retrying(self.reservation, netns=f"/proc/{pid}/ns/net", run_dir=self.run_dir)

    def abandon(self) -> None:
        if self.reservation is not None:
            self.reservation = None
            self.manager.detach(self.project, self.container)
