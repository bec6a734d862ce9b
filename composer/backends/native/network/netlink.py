"""The one module that imports pyroute2: a thin, typed rtnetlink wrapper.

Host-side calls go through one ``IPRoute`` socket. Calls inside a container's network namespace
use a netlink socket opened by a short-lived thread that ``setns``-es into ``/proc/<pid>/ns/net``
(setns of a network namespace is per thread), so nothing forks (pyroute2's ``IPRoute(netns=)``
forks a helper: unsafe in a threaded process, NATIVE.md §4.2). The veth peer is created directly
inside the namespace (``peer={"net_ns_fd": ...}``), the fast path measured in LIMITS.md §3.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any


def _import_pyroute2() -> tuple[Any, type[Exception]]:
    """IPRoute and NetlinkError without running ``pyroute2/__init__``, which imports all of
    pyroute2 (NDB, IPDB, conntrack, ethtool...: about half of its ~0.15 s import, and every
    ``up`` creating a network waits for it). The package is registered bare, as a namespace,
    and only the two modules used here are imported; if that ever fails (another layout), the
    package is imported normally."""
    import importlib.util
    import sys
    import types

    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            package = types.ModuleType("pyroute2")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["pyroute2"] = package
            try:
                from pyroute2.iproute.linux import IPRoute as iproute
                from pyroute2.netlink.exceptions import NetlinkError as error
            except ImportError:
                for name in [m for m in sys.modules if m == "pyroute2" or m.startswith("pyroute2.")]:
                    del sys.modules[name]
            else:
                return iproute, error
    from pyroute2 import IPRoute as iproute
    from pyroute2.netlink.exceptions import NetlinkError as error

    return iproute, error


if TYPE_CHECKING:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
else:
    IPRoute, NetlinkError = _import_pyroute2()

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class LinkError(OSError):
    """An rtnetlink request failed; ``errno`` is the kernel's."""


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str | None
    master: int | None


def _raise(exc: NetlinkError, what: str) -> LinkError:
    code = int(exc.code) if exc.code else errno.EIO
    return LinkError(code, f"{what}: {os.strerror(code)}")


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def netns_socket(path: str) -> socket.socket:
    """A NETLINK_ROUTE socket living in the network namespace at ``path``."""
    result: dict[str, Any] = {}

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                _setns(target)
                try:
                    result["sock"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
                finally:
                    _setns(own)
            finally:
                os.close(target)
        except OSError as exc:
            result["error"] = exc
        finally:
            os.close(own)

    thread = threading.Thread(target=run, name="composer-netns")
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]
    sock: socket.socket = result["sock"]
    return sock


class _Base:
    def __init__(self, ipr: Any) -> None:
        self._ipr = ipr
        # name -> index while this socket is open (an attach asks for the same links several
        # times: the bridge, the new veth, eth0 inside); delete forgets the name.
        self._indices: dict[str, int] = {}

    def close(self) -> None:
        self._ipr.close()

    def __enter__(self) -> _Base:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def index(self, name: str) -> int | None:
        if name in self._indices:
            return self._indices[name]
        # One RTM_GETLINK for that name: link_lookup dumps every link, and a host with fifty
        # containers has a hundred (every start looked some up).
        try:
            found = self._ipr.link("get", ifname=name)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return None
            raise _raise(exc, f"look up {name}") from None
        if not found:
            return None
        self._indices[name] = int(found[0]["index"])
        return self._indices[name]

    def links(self) -> list[Link]:
        result = []
        for msg in self._ipr.link("dump"):
            info = msg.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info is not None else None
            result.append(Link(int(msg["index"]), str(msg.get("IFLA_IFNAME")), kind, msg.get("IFLA_MASTER")))
        return result

    def set_up(self, name: str) -> None:
        index = self.index(name)
        if index is None:
            raise LinkError(errno.ENODEV, f"no such link: {name}")
        try:
            self._ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _raise(exc, f"set {name} up") from None

    def add_address(self, name: str, interface: Interface) -> None:
        index = self.index(name)
        try:
            kwargs: dict[str, Any] = {}
            if interface.version == 4:
                kwargs["broadcast"] = str(interface.network.broadcast_address)
            self._ipr.addr("add", index=index, address=str(interface.ip), prefixlen=interface.network.prefixlen,
                           **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _raise(exc, f"address {interface} on {name}") from None

    def routes(self, family: int = socket.AF_INET) -> list[Network]:
        """Destinations of the main table's routes (the default route excluded)."""
        result: list[Network] = []
        for msg in self._ipr.route("dump", family=family, table=254):
            dst = msg.get("RTA_DST")
            if dst is None or not msg["dst_len"]:
                continue
            result.append(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False))
        return result

    def default_routes(self, family: int = socket.AF_INET) -> list[str]:
        """Gateways of the main table's default routes."""
        return [str(m.get("RTA_GATEWAY") or "") for m in self._ipr.route("dump", family=family, table=254)
                if not m["dst_len"]]

    def add_default_route(self, gateway: Address) -> None:
        try:
            self._ipr.route("add", dst="default" if gateway.version == 4 else "::/0", gateway=str(gateway),
                            family=socket.AF_INET if gateway.version == 4 else socket.AF_INET6)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _raise(exc, f"default route via {gateway}") from None


class HostLinks(_Base):
    """rtnetlink in the caller's (the host's) network namespace."""

    def __init__(self) -> None:
        super().__init__(IPRoute())

    def __enter__(self) -> HostLinks:
        return self

    def add_bridge(self, name: str, mac: str | None = None) -> None:
        """Create bridge ``name`` (an existing one is kept)."""
        kwargs: dict[str, Any] = {"address": mac} if mac else {}
        try:
            self._ipr.link("add", ifname=name, kind="bridge", br_stp_state=0, br_forward_delay=0, **kwargs)
        except NetlinkError as exc:
            if exc.code != errno.EEXIST:
                raise _raise(exc, f"bridge {name}") from None

    def delete(self, name: str) -> bool:
        """Delete link ``name``; False when it did not exist."""
        index = self.index(name)
        self._indices.pop(name, None)
        if index is None:
            return False
        try:
            self._ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code == errno.ENODEV:
                return False
            raise _raise(exc, f"delete {name}") from None
        return True

    def add_veth(self, name: str, bridge: str, netns: str, peer: str, mac: str | None = None) -> None:
        """A veth pair: ``name`` on the host, enslaved to ``bridge`` and up; ``peer`` created
        directly inside the network namespace at path ``netns`` (no move), with ``mac``."""
        master = self.index(bridge)
        if master is None:
            raise LinkError(errno.ENODEV, f"no such bridge: {bridge}")
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            spec: dict[str, Any] = {"ifname": peer, "net_ns_fd": fd}
            if mac:
                spec["address"] = mac
            # enslaved and up in the same request (the kernel configures a new link's master and
            # flags as it registers it, and unregisters it if that fails)
            self._ipr.link("add", ifname=name, kind="veth", peer=spec, master=master, state="up")
        except NetlinkError as exc:
            raise _raise(exc, f"veth {name} on {bridge}") from None
        finally:
            os.close(fd)

    def addresses(self) -> list[Interface]:
        result: list[Interface] = []
        for msg in self._ipr.addr("dump"):
            address = msg.get("IFA_ADDRESS")
            if address:
                result.append(ipaddress.ip_interface(f"{address}/{msg['prefixlen']}"))
        return result


class NamespaceLinks(_Base):
    """rtnetlink inside the network namespace at ``path`` (e.g. ``/proc/<pid>/ns/net``)."""

    def __init__(self, path: str) -> None:
        super().__init__(IPRoute(use_socket=netns_socket(path)))
        self._indices["lo"] = 1  # the kernel's LOOPBACK_IFINDEX, the same in every namespace

    def __enter__(self) -> NamespaceLinks:
        return self


@contextlib.contextmanager
def host() -> Iterator[HostLinks]:
    links = HostLinks()
    try:
        yield links
    finally:
        links.close()


@contextlib.contextmanager
def namespace(path: str) -> Iterator[NamespaceLinks]:
    links = NamespaceLinks(path)
    try:
        yield links
    finally:
        links.close()


def write_sysctl(key: str, value: str) -> None:
    """Set /proc/sys/<key> (dots as slashes) when it differs."""
    path = f"/proc/sys/{key.replace('.', '/')}"
    with open(path) as f:
        if f.read().strip() == value:
            return
    with open(path, "w") as f:
        f.write(value)


def link_names(prefixes: Sequence[str]) -> list[str]:
    """Host links whose names start with one of ``prefixes``."""
    with host() as links:
        return [link.name for link in links.links() if link.name.startswith(tuple(prefixes))]
