"""What native networks let through to the host and from the LAN (issue 15, findings 3 and 12).

Real bridges, busybox containers, and a "LAN neighbour": a network namespace these tests make,
joined to the host by a veth pair, standing for another machine on the host's network. Packets
an attacker would craft are built here and sent from the container's (or the neighbour's)
namespace through an AF_PACKET socket: a container may do the same itself, it has CAP_NET_RAW
(Docker's default set has it too). A packet that must not arrive is sent before a control packet
that takes the same path and must arrive: once the controls are in, the forbidden ones would be
too, so no assertion waits for a packet that never comes.

Traffic goes only to loopback and to addresses inside the bridges and namespaces made here. Each
test removes what it made and asserts it is gone: its bridges, veths, composer's iptables rules
for them, its port proxies and DNS daemon, the neighbour's namespace and veth.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import os
import random
import select
import socket
import struct
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.network import dns, firewall
from composer.backends.native.network.manager import Attachment, NetworkManager
from composer.backends.native.runtime.api import Runtime
from composer.spec.models.service import PortConfig, ServiceConfig, ServiceNetworkConfig
from tests.integration.native.test_network import SERVER, Stack, free_ports, tcp_read
from tests.integration.native.test_runtime import image, residue, session_root  # noqa: F401 - fixtures
from tests.integration.timeouts import scaled

CAP_NET_RAW = 13
ETH_P_IP = 0x0800
PACKET_OUTGOING = 4
TCP_SYN, TCP_ACK = 0x02, 0x10


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def net_env(image: tuple[ImageStore, ImageRecord], session_root: Path,  # noqa: F811
            ) -> Iterator[tuple[Runtime, NetworkManager, ImageRecord]]:
    store, record = image
    run_root = session_root / "isolation-run"
    rt = Runtime(store, run_root=run_root, cgroup_parent=f"composer-isotest-{uuid.uuid4().hex[:8]}")
    yield rt, NetworkManager(run_root), record
    (run_root / "networks" / ".lock").unlink(missing_ok=True)  # the networks' lock stays (see test_network)
    with contextlib.suppress(OSError):
        (run_root / "networks").rmdir()
    residue(rt)  # mounts, cgroups, files, and processes naming the run root (proxies, DNS daemons)


class IsolationStack(Stack):
    """test_network's Stack, remembering its bridges and veths for the residue check."""

    def __init__(self, rt: Runtime, manager: NetworkManager, record: ImageRecord) -> None:
        super().__init__(rt, manager, record)
        self.bridges: list[str] = []
        self.veths: list[str] = []

    def network(self, key: str, **config: Any) -> dict[str, Any]:
        state = super().network(key, **config)
        self.bridges.append(state["bridge"])
        return state

    def run(self, name: str, script: str, networks: dict[str, ServiceNetworkConfig | None] | None = None,
            **settings: Any) -> str:
        container = super().run(name, script, networks, **settings)
        self.veths += [e["veth"] for e in self.manager.endpoints(container).values()]
        return container

    def endpoint(self, name: str, key: str = "default") -> dict[str, Any]:
        return self.manager.endpoints(f"{self.project}-{name}")[f"{self.project}_{key}"]

    def netns(self, name: str) -> str:
        return f"/proc/{self.pid(name)}/ns/net"

    def bridge(self, key: str = "default") -> str:
        state = self.manager.network(f"{self.project}_{key}")
        assert state is not None
        return str(state["bridge"])

    def processes(self) -> list[str]:
        """The project's port proxies and DNS daemon (their command lines name the run root, and
        the project or its containers)."""
        return [line for line in command_lines() if str(self.manager.run_root) in line and self.project in line]

    def residue(self) -> list[str]:
        links = set(os.listdir("/sys/class/net"))
        found = [f"link {name}" for name in (*self.bridges, *self.veths) if name in links]
        found += [f"rule {rule}" for rule in firewall.composer_rules() if any(b in rule for b in self.bridges)]
        return found + [f"process {p}" for p in self.processes()]


@pytest.fixture
def stack(net_env: tuple[Runtime, NetworkManager, ImageRecord]) -> Iterator[IsolationStack]:
    s = IsolationStack(*net_env)
    try:
        yield s
    finally:
        s.down()
    assert s.residue() == []


def command_lines() -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
    return found


# --- namespaces, sockets and packets ------------------------------------------------------------


def socket_in(netns: str, family: int, kind: int, protocol: int = 0) -> socket.socket:
    """A socket created inside the network namespace at ``netns`` (a thread that setns-es)."""
    libc = ctypes.CDLL(None, use_errno=True)
    made: list[socket.socket] = []

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns, os.O_RDONLY)
        try:
            assert libc.setns(target, 0x40000000) == 0
            made.append(socket.socket(family, kind, protocol))
            assert libc.setns(own, 0x40000000) == 0
        finally:
            os.close(own)
            os.close(target)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return made[0]


def packet_socket(netns: str, ifname: str) -> socket.socket:
    """An AF_PACKET socket on ``ifname`` of ``netns`` that sends frames and receives IPv4 ones."""
    sock = socket_in(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
    sock.bind((ifname, ETH_P_IP))
    return sock


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int(word) for word in struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@dataclass(frozen=True)
class Wire:
    """Where a crafted frame starts: the sender's MAC and IPv4 address, and the next hop's MAC."""

    src_mac: str
    dst_mac: str
    src_ip: str

    def frame(self, dst_ip: str, protocol: int, segment: bytes) -> bytes:
        src, dst = socket.inet_aton(self.src_ip), socket.inet_aton(dst_ip)
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(segment), random.randrange(65536), 0, 64,
                             protocol, 0, src, dst)
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        return bytes.fromhex(self.dst_mac.replace(":", "")) + bytes.fromhex(self.src_mac.replace(":", "")) + \
            b"\x08\x00" + header + segment

    def pseudo(self, dst_ip: str, protocol: int, length: int) -> bytes:
        return socket.inet_aton(self.src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, protocol, length)

    def udp(self, dst_ip: str, dport: int, payload: bytes, sport: int = 40000) -> bytes:
        length = 8 + len(payload)
        segment = struct.pack("!HHHH", sport, dport, length, 0) + payload
        sum_ = checksum(self.pseudo(dst_ip, socket.IPPROTO_UDP, length) + segment) or 0xFFFF
        return self.frame(dst_ip, socket.IPPROTO_UDP, segment[:6] + struct.pack("!H", sum_) + segment[8:])

    def syn(self, dst_ip: str, dport: int, sport: int) -> bytes:
        segment = struct.pack("!HHIIBBHHH", sport, dport, random.randrange(1 << 32), 0, 5 << 4, TCP_SYN, 64240, 0, 0)
        sum_ = checksum(self.pseudo(dst_ip, socket.IPPROTO_TCP, len(segment)) + segment)
        return self.frame(dst_ip, socket.IPPROTO_TCP, segment[:16] + struct.pack("!H", sum_) + segment[18:])


def syn_acks(sniffer: socket.socket, expected: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Read IPv4 frames arriving on ``sniffer`` until a SYN-ACK from each of ``expected``
    (address, port) came, then those already there; every (address, port) a SYN-ACK came from."""
    seen: set[tuple[str, int]] = set()
    sniffer.settimeout(10)
    while not expected <= seen or select.select([sniffer], [], [], 0)[0]:
        try:
            frame, address = sniffer.recvfrom(65535)
        except TimeoutError:
            pytest.fail(f"no SYN-ACK from {sorted(expected - seen)}: the control packets were lost")
        if address[2] == PACKET_OUTGOING or len(frame) < 54 or frame[23] != socket.IPPROTO_TCP:
            continue
        ihl = (frame[14] & 0xF) * 4
        tcp = frame[14 + ihl:]
        if tcp[13] & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK:
            seen.add((socket.inet_ntoa(frame[26:30]), struct.unpack("!H", tcp[:2])[0]))
    return seen


def received(sock: socket.socket) -> list[bytes]:
    """The datagrams waiting on ``sock`` now."""
    found = []
    while select.select([sock], [], [], 0)[0]:
        found.append(sock.recv(65535))
    return found


def mac_of(ifname: str, netns: str | None = None) -> str:
    prefix = ["ip", "-n", netns] if netns else ["ip"]
    out = subprocess.run([*prefix, "-j", "link", "show", ifname], capture_output=True, text=True, check=True).stdout
    return str(json.loads(out)[0]["address"])


def cap_eff(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("CapEff:")), 16)


@dataclass(frozen=True)
class Neighbour:
    """Another machine on the host's LAN: namespace ``netns`` (``/run/netns/<name>``), its
    ``eth0`` at ``address`` joined to the host's ``host_if`` at ``host_address``, its default
    route through the host."""

    name: str
    host_if: str
    address: str
    host_address: str

    @property
    def netns(self) -> str:
        return f"/run/netns/{self.name}"

    def wire(self) -> Wire:
        return Wire(mac_of("eth0", self.name), mac_of(self.host_if), self.address)


def _unused_slash30() -> ipaddress.IPv4Network:
    """A /30 of 198.18.0.0/15 (RFC 2544, benchmarking) that no route of the host covers."""
    routes = subprocess.run(["ip", "-j", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                            check=True).stdout
    used = []
    for route in json.loads(routes):
        with contextlib.suppress(ValueError):
            used.append(ipaddress.ip_network(route.get("dst", ""), strict=False))  # not "default"
    pool = ipaddress.ip_network("198.18.0.0/15")
    while True:
        candidate = ipaddress.IPv4Network((int(pool.network_address) + 4 * random.randrange(1 << 15), 30))
        if not any(u.overlaps(candidate) for u in used):
            return candidate


@contextlib.contextmanager
def neighbour() -> Iterator[Neighbour]:
    tag = uuid.uuid4().hex[:8]
    subnet = _unused_slash30()
    host_address, address = (str(a) for a in list(subnet.hosts())[:2])
    made = Neighbour(f"cmpnb{tag}", f"nbh{tag}", address, host_address)

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    ip("netns", "add", made.name)
    try:
        ip("link", "add", made.host_if, "type", "veth", "peer", "name", "eth0", "netns", made.name)
        ip("addr", "add", f"{host_address}/30", "dev", made.host_if)
        ip("link", "set", made.host_if, "up")
        ip("-n", made.name, "addr", "add", f"{address}/30", "dev", "eth0")
        ip("-n", made.name, "link", "set", "eth0", "up")
        ip("-n", made.name, "link", "set", "lo", "up")
        ip("-n", made.name, "route", "add", "default", "via", host_address)
        yield made
    finally:
        subprocess.run(["ip", "link", "del", made.host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", made.name], capture_output=True, check=False)
        assert not os.path.exists(f"/sys/class/net/{made.host_if}")
        assert made.name not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True,
                                               check=True).stdout


def udp_server_in(netns: str, port: int) -> socket.socket:
    sock = socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    return sock


# --- finding 3: the host's loopback -------------------------------------------------------------


def loopback_breaches(netns: str, wire: Wire, gateway: str) -> list[str]:
    """Send frames from ``netns`` (a container's, ``eth0``) through its gateway to UDP and TCP
    services on the host's 127.0.0.1, each followed by a control to the same kind of service on
    the gateway's address; once the controls are in: what reached the loopback services."""
    with contextlib.ExitStack() as sockets:
        loopback_udp, control_udp = (sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
                                     for _ in range(2))
        loopback_tcp, control_tcp = (sockets.enter_context(socket.socket()) for _ in range(2))
        for sock, address in ((loopback_udp, "127.0.0.1"), (control_udp, gateway), (loopback_tcp, "127.0.0.1"),
                              (control_tcp, gateway)):
            sock.bind((address, 0))
        loopback_tcp.listen()
        control_tcp.listen()
        sender = sockets.enter_context(packet_socket(netns, "eth0"))
        sniffer = sockets.enter_context(packet_socket(netns, "eth0"))
        # the host knows the container's MAC first: a SYN-ACK from 127.0.0.1 (when it is sent)
        # would otherwise wait for an ARP request the container drops (its sender is 127.0.0.1)
        sender.send(wire.syn(gateway, control_tcp.getsockname()[1], 42999))
        syn_acks(sniffer, {(gateway, control_tcp.getsockname()[1])})
        for i in range(3):
            sender.send(wire.udp("127.0.0.1", loopback_udp.getsockname()[1], b"breach"))
            sender.send(wire.udp(gateway, control_udp.getsockname()[1], b"control"))
            sender.send(wire.syn("127.0.0.1", loopback_tcp.getsockname()[1], 41000 + i))
            sender.send(wire.syn(gateway, control_tcp.getsockname()[1], 42000 + i))
        control_udp.settimeout(10)
        assert [control_udp.recv(100) for _ in range(3)] == [b"control"] * 3
        answered = syn_acks(sniffer, {(gateway, control_tcp.getsockname()[1])})
        breaches = [f"udp: {data!r}" for data in received(loopback_udp)]
        if ("127.0.0.1", loopback_tcp.getsockname()[1]) in answered:
            breaches.append("tcp: a SYN-ACK from 127.0.0.1")
        return breaches


def test_a_container_cannot_reach_the_hosts_loopback_even_with_raw_packets(stack: IsolationStack) -> None:
    """A frame to the gateway's MAC with destination 127.0.0.1 reaches the host's loopback
    services when the bridge has route_localnet=1 (as composer set it): the host takes it for
    local delivery. With 0 (Docker's default: it sets 1 only with userland-proxy=false, and then
    adds raw-table guards), the kernel drops it as a martian destination."""
    stack.network("default")
    bridge = stack.bridge()
    route_localnet = Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet")
    assert route_localnet.read_text().strip() == "0"
    route_localnet.write_text("1")  # as an older composer left its bridges: a container joining resets it
    stack.run("probe-1", "sleep 300", service="probe")
    assert cap_eff(stack.pid("probe-1")) & (1 << CAP_NET_RAW)  # the container could send these itself
    assert route_localnet.read_text().strip() == "0"
    endpoint = stack.endpoint("probe-1")
    wire = Wire(endpoint["mac"], Path(f"/sys/class/net/{bridge}/address").read_text().strip(), endpoint["ipv4"])
    assert loopback_breaches(stack.netns("probe-1"), wire, stack.gateway("default")) == []


@contextlib.contextmanager
def docker_container(api: Any, reference: str, ports: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """A running busybox container of the Docker Engine on its default bridge (``ports``: its
    port bindings, docker-py's form); its inspection. Removed on the way out."""
    container = api.create_container(reference, command=["sleep", "300"],
                                     name=f"composer-isotest-{uuid.uuid4().hex[:8]}",
                                     ports=[tuple(key.split("/")) for key in ports or {}],
                                     host_config=api.create_host_config(port_bindings=ports or {}))
    try:
        api.start(container)
        yield dict(api.inspect_container(container))
    finally:
        api.remove_container(container, force=True)


def docker_bridge(api: Any) -> str:
    return str(api.inspect_network("bridge")["Options"].get("com.docker.network.bridge.name", "docker0"))


def test_dockers_verdict_on_the_hosts_loopback_is_the_same(docker_api: Any, busybox_image: str) -> None:
    """The same frames from a Docker container (default settings: CAP_NET_RAW too, userland
    proxy, route_localnet=0 on its bridge): nothing reaches the host's loopback either."""
    with docker_container(docker_api, busybox_image) as inspected:
        pid = int(inspected["State"]["Pid"])
        assert cap_eff(pid) & (1 << CAP_NET_RAW)
        network = inspected["NetworkSettings"]["Networks"]["bridge"]
        bridge = docker_bridge(docker_api)
        assert Path(f"/proc/sys/net/ipv4/conf/{bridge}/route_localnet").read_text().strip() == "0"
        wire = Wire(network["MacAddress"], Path(f"/sys/class/net/{bridge}/address").read_text().strip(),
                    network["IPAddress"])
        assert loopback_breaches(f"/proc/{pid}/ns/net", wire, network["Gateway"]) == []


def test_a_port_published_on_loopback_is_the_hosts_only(stack: IsolationStack) -> None:
    """Ports published on 127.0.0.1 and on every address both answer the host on 127.0.0.1
    (through the port proxy, as through Docker's docker-proxy). A LAN neighbour sending to
    127.0.0.1:P got DNATed to the container (moby#41872); Docker drops that in raw PREROUTING
    unless it arrives on lo, and so does composer, even on an interface with route_localnet=1."""
    stack.network("default")
    base = free_ports(4)
    ports = (PortConfig(target=80, published=str(base), host_ip="127.0.0.1"),
             PortConfig(target=81, published=str(base + 1)),
             PortConfig(target=53, published=str(base + 2), host_ip="127.0.0.1", protocol="udp"),
             PortConfig(target=54, published=str(base + 3), protocol="udp"))
    stack.run("web-1", "(while true; do nc -l -p 81 -e echo port-81; done) & " + SERVER, ports=ports, service="web")
    loopback_udp = udp_server_in(stack.netns("web-1"), 53)
    everywhere_udp = udp_server_in(stack.netns("web-1"), 54)
    with loopback_udp, everywhere_udp:
        assert tcp_read(base).startswith("hi-from-")
        assert tcp_read(base + 1) == "port-81\n"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.sendto(b"from-the-host", ("127.0.0.1", base + 2))
        loopback_udp.settimeout(10)
        assert loopback_udp.recv(100) == b"from-the-host"
        assert len([p for p in stack.processes() if "proxy.py" in p]) == 1
        proxy = Path(f"/proc/{stack.endpoint('web-1')['proxy']['pid']}/status").read_text()
        assert "\nUid:\t65534\t65534\t65534\t65534\n" in proxy  # nobody: it holds only its sockets
        assert "\nCapEff:\t0000000000000000\n" in proxy
        bridge = stack.bridge()
        rules = [r for r in firewall.composer_rules() if f"composer:port:{bridge}:" in r]
        assert f"-A COMPOSER-PREROUTING -d 127.0.0.1/32 ! -i lo -p udp -m udp --dport {base + 2}" in "\n".join(rules)
        assert f"-A COMPOSER-PREROUTING -d 127.0.0.1/32 ! -i lo -p tcp -m tcp --dport {base}" in "\n".join(rules)
        assert not [r for r in rules if "DNAT" in r and "127.0.0.1" in r]
        with neighbour() as lan:
            # A host whose LAN interface has route_localnet=1 (another tool's doing) would deliver
            # 127.0.0.1 from the LAN to the proxy: only the raw rule stops that.
            Path(f"/proc/sys/net/ipv4/conf/{lan.host_if}/route_localnet").write_text("1")
            wire = lan.wire()
            with packet_socket(lan.netns, "eth0") as sender:
                for _ in range(3):
                    sender.send(wire.udp("127.0.0.1", base + 2, b"breach"))
                    sender.send(wire.udp(lan.host_address, base + 3, b"control"))
            everywhere_udp.settimeout(10)
            assert [everywhere_udp.recv(100) for _ in range(3)] == [b"control"] * 3
            assert received(loopback_udp) == []
    stack.down()
    assert stack.processes() == []
    assert not [r for r in firewall.composer_rules() if bridge in r]


def test_dockers_verdict_on_a_port_published_on_loopback(docker_api: Any, busybox_image: str) -> None:
    """The same frames from a LAN neighbour to a Docker container's port published on 127.0.0.1
    (on an interface with route_localnet=0: Docker's own DNAT, not the proxy, is the way in).
    Docker before 28.0 DNATs them into the container (moby#41872): composer is stricter, which
    is allowed. 28.0 and later drop them in raw PREROUTING, as composer does."""
    base = free_ports(2)
    ports = {"53/udp": ("127.0.0.1", base), "54/udp": base + 1}
    with docker_container(docker_api, busybox_image, ports) as inspected:
        netns = f"/proc/{inspected['State']['Pid']}/ns/net"
        with udp_server_in(netns, 53) as loopback_udp, udp_server_in(netns, 54) as everywhere_udp, \
                neighbour() as lan:
            wire = lan.wire()
            with packet_socket(lan.netns, "eth0") as sender:
                for _ in range(3):
                    sender.send(wire.udp("127.0.0.1", base, b"breach"))
                    sender.send(wire.udp(lan.host_address, base + 1, b"control"))
            everywhere_udp.settimeout(10)
            assert [everywhere_udp.recv(100) for _ in range(3)] == [b"control"] * 3
            breached = received(loopback_udp)
    major = int(str(docker_api.version()["Version"]).split(".")[0])
    assert bool(breached) == (major < 28), (major, breached)


def test_the_proxy_goes_with_the_container_and_a_restart_gets_the_ports_again(stack: IsolationStack) -> None:
    stack.network("default")
    port = free_ports(1)
    container = stack.run("web-1", SERVER, ports=(PortConfig(target=80, published=str(port), host_ip="127.0.0.1"),),
                          service="web")
    assert tcp_read(port).startswith("hi-from-")
    stack.rt.kill(stack.project, container)
    stack.rt.wait(stack.project, container, timeout=scaled(30))
    deadline = time.monotonic() + 10  # the proxy sees PID 1's pidfd readable and exits
    while [p for p in stack.processes() if "proxy.py" in p]:
        assert time.monotonic() < deadline, stack.processes()
        time.sleep(0.02)
    # started again under the same name (a restart, as the supervisor does): the ports are
    # free, and the new proxy answers
    service = ServiceConfig(name="web", image=stack.record.reference,
                            ports=(PortConfig(target=80, published=str(port), host_ip="127.0.0.1"),))
    hook = stack.manager.on_netns(stack.project, container, service, [Attachment(f"{stack.project}_default")],
                                  run_dir=stack.rt.run_dir(stack.project, container))
    stack.rt.start(stack.project, container, on_netns=hook)
    assert tcp_read(port).startswith("hi-from-")
    assert len([p for p in stack.processes() if "proxy.py" in p]) == 1
    tag = f"composer:port:{stack.bridge()}:{container}"
    assert len([r for r in firewall.composer_rules() if tag in r]) == 1  # the first start's rule went


# --- finding 12: the embedded DNS ----------------------------------------------------------------


def query(name: str, ident: int = 0x1234, qtype: int = dns.A, flags: int = 0x0100) -> bytes:
    return struct.pack("!HHHHHH", ident, flags, 1, 0, 0, 0) + dns.encode_name(name) + struct.pack("!HH", qtype, 1)


def answer_addresses(message: bytes) -> list[str]:
    """The A records of a response to a one-question query made by ``query`` (names compressed
    as the responder writes them)."""
    count = struct.unpack("!H", message[6:8])[0]
    offset = 12
    while message[offset]:
        offset += 1 + message[offset]
    offset += 5
    found = []
    for _ in range(count):
        rtype, _, _, length = struct.unpack("!HHIH", message[offset + 2:offset + 12])
        if rtype == dns.A:
            found.append(socket.inet_ntoa(message[offset + 12:offset + 12 + length]))
        offset += 12 + length
    return found


def ask(sock: socket.socket, server: str, message: bytes) -> bytes:
    """Send ``message`` to ``server``:53 on a connected UDP socket; the answer (a refusal, the
    ICMP port unreachable, raises ConnectionRefusedError)."""
    sock.connect((server, 53))
    sock.settimeout(10)
    sock.send(message)
    return sock.recv(65535)


def test_the_dns_answers_only_its_own_networks_containers(stack: IsolationStack) -> None:
    """Docker's resolver listens on 127.0.0.11 inside each container's namespace: nothing else
    can reach it. composer's listens on the gateway, bound to the network's bridge: the host, a
    neighbour on the LAN and a container of another network used to get answers (this network's
    names included); now they get a port unreachable (UDP) or a reset (TCP), and the host, whose
    own traffic to the gateway the kernel counts as arriving on the bridge, gets REFUSED."""
    stack.network("front")
    stack.network("back")
    stack.run("web-1", "sleep 300", {"front": None}, service="web")
    stack.run("other-1", "sleep 300", {"back": None}, service="other")
    gateway = stack.gateway("front")
    web = stack.endpoint("web-1", "front")["ipv4"]
    with socket_in(stack.netns("web-1"), socket.AF_INET, socket.SOCK_DGRAM) as own:
        assert answer_addresses(ask(own, gateway, query("web"))) == [web]
    with socket_in(stack.netns("other-1"), socket.AF_INET, socket.SOCK_DGRAM) as other, \
            pytest.raises(ConnectionRefusedError):
        ask(other, gateway, query("web"))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as host:  # any local user
        refused = ask(host, gateway, query("web"))
        assert refused[3] & 0xF == dns.REFUSED
        assert answer_addresses(refused) == []
    with neighbour() as lan:
        with socket_in(lan.netns, socket.AF_INET, socket.SOCK_DGRAM) as outsider, \
                pytest.raises(ConnectionRefusedError):
            ask(outsider, gateway, query("web"))
        with socket_in(lan.netns, socket.AF_INET, socket.SOCK_STREAM) as outsider_tcp:
            outsider_tcp.settimeout(10)
            with pytest.raises(ConnectionRefusedError):
                outsider_tcp.connect((gateway, 53))


def dns_threads(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads:")))


def test_the_dns_concurrency_is_bounded_and_its_names_stay_answered(stack: IsolationStack) -> None:
    """One thread per query before: a container asking for 400 names whose upstream server never
    answers (2 s each) made 400 threads. Now a fixed pool forwards, a full queue drops, and the
    network's own names are answered meanwhile. (Docker's resolver bounds its concurrent
    forwarded queries too, and answers its own names without them.)"""
    stack.network("default")
    state = stack.manager.network(f"{stack.project}_default")
    assert state is not None
    dead_upstream = str(ipaddress.ip_network(state["pools"][0]["subnet"]).network_address + 250)  # nobody there
    stack.run("web-1", "sleep 300", service="web")
    stack.run("client-1", "sleep 300", service="client", dns=(dead_upstream,))
    daemon = stack.manager.dns_pid(stack.project)
    assert daemon is not None
    gateway = stack.gateway("default")
    with socket_in(stack.netns("client-1"), socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.connect((gateway, 53))
        for i in range(400):
            client.send(query(f"n{i}.example.invalid", ident=i))
        peak = 0
        for _ in range(20):  # while the forwarded queries wait for the dead server
            peak = max(peak, dns_threads(daemon))
            time.sleep(0.02)
        assert peak <= 1 + dns.UDP_WORKERS, peak
        client.send(query("web", ident=60000))
        client.settimeout(10)
        while (reply := client.recv(65535))[:2] != struct.pack("!H", 60000):
            pass  # a SERVFAIL of a forwarded one
        assert answer_addresses(reply) == [stack.endpoint("web-1")["ipv4"]]
    assert stack.manager.dns_pid(stack.project) == daemon


def tcp_ask(netns: str, server: str, message: bytes) -> bytes | None:
    """``message`` over a new TCP connection from ``netns``; the answer, None when the server
    closed the connection without one."""
    with socket_in(netns, socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect((server, 53))
        try:
            conn.sendall(struct.pack("!H", len(message)) + message)
            return dns.read_tcp_message(conn)
        except ConnectionError:  # reset, or a broken pipe: closed before all was sent
            return None


def test_the_dns_serves_a_bounded_number_of_tcp_connections(stack: IsolationStack) -> None:
    """A thread per TCP connection before, for as long as the client kept it open. Now
    TCP_CONNECTIONS at once: one more is closed without an answer while UDP still answers, and
    a slot is free again once a connection ends."""
    stack.network("default")
    stack.run("web-1", "sleep 300", service="web")
    stack.run("client-1", "sleep 300", service="client")
    gateway, netns = stack.gateway("default"), stack.netns("client-1")
    web = stack.endpoint("web-1")["ipv4"]
    with contextlib.ExitStack() as held:
        for _ in range(dns.TCP_CONNECTIONS):  # idle connections, each holding a slot
            conn = held.enter_context(socket_in(netns, socket.AF_INET, socket.SOCK_STREAM))
            conn.connect((gateway, 53))
        assert tcp_ask(netns, gateway, query("web")) is None
        with socket_in(netns, socket.AF_INET, socket.SOCK_DGRAM) as udp:
            assert answer_addresses(ask(udp, gateway, query("web"))) == [web]
    deadline = time.monotonic() + 10  # the server's threads see the held connections close
    while (reply := tcp_ask(netns, gateway, query("web"))) is None:
        assert time.monotonic() < deadline, "no TCP slot came free"
        time.sleep(0.05)
    assert answer_addresses(reply) == [web]


def test_malformed_queries_are_dropped_and_the_dns_keeps_answering(stack: IsolationStack) -> None:
    stack.network("default")
    stack.run("web-1", "sleep 300", service="web")
    stack.run("client-1", "sleep 300", service="client")
    daemon = stack.manager.dns_pid(stack.project)
    gateway = stack.gateway("default")
    header = struct.pack("!HHHHHH", 7, 0x0100, 1, 0, 0, 0)
    malformed = [
        b"",
        b"\x12",
        struct.pack("!HHHHHH", 7, 0x0100, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF),  # huge counts, no question
        header + b"\x3fabc",  # a label longer than the message
        header + b"\xc0\x0c\x00\x01\x00\x01",  # a compression pointer to itself (a loop)
        header + b"\x03web\xc0\x0c\x00\x01\x00\x01",  # a pointer back into the name
        header + b"\x03web\x00",  # no type or class
        header + (b"\x3f" + b"a" * 63) * 1000 + b"\x00\x00\x01\x00\x01",  # 64 KB of labels
        query("web", ident=7, flags=0x8100),  # a response: answering it could loop
        bytes(random.Random(15).randrange(256) for _ in range(512)),
    ]
    with socket_in(stack.netns("client-1"), socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.connect((gateway, 53))
        for message in malformed:
            client.send(message)
        client.send(query("web", ident=60001))
        client.settimeout(10)
        reply = client.recv(65535)
        assert reply[:2] == struct.pack("!H", 60001)  # nothing came back for the malformed ones
        assert answer_addresses(reply) == [stack.endpoint("web-1")["ipv4"]]
    netns = stack.netns("client-1")
    for message in (b"\xff\xff" + b"abc", b"\x00\x05hello", b"\x00\x02" + b"\xc0\x0c"):
        with socket_in(netns, socket.AF_INET, socket.SOCK_STREAM) as conn:
            conn.settimeout(10)
            conn.connect((gateway, 53))
            conn.sendall(message)
            conn.shutdown(socket.SHUT_WR)
            assert conn.recv(100) == b""  # closed without an answer
    with socket_in(netns, socket.AF_INET, socket.SOCK_STREAM) as conn:
        conn.settimeout(10)
        conn.connect((gateway, 53))
        message = query("web", ident=60002)
        conn.sendall(struct.pack("!H", len(message)) + message)
        reply = dns.read_tcp_message(conn) or b""
        assert answer_addresses(reply) == [stack.endpoint("web-1")["ipv4"]]
    assert stack.manager.dns_pid(stack.project) == daemon
