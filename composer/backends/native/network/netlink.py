"""The one module that imports pyroute2: a thin, typed rtnetlink wrapper.

Requests go over a plain, blocking ``AF_NETLINK`` socket of our own: pyroute2's message classes
(``ifinfmsg``, ``ifaddrmsg``, ``rtmsg``) encode each request and its ``Marshal`` parses the
replies, read until the kernel's ACK (or ``NLMSG_DONE`` for a dump); no asyncio. pyroute2's socket
classes are not used: in 0.9 they all sit on an asyncio core (``IPRoute`` runs an event loop for
every request, about 0.4 ms of CPU each, eleven requests per container attach; even the low-level
``IPRSocket`` builds a loop per socket and imports the whole core).

Host-side calls go through one socket opened in the caller's namespace. Calls inside a
container's network namespace use a socket opened by a short-lived thread that ``setns``-es into
``/proc/<pid>/ns/net`` (setns of a network namespace is per thread; a socket keeps the namespace
it was created in), so nothing forks (pyroute2's ``IPRoute(netns=)`` forks a helper: unsafe in a
threaded process: fork copies only the calling thread, and locks other threads hold stay locked
in the child). The veth peer is created directly inside the namespace (``IFLA_NET_NS_FD`` in the
peer): moving a device between namespaces is the costliest step of network setup (18-33 ms
median, measured), and creating the peer in place cuts the whole setup to about a third.
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
from types import SimpleNamespace
from typing import Any


def _import_pyroute2() -> SimpleNamespace:
    """pyroute2's rtnetlink message classes and its parser, without running ``pyroute2/__init__``,
    which imports all of pyroute2 (IPRoute and its asyncio core, NDB, conntrack, ethtool...:
    most of its import time, and every ``up`` creating a network waits for it). The package is
    registered bare, as a namespace, and only the modules used here are imported; if that ever
    fails (another layout), the package is imported normally."""
    import importlib.util
    import sys
    import types

    def load() -> SimpleNamespace:
        from pyroute2.netlink import nlmsg
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        try:
            from pyroute2.netlink.marshal import Marshal
        except ImportError:  # pyroute2 < 0.9
            from pyroute2.netlink.nlsocket import Marshal
        # ifinfmsg's fixed part alone: what a lookup by name reads (the index), decoded without
        # building the dozens of attributes of the kernel's answer (most of a lookup's CPU)
        ifinfhead = type("ifinfhead", (nlmsg,), {"fields": ifinfmsg.fields, "nla_map": ()})
        return SimpleNamespace(ifinfmsg=ifinfmsg, ifinfhead=ifinfhead, ifaddrmsg=ifaddrmsg, rtmsg=rtmsg,
                               Marshal=Marshal)

    if "pyroute2" not in sys.modules:
        spec = importlib.util.find_spec("pyroute2")
        if spec is not None and spec.submodule_search_locations:
            package = types.ModuleType("pyroute2")
            package.__path__ = list(spec.submodule_search_locations)
            package.__spec__ = spec
            sys.modules["pyroute2"] = package
            try:
                return load()
            except ImportError:
                for name in [m for m in sys.modules if m == "pyroute2" or m.startswith("pyroute2.")]:
                    del sys.modules[name]
    import pyroute2  # noqa: F401  (the whole package, then the same modules)

    return load()


_pr = _import_pyroute2()

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
# netlink and rtnetlink constants (linux/netlink.h, linux/rtnetlink.h, linux/if.h)
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
_CREATE = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE
_REQUEST = NLM_F_REQUEST | NLM_F_ACK
_DUMP = NLM_F_REQUEST | NLM_F_DUMP
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
IFA_F_NODAD = 0x02  # linux/if_addr.h
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_STATIC = 4
RTN_UNICAST = 1
_RECV_SIZE = 65536  # > the kernel's 32 KiB cap on a dump datagram

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


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


def _route_socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)


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
                    result["sock"] = _route_socket()
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


def _link_message(index: int = 0, up: bool = False, attrs: list[Any] | None = None) -> Any:
    msg = _pr.ifinfmsg()
    msg["family"] = socket.AF_UNSPEC
    msg["ifi_type"] = 0
    msg["index"] = index
    msg["flags"] = msg["change"] = IFF_UP if up else 0
    msg["attrs"] = attrs or []
    return msg


def _route_message(family: int, attrs: list[Any] | None = None, *, add: bool = False) -> Any:
    msg = _pr.rtmsg()
    msg["family"] = family
    msg["dst_len"] = msg["src_len"] = msg["tos"] = msg["scope"] = msg["flags"] = 0
    msg["table"] = RT_TABLE_MAIN
    msg["proto"] = RTPROT_STATIC if add else 0
    msg["type"] = RTN_UNICAST if add else 0
    msg["attrs"] = attrs or []
    return msg


class _Base:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._seq = 0
        self._marshal = _pr.Marshal()
        self._marshal.msg_map = {RTM_NEWLINK: _pr.ifinfmsg, RTM_NEWADDR: _pr.ifaddrmsg, RTM_NEWROUTE: _pr.rtmsg}
        self._lookup = _pr.Marshal()
        self._lookup.msg_map = {RTM_NEWLINK: _pr.ifinfhead}
        # name -> index while this socket is open (an attach asks for the same links several
        # times: the bridge, the new veth, eth0 inside); delete forgets the name.
        self._indices: dict[str, int] = {}

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> _Base:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, msg: Any, msg_type: int, flags: int, what: str, marshal: Any = None) -> list[Any]:
        """Send ``msg`` and read its replies up to the ACK (or NLMSG_DONE for a dump): the
        replies other than those, decoded (by ``marshal``, by default the full messages'). A
        kernel error raises LinkError with its errno."""
        self._seq = seq = self._seq % 0x7FFFFFFF + 1
        header = msg["header"]
        header["type"], header["flags"], header["sequence_number"], header["pid"] = msg_type, flags, seq, 0
        msg.encode()
        self._sock.send(msg.data)
        replies: list[Any] = []
        while True:
            data = self._sock.recv(_RECV_SIZE)
            for reply in (marshal or self._marshal).parse(data):
                header = reply["header"]
                if header["sequence_number"] != seq:
                    continue  # a late answer to an earlier request that raised
                error = header.get("error")
                if error is not None:
                    code = getattr(error, "code", None) or getattr(error, "errno", None) or errno.EIO
                    raise LinkError(code, f"{what}: {os.strerror(code)}")
                if header["type"] in (NLMSG_DONE, NLMSG_ERROR):  # the end of a dump, or the ACK
                    return replies
                replies.append(reply)

    def index(self, name: str) -> int | None:
        if name in self._indices:
            return self._indices[name]
        # One RTM_GETLINK for that name: a dump would list every link, and a host with fifty
        # containers has a hundred (every start looked some up).
        try:
            found = self._request(_link_message(attrs=[("IFLA_IFNAME", name)]), RTM_GETLINK, _REQUEST,
                                  f"look up {name}", self._lookup)
        except LinkError as exc:
            if exc.errno == errno.ENODEV:
                return None
            raise
        if not found:
            return None
        self._indices[name] = int(found[0]["index"])
        return self._indices[name]

    def links(self) -> list[Link]:
        result = []
        for msg in self._request(_link_message(), RTM_GETLINK, _DUMP, "list links"):
            info = msg.get("IFLA_LINKINFO")
            kind = info.get("IFLA_INFO_KIND") if info is not None else None
            result.append(Link(int(msg["index"]), str(msg.get("IFLA_IFNAME")), kind, msg.get("IFLA_MASTER")))
        return result

    def set_up(self, name: str) -> None:
        index = self.index(name)
        if index is None:
            raise LinkError(errno.ENODEV, f"no such link: {name}")
        self._request(_link_message(index, up=True), RTM_NEWLINK, _REQUEST, f"set {name} up")

    def add_address(self, name: str, interface: Interface) -> None:
        index = self.index(name)
        if index is None:
            raise LinkError(errno.ENODEV, f"address {interface} on {name}: {os.strerror(errno.ENODEV)}")
        msg = _pr.ifaddrmsg()
        msg["family"] = socket.AF_INET if interface.version == 4 else socket.AF_INET6
        msg["prefixlen"] = interface.network.prefixlen
        # IPv6: no duplicate address detection, as Docker adds its addresses (IFA_F_NODAD): a
        # tentative address cannot be bound (the network's DNS on an IPv6-only network) nor used
        # for about a second, and the addresses here are the network's own to give.
        msg["flags"] = 0 if interface.version == 4 else IFA_F_NODAD
        msg["scope"] = 0
        msg["index"] = index
        msg["attrs"] = [("IFA_ADDRESS", str(interface.ip))]
        if interface.version == 4:
            msg["attrs"] += [("IFA_BROADCAST", str(interface.network.broadcast_address)),
                             ("IFA_LOCAL", str(interface.ip))]
        try:
            self._request(msg, RTM_NEWADDR, _CREATE, f"address {interface} on {name}")
        except LinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def _routes(self, family: int) -> list[Any]:
        """The main table's routes of ``family`` (the kernel ignores the table in a dump
        request's header: filtered here, RTA_TABLE first, as pyroute2 did)."""
        return [msg for msg in self._request(_route_message(family), RTM_GETROUTE, _DUMP, "list routes")
                if msg.get("table") == RT_TABLE_MAIN]

    def routes(self, family: int = socket.AF_INET) -> list[Network]:
        """Destinations of the main table's routes (the default route excluded)."""
        result: list[Network] = []
        for msg in self._routes(family):
            dst = msg.get("RTA_DST")
            if dst is None or not msg["dst_len"]:
                continue
            result.append(ipaddress.ip_network(f"{dst}/{msg['dst_len']}", strict=False))
        return result

    def default_routes(self, family: int = socket.AF_INET) -> list[str]:
        """Gateways of the main table's default routes."""
        return [str(m.get("RTA_GATEWAY") or "") for m in self._routes(family) if not m["dst_len"]]

    def add_default_route(self, gateway: Address) -> None:
        family = socket.AF_INET if gateway.version == 4 else socket.AF_INET6
        try:
            self._request(_route_message(family, [("RTA_GATEWAY", str(gateway))], add=True), RTM_NEWROUTE,
                          _CREATE, f"default route via {gateway}")
        except LinkError as exc:
            if exc.errno != errno.EEXIST:
                raise


class HostLinks(_Base):
    """rtnetlink in the caller's (the host's) network namespace."""

    def __init__(self) -> None:
        super().__init__(_route_socket())

    def __enter__(self) -> HostLinks:
        return self

    def add_bridge(self, name: str, mac: str | None = None, mtu: int | None = None) -> None:
        """Create bridge ``name`` (an existing one is kept)."""
        attrs: list[Any] = [("IFLA_IFNAME", name)]
        if mac:
            attrs.append(("IFLA_ADDRESS", mac))
        if mtu:
            attrs.append(("IFLA_MTU", mtu))
        attrs.append(("IFLA_LINKINFO", {"attrs": [
            ("IFLA_INFO_KIND", "bridge"),
            ("IFLA_INFO_DATA", {"attrs": [("IFLA_BR_STP_STATE", 0), ("IFLA_BR_FORWARD_DELAY", 0)]}),
        ]}))
        try:
            self._request(_link_message(attrs=attrs), RTM_NEWLINK, _CREATE, f"bridge {name}")
        except LinkError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def delete(self, name: str) -> bool:
        """Delete link ``name``; False when it did not exist."""
        index = self.index(name)
        self._indices.pop(name, None)
        if index is None:
            return False
        try:
            self._request(_link_message(index), RTM_DELLINK, _REQUEST, f"delete {name}")
        except LinkError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise
        return True

    def add_veth(self, name: str, bridge: str, netns: str, peer: str, mac: str | None = None,
                 mtu: int | None = None) -> None:
        """A veth pair: ``name`` on the host, enslaved to ``bridge`` and up; ``peer`` created
        directly inside the network namespace at path ``netns`` (no move), with ``mac``; both
        ends with ``mtu`` when given (the bridge's, as Docker sets it)."""
        master = self.index(bridge)
        if master is None:
            raise LinkError(errno.ENODEV, f"no such bridge: {bridge}")
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            peer_attrs: list[Any] = [("IFLA_IFNAME", peer), ("IFLA_NET_NS_FD", fd)]
            if mac:
                peer_attrs.append(("IFLA_ADDRESS", mac))
            if mtu:
                peer_attrs.append(("IFLA_MTU", mtu))
            spec = {"family": socket.AF_UNSPEC, "ifi_type": 0, "index": 0, "flags": 0, "change": 0,
                    "attrs": peer_attrs}
            attrs = [("IFLA_IFNAME", name), ("IFLA_MASTER", master), ("IFLA_LINKINFO", {"attrs": [
                ("IFLA_INFO_KIND", "veth"), ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", spec)]})]})]
            if mtu:
                attrs.append(("IFLA_MTU", mtu))
            # enslaved and up in the same request (the kernel configures a new link's master and
            # flags as it registers it, and unregisters it if that fails)
            self._request(_link_message(up=True, attrs=attrs), RTM_NEWLINK, _CREATE, f"veth {name} on {bridge}")
        finally:
            os.close(fd)

    def addresses(self) -> list[Interface]:
        result: list[Interface] = []
        msg = _pr.ifaddrmsg()
        msg["family"] = socket.AF_UNSPEC
        msg["prefixlen"] = msg["flags"] = msg["scope"] = msg["index"] = 0
        for reply in self._request(msg, RTM_GETADDR, _DUMP, "list addresses"):
            address = reply.get("IFA_ADDRESS")
            if address:
                result.append(ipaddress.ip_interface(f"{address}/{reply['prefixlen']}"))
        return result


class NamespaceLinks(_Base):
    """rtnetlink inside the network namespace at ``path`` (e.g. ``/proc/<pid>/ns/net``)."""

    def __init__(self, path: str) -> None:
        super().__init__(netns_socket(path))
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
