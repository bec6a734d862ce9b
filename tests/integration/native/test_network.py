"""Native networks with real bridges, namespaces and busybox containers from the runtime.

Traffic goes only to loopback and to addresses inside the bridges and namespaces these tests
create: the containers' upstream resolver is set to 127.0.0.1 (nothing listens: unknown names
fail at once, nothing is forwarded off the host). Each test tears its project down; the module's
residue check then compares the host with what it was before: links (bridges, veths), network
namespaces, composer's iptables rules, and state files.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.network import firewall
from composer.backends.native.network.manager import Attachment, NetworkManager
from composer.backends.native.network.netlink import namespace
from composer.backends.native.runtime.api import Runtime
from composer.errors import BackendError, NotFoundError, PortInUseError
from composer.spec.models.resources import IPAMConfig, IPAMPool, NetworkConfig
from composer.spec.models.service import PortConfig, ServiceConfig, ServiceNetworkConfig
from tests.integration.native.test_lifecycle import eventually
from tests.integration.native.test_runtime import image, residue, session_root  # noqa: F401 - fixtures

LOCAL_DNS = ("127.0.0.1",)


def host_snapshot() -> dict[str, Any]:
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {"links": sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines()
                            if line.split(":")[1].strip().startswith(("cmp-", "cv"))),
            "netns": sorted(netns.split()), "rules": firewall.composer_rules()}


@pytest.fixture(scope="module")
def host_before() -> dict[str, Any]:
    return host_snapshot()


@pytest.fixture(scope="module")
def env(image: tuple[ImageStore, ImageRecord], session_root: Path,  # noqa: F811
        host_before: dict[str, Any]) -> Iterator[tuple[Runtime, NetworkManager, ImageRecord]]:
    store, record = image
    run_root = session_root / "net-run"
    rt = Runtime(store, run_root=run_root, cgroup_parent=f"composer-nettest-{uuid.uuid4().hex[:8]}")
    manager = NetworkManager(run_root)
    yield rt, manager, record
    try:
        leftovers = [p for p in run_root.rglob("*") if p.name != ".lock"] if run_root.exists() else []
        assert not [str(p) for p in leftovers if p.is_file()], leftovers
        assert host_snapshot() == host_before
    finally:  # whatever the host shows, the module's own cgroups and files still go
        # the networks' lock file stays (removing a lock others may hold is racy); the rest is the
        # runtime's residue check, narrowed to this module's processes (others run containers too)
        (run_root / "networks" / ".lock").unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            (run_root / "networks").rmdir()
        mine = [p for p in leftover_processes(rt) if str(run_root) in p or rt.cgroup_parent in p]
        assert not mine, mine
        residue_without_processes(rt)


def leftover_processes(rt: Runtime) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            text = (proc / "cmdline").read_bytes().decode(errors="replace") + (proc / "cgroup").read_text()
            text += "".join(os.readlink(proc / "fd" / fd) for fd in os.listdir(proc / "fd"))
        except OSError:
            continue
        if str(rt.run_root) in text or rt.cgroup_parent in text:
            found.append(f"process {proc.name}: {text[:200]!r}")
    return found


def residue_without_processes(rt: Runtime) -> None:
    import tests.integration.native.test_runtime as runtime_tests

    saved = runtime_tests.leftover_processes
    runtime_tests.leftover_processes = lambda _rt: []  # type: ignore[assignment]
    try:
        residue(rt)
    finally:
        runtime_tests.leftover_processes = saved


class Stack:
    """A project: networks, then containers started with the network hook; ``down`` removes all."""

    def __init__(self, rt: Runtime, manager: NetworkManager, record: ImageRecord) -> None:
        self.rt, self.manager, self.record = rt, manager, record
        self.project = f"nt{uuid.uuid4().hex[:6]}"

    def network(self, key: str, **config: Any) -> dict[str, Any]:
        return self.manager.create_network(self.project, key, f"{self.project}_{key}", NetworkConfig(**config))

    def gateway(self, key: str) -> str:
        state = self.manager.network(f"{self.project}_{key}")
        assert state is not None
        return str(state["pools"][0]["gateway"])

    def run(self, name: str, script: str, networks: dict[str, ServiceNetworkConfig | None] | None = None,
            **settings: Any) -> str:
        """Start container ``<project>-<name>`` of service ``name`` (``settings["service"]``
        overrides) running ``script``; returns the container name."""
        service_name = settings.pop("service", name)
        settings.setdefault("dns", LOCAL_DNS)
        container = f"{self.project}-{name}"
        service = ServiceConfig(name=service_name, image=self.record.reference, command=("sh", "-c", script),
                                networks=networks or {}, **settings)
        self.rt.create(self.project, container, service, self.record)
        mode = service.network_mode or ""
        if mode in ("none", "host"):
            self.rt.start(self.project, container)
        elif mode.startswith("service:"):
            self.rt.start(self.project, container, netns=f"/proc/{self.pid(mode.split(':', 1)[1] + '-1')}/ns/net")
        else:
            names = {key: f"{self.project}_{key}" for key in service.networks or {"default": None}}
            attachments = [Attachment(names[key], tuple(c.aliases) if c else (), c.ipv4_address if c else None)
                           for key, c in (service.networks or {"default": None}).items()]
            hook = self.manager.on_netns(self.project, container, service, attachments,
                                         run_dir=self.rt.run_dir(self.project, container))
            self.rt.start(self.project, container, on_netns=hook)
        return container

    def pid(self, name: str) -> int:
        import json

        state = json.loads((self.rt.run_dir(self.project, f"{self.project}-{name}") / "state.json").read_text())
        return int(state["pid"])

    def output(self, name: str, timeout: float = 30) -> str:
        container = f"{self.project}-{name}"
        state = self.rt.wait(self.project, container, timeout=timeout)
        assert state.status == "exited", (state, self.rt.output(self.project, container))
        return self.rt.output(self.project, container)

    def down(self) -> None:
        for name in self.rt.containers(self.project):
            self.rt.remove(self.project, name, force=True)
            self.manager.detach(self.project, name)
        self.manager.down(self.project)


@pytest.fixture
def stack(env: tuple[Runtime, NetworkManager, ImageRecord]) -> Iterator[Stack]:
    s = Stack(*env)
    try:
        yield s
    finally:
        s.down()


SERVER = "while true; do nc -l -p 80 -e echo hi-from-$(hostname); done"


def probe(targets: str) -> str:
    """A script printing ``<name> ok`` / ``<name> no`` for a TCP connect to port 80 of each."""
    return f"for t in {targets}; do if echo | nc -w 2 $t 80 >/dev/null 2>&1; then echo $t ok; else echo $t no; fi; done"


# --- name resolution and isolation ------------------------------------------------------------


def test_names_resolve_inside_the_right_network_only(stack: Stack) -> None:
    stack.network("front")
    stack.network("back")
    stack.run("web-1", SERVER, {"front": ServiceNetworkConfig(aliases=("www",))}, service="web")
    stack.run("db-1", SERVER, {"back": None}, service="db", links=())
    script = ("for n in web www db {p}-web-1 {p}-db-1; do "
              "if nslookup $n >/dev/null 2>&1; then echo $n yes; else echo $n no; fi; done; "
              + probe("web db")).format(p=stack.project)
    stack.run("client-1", script, {"front": None}, service="client")
    out = stack.output("client-1")
    assert f"web yes\nwww yes\ndb no\n{stack.project}-web-1 yes\n{stack.project}-db-1 no\n" in out, out
    assert "web ok" in out, out
    assert "db no" in out, out
    stack.run("both-1", probe("web db"), {"front": None, "back": None}, service="both")
    out = stack.output("both-1")
    assert "web ok" in out, out
    assert "db ok" in out, out


def listening(stack: Stack, name: str, port: int = 80) -> None:
    """Wait until container ``name`` listens on TCP ``port`` (its namespace's /proc/<pid>/net/tcp): a
    client started before its server's first ``nc -l`` is refused (once under load)."""
    tables = [Path(f"/proc/{stack.pid(name)}/net/{kind}") for kind in ("tcp", "tcp6")]  # busybox nc: tcp6

    def found() -> bool:  # each line: sl, local address, remote address, state (0A: LISTEN)
        return any(fields[1].endswith(f":{port:04X}") and fields[3] == "0A" for table in tables
                   for fields in (line.split() for line in table.read_text().splitlines()[1:]))

    eventually(found)


def test_replicas_round_robin_and_links(stack: Stack) -> None:
    stack.network("default")
    stack.run("api-1", SERVER, service="api")
    stack.run("api-2", SERVER, service="api")
    script = "for i in 1 2 3 4; do nc -w 2 api 80 </dev/null; done; nc -w 2 database 80 </dev/null"
    stack.run("db-1", SERVER, service="db")
    for server in ("api-1", "api-2", "db-1"):
        listening(stack, server)
    stack.run("client-1", script, service="client", links=("db:database",))
    out = stack.output("client-1")
    hosts = {line for line in out.splitlines() if line.startswith("hi-from-")}
    assert len(hosts) == 3, out  # both replicas answered, and the link alias reached db


def test_internal_network_has_no_route_out(stack: Stack) -> None:
    stack.network("inner", internal=True)
    stack.run("a-1", "sleep 30", {"inner": None}, service="a")
    with namespace(f"/proc/{stack.pid('a-1')}/ns/net") as inside:
        assert inside.default_routes() == []
        state = stack.manager.network(f"{stack.project}_inner")
        assert state is not None
        subnet = state["pools"][0]["subnet"]
        assert [str(r) for r in inside.routes()] == [subnet]


# --- ports ------------------------------------------------------------------------------------


def free_ports(count: int, kind: int = socket.SOCK_STREAM) -> int:
    """The first of ``count`` consecutive free ports (TCP and UDP)."""
    for base in range(30000 + os.getpid() % 5000, 60000, 17):
        try:
            for port in range(base, base + count):
                for k in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                    with socket.socket(socket.AF_INET, k) as s:
                        s.bind(("0.0.0.0", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free ports")


def udp_socket_in(netns: str) -> socket.socket:
    """A UDP socket created inside the network namespace at ``netns`` (a thread that setns-es)."""
    libc = ctypes.CDLL(None, use_errno=True)
    made: list[socket.socket] = []

    def run() -> None:
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(netns, os.O_RDONLY)
        assert libc.setns(target, 0x40000000) == 0
        made.append(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
        assert libc.setns(own, 0x40000000) == 0
        os.close(own)
        os.close(target)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return made[0]


def tcp_read(port: int, deadline: float = 10) -> str:
    end = time.monotonic() + deadline
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                data = conn.recv(100).decode()
                if data:
                    return data
        except OSError:
            pass
        if time.monotonic() > end:
            return ""
        time.sleep(0.1)


def test_published_tcp_udp_and_a_range_answer_on_loopback(stack: Stack) -> None:
    stack.network("default")
    base = free_ports(4)
    ports = (PortConfig(target=80, published=str(base)),
             PortConfig(target=81, published=f"{base + 1}-{base + 2}"),
             PortConfig(target=53, published=str(base + 3), protocol="udp"))
    script = ("(while true; do nc -l -p 81 -e echo port-81; done) &"
              " (while true; do nc -l -p 82 -e echo port-82; done) & " + SERVER)
    stack.run("web-1", script, ports=ports, service="web")
    # busybox nc has no UDP: a UDP echo server bound inside the container's namespace
    server = udp_socket_in(f"/proc/{stack.pid('web-1')}/ns/net")
    server.bind(("0.0.0.0", 53))
    server.settimeout(10)

    def serve() -> None:
        with server, contextlib.suppress(OSError):
            data, peer = server.recvfrom(100)
            server.sendto(b"udp-" + data, peer)

    threading.Thread(target=serve, daemon=True).start()
    assert tcp_read(base).startswith("hi-from-")
    assert tcp_read(base + 1) == "port-81\n"
    assert tcp_read(base + 2) == "port-82\n"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.settimeout(1)
        answer = b""
        for _ in range(10):
            udp.sendto(b"ping\n", ("127.0.0.1", base + 3))
            try:
                answer = udp.recv(100)
                break
            except OSError:
                continue
    assert answer == b"udp-ping\n"
    assert [str(p) for p in stack.manager.ports(f"{stack.project}-web-1")] == [
        f"80/tcp -> 0.0.0.0:{base}", f"81/tcp -> 0.0.0.0:{base + 1}", f"82/tcp -> 0.0.0.0:{base + 2}",
        f"53/udp -> 0.0.0.0:{base + 3}"]
    # service to service through the published port, and by name
    gateway = stack.gateway("default")
    stack.run("client-1", f"nc -w 2 web 80 </dev/null; nc -w 2 {gateway} {base + 1} </dev/null", service="client")
    out = stack.output("client-1")
    assert "hi-from-" in out, out
    assert "port-81" in out, out


def test_an_ephemeral_port_taken_between_reservation_and_bind_is_chosen_again(stack: Stack) -> None:
    """Found by the soak: another run root's container (run roots share no lock) bound the host port
    this start had chosen from the ephemeral range, after the reservation's probe and before the
    proxy's bind: the start failed "port is already allocated". moby's port mapper retries an
    ephemeral port (maxAllocatePortAttempts); so does connect_retrying, an explicit port never."""
    stack.network("default")
    container = f"{stack.project}-web-1"
    service = ServiceConfig(name="web", image=stack.record.reference, command=("sh", "-c", SERVER),
                            dns=LOCAL_DNS, ports=(PortConfig(target=80, host_ip="127.0.0.1"),))
    stack.rt.create(stack.project, container, service, stack.record)
    hook = stack.manager.on_netns(stack.project, container, service, [Attachment(f"{stack.project}_default")],
                                  run_dir=stack.rt.run_dir(stack.project, container))
    hook.prepare()
    assert hook.reservation is not None
    (chosen,) = hook.reservation.ports
    with socket.socket() as squatter:  # takes the chosen port before the start binds it
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a TIME_WAIT of an earlier test's
        try:
            squatter.bind(("127.0.0.1", chosen.host_port))
            squatter.listen()
        except OSError as exc:  # taken already (another test's listener): the same case for the start
            if exc.errno != errno.EADDRINUSE:
                raise
        stack.rt.start(stack.project, container, on_netns=hook)
        (published,) = stack.manager.ports(container)
        assert published.host_port != chosen.host_port, published
        deadline = time.monotonic() + 20
        answer = b""
        while b"hi-from-" not in answer and time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", published.host_port), 2) as c:
                answer = c.recv(100)
            time.sleep(0.1)
        assert b"hi-from-" in answer, answer


def test_a_port_in_use_is_one_line_and_leaves_nothing(stack: Stack) -> None:
    stack.network("default")
    before = host_snapshot()
    with socket.socket() as busy:
        busy.bind(("0.0.0.0", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            stack.run("web-1", SERVER, ports=(PortConfig(target=80, published=str(port)),), service="web")
    assert "\n" not in str(caught.value)
    assert str(port) in str(caught.value)
    assert stack.rt.state(stack.project, f"{stack.project}-web-1").status != "running"
    assert stack.manager.endpoints(f"{stack.project}-web-1") == {}
    assert host_snapshot() == before


def test_bad_address_and_missing_external_network(stack: Stack) -> None:
    stack.network("default", ipam=IPAMConfig(config=(IPAMPool(subnet="10.199.7.0/24"),)))
    with pytest.raises(BackendError) as caught:
        stack.run("a-1", "sleep 1", {"default": ServiceNetworkConfig(ipv4_address="10.199.8.5")}, service="a")
    assert "not inside subnet 10.199.7.0/24" in str(caught.value)
    assert "\n" not in str(caught.value)
    with pytest.raises(NotFoundError) as missing:
        stack.manager.create_network(stack.project, "ext", "no-such-net", NetworkConfig(external=True))
    assert str(missing.value) == "network no-such-net declared as external, but could not be found"
    stack.run("b-1", "ip -o -4 addr show eth0", {"default": ServiceNetworkConfig(ipv4_address="10.199.7.77")},
              service="b")
    assert "10.199.7.77/24" in stack.output("b-1")


def test_network_modes(stack: Stack) -> None:
    stack.network("default")
    stack.run("x-1", "sleep 30", service="x")
    stack.run("y-1", "sleep 30", network_mode="service:x", service="y")
    stack.run("h-1", "sleep 30", network_mode="host", service="h")
    stack.run("n-1", "ip -o link", network_mode="none", service="n")
    net = {name: os.readlink(f"/proc/{stack.pid(name)}/ns/net") for name in ("x-1", "y-1", "h-1")}
    assert net["x-1"] == net["y-1"] != net["h-1"]
    assert net["h-1"] == os.readlink("/proc/self/ns/net")
    out = stack.output("n-1")
    assert "lo:" in out
    assert "eth0" not in out


def test_hosts_and_resolv_conf(stack: Stack) -> None:
    stack.network("default")
    stack.run("a-1", "cat /etc/resolv.conf /etc/hosts", service="a", hostname="alpha", domainname="example.test",
              extra_hosts=("somehost=10.1.2.3",), dns_search=("corp.test",), dns_opt=("ndots:2",))
    out = stack.output("a-1")
    gateway = stack.gateway("default")
    address = stack.manager.endpoints(f"{stack.project}-a-1")[f"{stack.project}_default"]["ipv4"]
    assert f"nameserver {gateway}\n" in out
    assert "search corp.test" in out
    assert "options ndots:2" in out
    assert "10.1.2.3\tsomehost" in out
    assert f"{address}\talpha.example.test alpha" in out


# --- cleanup ----------------------------------------------------------------------------------


def test_a_removed_containers_address_waits_for_its_veth_to_go(stack: Stack) -> None:
    """An exited container's veth pair goes with its namespace (the kernel deletes it): removal
    does not wait for that, but its address is not given out again until the pair is gone."""
    stack.network("default")
    first = stack.run("a", "sleep 300")
    network = f"{stack.project}_default"
    address = stack.manager.endpoints(first)[network]["ipv4"]
    veth = stack.manager.endpoints(first)[network]["veth"]
    holder = os.open(f"/proc/{stack.pid('a')}/ns/net", os.O_RDONLY)  # keeps the namespace, so the pair
    try:
        stack.rt.remove(stack.project, first, force=True)
        stack.manager.detach(stack.project, first, exited=True)
        assert os.path.exists(f"/sys/class/net/{veth}")
        second = stack.run("b", "sleep 300")
        assert stack.manager.endpoints(second)[network]["ipv4"] != address
    finally:
        os.close(holder)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/sys/class/net/{veth}"):
        assert time.monotonic() < deadline, "the kernel never deleted the pair"
        time.sleep(0.01)
    third = stack.run("c", "sleep 300")
    assert stack.manager.endpoints(third)[network]["ipv4"] == address  # free again: the lowest


def test_twenty_up_down_cycles_leave_nothing(env: tuple[Runtime, NetworkManager, ImageRecord]) -> None:
    before = host_snapshot()
    for _ in range(20):
        s = Stack(*env)
        try:
            for key in ("a", "b", "c"):
                s.network(key)
            for i in range(10):
                keys = ("a", "b", "c")[i % 3:i % 3 + 2] or ("a",)
                s.run(f"s{i}-1", "sleep 30", dict.fromkeys(keys), service=f"s{i}",
                      ports=(PortConfig(target=80, published=str(free_ports(1))),) if i == 0 else ())
        finally:
            s.down()
    assert host_snapshot() == before
    assert not any(p for p in env[1].run_root.rglob("*") if p.is_file() and p.name != ".lock")


def test_reserved_addresses_are_given_back_when_the_start_never_reaches_the_hook(stack: Stack) -> None:
    stack.network("default")
    container = f"{stack.project}-ghost-1"
    service = ServiceConfig(name="ghost", image=stack.record.reference)
    hook = stack.manager.on_netns(stack.project, container, service, [Attachment(f"{stack.project}_default")])
    hook.prepare()  # as spawn does while PID 1 is on its way
    reserved = stack.manager.endpoints(container)
    assert reserved[f"{stack.project}_default"]["ipv4"]
    hook.abandon()  # PID 1 failed before it asked for its network
    assert stack.manager.endpoints(container) == {}
