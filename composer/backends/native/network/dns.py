"""A project's DNS responder (aardvark-dns's model: one responder on the gateways), pure ``socket``.

It listens on UDP and TCP port 53 of every gateway address of the project's networks, each
socket bound to its network's bridge (SO_BINDTODEVICE): only what arrives on that bridge, from
that network's containers, reaches it: the LAN and containers of other networks routing to the
gateway address get a port unreachable. The host's own queries to the gateway count as arriving
on the bridge; they are REFUSED, as is any query whose source is not one of the network's
containers. (Docker's resolver listens on 127.0.0.11 inside each container's namespace:
reachable from that container only.)

It answers, per network (the address the query arrived on), A/AAAA queries for the names of
that network's endpoints (container names, service names, aliases, the querying container's links;
round-robin over a service's replicas) and PTR queries for their addresses. Every other name is
forwarded to the querying container's ``dns`` servers or else the host's resolvers
(/etc/resolv.conf); internal networks forward nothing (SERVFAIL).

Records come from the network state files (``state.NetworkStore``), re-read whenever the set of
files changes (atomic writes give each version a new inode), checked before every answer.

The network's own names are answered at once by the loop; queries forwarded upstream (which may
wait seconds for an answer) by a fixed pool of threads (``UDP_WORKERS``) from a bounded queue: when
it is full, a query is dropped, as a resolver under load does, and its client retries. At most
``TCP_CONNECTIONS`` TCP connections are served at once; more are closed at once.

Listeners are synced on SIGHUP, which the manager sends after adding or removing a network; the
daemon then rewrites ``listening.json``.

Until the project supervisor hosts it, it runs as a detached daemon per project
(``python -m composer.backends.native.network.dns <run root> <project>``): the first process
forks, the daemon binds, prints ``ready`` and its stdout closes; its files live in
``<run root>/<project>/dns/`` (``pid.json``, ``listening.json``, ``daemon.log``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import queue
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from composer import durable

TTL = 60
MAX_NAME = 255
UDP_WORKERS = 8
UDP_BACKLOG = 256  # queries waiting for a worker; beyond, dropped
TCP_CONNECTIONS = 16
TCP_IDLE_SECONDS = 10.0
TCP_CONNECTION_SECONDS = 30.0
A, PTR, AAAA, ANY = 1, 12, 28, 255
NOERROR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 2, 3, 4, 5
IP_FREEBIND = 15


# --- wire format -------------------------------------------------------------------------------


class Query:
    """The parts of a DNS query we need; ``raw`` is the whole message."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) < 12:
            raise ValueError("short message")
        self.raw = raw
        self.id, self.flags, qdcount = struct.unpack("!HHH", raw[:6])
        if qdcount != 1:
            raise ValueError("one question expected")
        labels, offset = [], 12
        while True:
            length = raw[offset]
            if length == 0:
                offset += 1
                break
            if length & 0xC0:
                raise ValueError("compressed question")
            if offset + 1 + length > 12 + MAX_NAME:  # RFC 1035: 255 octets at most
                raise ValueError("name too long")
            labels.append(raw[offset + 1:offset + 1 + length].decode("ascii", "replace"))
            offset += 1 + length
        self.labels = labels
        self.name = ".".join(labels).lower()
        self.qtype, self.qclass = struct.unpack("!HH", raw[offset:offset + 4])
        self.question = raw[12:offset + 4]

    @property
    def opcode(self) -> int:
        return int(self.flags >> 11) & 0xF


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.strip(".").split("."):
        if label:
            data = label.encode()[:63]
            out += bytes([len(data)]) + data
    return out + b"\0"


def response(query: Query, rcode: int, answers: Sequence[tuple[int, bytes]] = (), *, authoritative: bool = True
             ) -> bytes:
    """A response to ``query`` with ``answers`` ((type, rdata) for the question's name)."""
    flags = 0x8000 | (query.flags & 0x7900) | 0x0080 | (0x0400 if authoritative else 0) | rcode
    header = struct.pack("!HHHHHH", query.id, flags, 1, len(answers), 0, 0)
    body = b"".join(struct.pack("!HHHIH", 0xC00C, rtype, 1, TTL, len(rdata)) + rdata for rtype, rdata in answers)
    return header + query.question + body


def reverse_name(address: str) -> str:
    return ipaddress.ip_address(address).reverse_pointer


# --- records -----------------------------------------------------------------------------------


class Zone:
    """One network's names: ``names`` maps a lowercase name to addresses; ``reverse`` an
    address to a name; ``links`` a container's address to its {alias: target}."""

    def __init__(self, network: dict[str, Any]) -> None:
        self.internal = bool(network.get("internal"))
        self.names: dict[str, list[str]] = {}
        self.reverse: dict[str, str] = {}
        self.links: dict[str, dict[str, str]] = {}
        self.upstream: dict[str, list[str]] = {}
        self.containers: dict[str, str] = {}  # address -> container name
        for name, endpoint in sorted((network.get("endpoints") or {}).items()):
            addresses = [a for a in (endpoint.get("ipv4"), endpoint.get("ipv6")) if a]
            for alias in [name, *(endpoint.get("names") or ())]:
                bucket = self.names.setdefault(alias.lower(), [])
                bucket += [a for a in addresses if a not in bucket]
            for address in addresses:
                self.containers[address] = name
                self.reverse[reverse_name(address)] = name
                self.links[address] = {k.lower(): v.lower() for k, v in (endpoint.get("links") or {}).items()}
                if endpoint.get("dns"):
                    self.upstream[address] = list(endpoint["dns"])

    def lookup(self, name: str, client: str) -> list[str] | None:
        target = self.links.get(client, {}).get(name, name)
        return self.names.get(target)


def host_resolvers(path: str = "/etc/resolv.conf") -> list[str]:
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    return [f[1] for f in (line.split() for line in text.splitlines()) if len(f) > 1 and f[0] == "nameserver"]


def forward(raw: bytes, servers: Iterable[str], *, tcp: bool = False, timeout: float = 2.0) -> bytes | None:
    """Send ``raw`` to the first server that answers; its answer (or None)."""
    for server in servers:
        try:
            family = socket.AF_INET6 if ":" in server else socket.AF_INET
            if tcp:
                with socket.create_connection((server, 53), timeout=timeout) as conn:
                    conn.sendall(struct.pack("!H", len(raw)) + raw)
                    return read_tcp_message(conn)
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.settimeout(timeout)
                sock.sendto(raw, (server, 53))
                return sock.recv(65535)
        except OSError:
            continue
    return None


def read_tcp_message(conn: socket.socket, deadline: float | None = None) -> bytes | None:
    """One length-prefixed message, None at the end of the stream.

    :raises TimeoutError: ``deadline`` (time.monotonic) passed, or the socket's timeout.
    """

    def receive(size: int) -> bytes:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the connection's time is up")
            conn.settimeout(min(left, TCP_IDLE_SECONDS))
        return conn.recv(size)

    head = b""
    while len(head) < 2:
        chunk = receive(2 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack("!H", head)
    data = b""
    while len(data) < length:
        chunk = receive(length - len(data))
        if not chunk:
            return None
        data += chunk
    return data


# --- the responder -----------------------------------------------------------------------------


class Responder:
    """Answers for the networks of ``project`` found in ``networks_dir``."""

    def __init__(self, networks_dir: Path, project: str) -> None:
        self.networks_dir = networks_dir
        self.project = project
        self.signature: tuple[tuple[str, int, int, int], ...] = ()
        self.zones: dict[str, Zone] = {}  # gateway address -> zone
        self.bridges: dict[str, str] = {}  # gateway address -> its network's bridge
        self.counters: dict[tuple[str, int], int] = {}  # round-robin turns
        self.lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        with self.lock:
            try:
                entries = sorted((e.name, e.inode(), e.stat().st_mtime_ns, e.stat().st_size)
                                 for e in os.scandir(self.networks_dir) if e.name.endswith(".json"))
            except FileNotFoundError:
                entries = []
            signature = tuple(entries)
            if signature == self.signature and not force:
                return
            zones: dict[str, Zone] = {}
            bridges: dict[str, str] = {}
            for name, *_ in entries:
                try:
                    network = json.loads((self.networks_dir / name).read_text())
                except (OSError, ValueError):
                    continue
                projects = {network.get("project"), *(network.get("users") or ())}
                if self.project not in projects:
                    continue
                zone = Zone(network)
                for pool in network.get("pools") or ():
                    zones[str(pool["gateway"])] = zone
                    bridges[str(pool["gateway"])] = str(network.get("bridge") or "")
            self.zones, self.bridges, self.signature = zones, bridges, signature

    def lookup(self, zone: Zone, name: str, client: str) -> list[str] | None:
        """``name`` on the network the query came from, else on the client's other networks
        (as Docker's resolver: a container sees the names of every network it is on)."""
        found = zone.lookup(name, client)
        container = zone.containers.get(client)
        if found is not None or container is None:
            return found
        for other in {id(z): z for z in self.zones.values()}.values():
            if other is zone:
                continue
            address = next((a for a, c in other.containers.items() if c == container), None)
            if address is not None:
                found = other.lookup(name, address)
                if found is not None:
                    return found
        return None

    def answer(self, raw: bytes, local: str, client: str, *, tcp: bool = False) -> bytes | None:
        """The answer to ``raw`` (None: dropped), forwarded upstream when it is not ours."""
        result = self.resolve(raw, local, client)
        return self.forwarded(result, tcp=tcp) if isinstance(result, Forward) else result

    def forwarded(self, request: Forward, *, tcp: bool = False) -> bytes:
        """The upstream servers' answer to ``request``, or SERVFAIL (may block for seconds)."""
        data = forward(request.raw, request.servers, tcp=tcp)
        return data if data is not None else response(request.query, SERVFAIL, authoritative=False)

    def resolve(self, raw: bytes, local: str, client: str) -> bytes | Forward | None:
        """The answer to ``raw`` from the network's names (quick, never blocks on the network),
        None to drop it, or the request to forward upstream."""
        try:
            query = Query(raw)
        except (ValueError, IndexError, struct.error):
            return None
        if query.flags & 0x8000:  # a response: answering it could loop between two servers
            return None
        if query.opcode != 0:
            return response(query, NOTIMP)
        self.refresh()
        zone = self.zones.get(local)
        if zone is None:
            return response(query, SERVFAIL)
        if client not in zone.containers:
            # Not one of the network's containers: the host itself (its own traffic to the
            # gateway counts as arriving on the bridge, so SO_BINDTODEVICE lets it through), or
            # one that just joined (re-read first)
            self.refresh(force=True)
            zone = self.zones.get(local, zone)
            if client not in zone.containers:
                return response(query, REFUSED)
        if query.qtype == PTR and query.name in zone.reverse:
            return response(query, NOERROR, [(PTR, encode_name(zone.reverse[query.name]))])
        addresses = self.lookup(zone, query.name, client)
        if addresses is None:  # a name registered a moment ago? re-read before forwarding
            self.refresh(force=True)
            zone = self.zones.get(local, zone)
            addresses = self.lookup(zone, query.name, client)
        if addresses is not None:
            version = {A: 4, AAAA: 6}.get(query.qtype)
            chosen = [a for a in addresses if version is None or ipaddress.ip_address(a).version == version]
            if query.qtype not in (A, AAAA, ANY):
                chosen = []
            if chosen:
                turn = self.counters[(query.name, query.qtype)] = self.counters.get((query.name, query.qtype), -1) + 1
                shift = turn % len(chosen)
                chosen = chosen[shift:] + chosen[:shift]
            return response(query, NOERROR, [(A if ":" not in a else AAAA, ipaddress.ip_address(a).packed)
                                              for a in chosen])
        if zone.internal:
            return response(query, SERVFAIL)
        return Forward(query, raw, zone.upstream.get(client) or host_resolvers())


class Forward:
    """A query for a name that is not the network's, to send to ``servers``."""

    __slots__ = ("query", "raw", "servers")

    def __init__(self, query: Query, raw: bytes, servers: list[str]) -> None:
        self.query = query
        self.raw = raw
        self.servers = servers


def _bind(address: str, kind: int, bridge: str) -> socket.socket:
    """A socket on port 53 of ``address`` that hears only what arrives on ``bridge``."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, kind)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, bridge.encode())
    except OSError:
        sock.close()
        raise
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.IPPROTO_IPV6 if family == socket.AF_INET6 else socket.IPPROTO_IP, IP_FREEBIND, 1)
    sock.bind((address, 53))
    if kind == socket.SOCK_STREAM:
        sock.listen(64)
    sock.setblocking(False)
    return sock


SocketKey = tuple[str, int, str, int]  # address, kind, bridge, the bridge's ifindex


class Server:
    """The daemon's loop: UDP queries for the network's names answered here, those forwarded
    upstream queued for a fixed pool of workers; TCP connections in threads (a bounded number)."""

    def __init__(self, responder: Responder, state_dir: Path) -> None:
        self.responder = responder
        self.state_dir = state_dir
        # keyed by the bridge's ifindex too: a network made again with the same gateway has a
        # new bridge, and a socket bound to the old one would hear nothing
        self.sockets: dict[SocketKey, socket.socket] = {}
        self.queries: queue.Queue[tuple[socket.socket, Forward, Any]] = queue.Queue(UDP_BACKLOG)
        self.tcp_slots = threading.BoundedSemaphore(TCP_CONNECTIONS)
        self.dropped = 0
        self.hup = threading.Event()
        self.stop = False
        # SIGHUP (names changed) and SIGTERM (down) wake the select at once, not at its timeout
        self.wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)

    def sync(self) -> None:
        self.responder.refresh()
        kinds = (socket.SOCK_DGRAM, socket.SOCK_STREAM)
        errors = []
        wanted: set[SocketKey] = set()
        for address, bridge in self.responder.bridges.items():
            try:
                index = socket.if_nametoindex(bridge)
            except OSError:
                errors.append(f"{address}:53: no bridge {bridge!r}")
                continue
            wanted |= {(address, kind, bridge, index) for kind in kinds}
        for key in set(self.sockets) - wanted:
            self.sockets.pop(key).close()
        for key in wanted - set(self.sockets):
            try:
                self.sockets[key] = _bind(key[0], key[1], key[2])
            except OSError as exc:
                errors.append(f"{key[0]}:53: {exc.strerror}")
        write_json(self.state_dir / "listening.json",
                   {"addresses": sorted({key[0] for key in self.sockets}), "errors": errors, "time": time.time()})

    def serve(self) -> None:
        self.sync()
        for _ in range(UDP_WORKERS):
            threading.Thread(target=self._work, daemon=True).start()
        while not self.stop:
            if self.hup.is_set():
                self.hup.clear()
                self.sync()
            by_fd = {s.fileno(): (key, s) for key, s in self.sockets.items()}
            try:
                ready, _, _ = select.select([*by_fd, self.wake_r], [], [], 0.5)
            except InterruptedError:
                continue
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 64)
                continue
            for fd in ready:
                (address, kind, _, _), sock = by_fd[fd]
                if kind == socket.SOCK_DGRAM:
                    self._udp(sock, address)
                else:
                    self._accept(sock, address)

    def _udp(self, sock: socket.socket, local: str) -> None:
        """Answer what the socket holds (a burst at most) from the network's names here; what
        must be forwarded is queued for the workers, or dropped when the queue is full."""
        for _ in range(UDP_BACKLOG):
            try:
                raw, peer = sock.recvfrom(65535)
            except OSError:  # BlockingIOError: drained
                return
            try:
                result = self.responder.resolve(raw, local, peer[0])
                if isinstance(result, Forward):
                    self.queries.put_nowait((sock, result, peer))
                elif result is not None:
                    sock.sendto(result, peer)
            except queue.Full:
                self.dropped += 1
            except Exception as exc:  # one bad query must not stop the server
                sys.stderr.write(f"dns: query from {peer[0]}: {exc!r}\n")

    def _work(self) -> None:
        while True:
            sock, request, peer = self.queries.get()
            try:
                sock.sendto(self.responder.forwarded(request), peer)
            except Exception as exc:  # one bad query must not take a worker away
                sys.stderr.write(f"dns: query from {peer[0]}: {exc!r}\n")

    def _accept(self, sock: socket.socket, local: str) -> None:
        try:
            conn, peer = sock.accept()
        except OSError:
            return
        if not self.tcp_slots.acquire(blocking=False):
            conn.close()  # every slot taken: the client retries, or uses UDP
            return
        threading.Thread(target=self._tcp, args=(conn, local, peer[0]), daemon=True).start()

    def _tcp(self, conn: socket.socket, local: str, client: str) -> None:
        try:
            with conn:
                conn.settimeout(TCP_IDLE_SECONDS)
                # a whole connection's time is bounded too: a client trickling a byte at a time
                # would otherwise keep its slot (one of TCP_CONNECTIONS) for ever
                deadline = time.monotonic() + TCP_CONNECTION_SECONDS
                with contextlib.suppress(OSError):
                    while (raw := read_tcp_message(conn, deadline)) is not None:
                        data = self.responder.answer(raw, local, client, tcp=True)
                        if data is None:
                            return
                        conn.sendall(struct.pack("!H", len(data)) + data)
        finally:
            self.tcp_slots.release()


def write_json(path: Path, data: dict[str, Any]) -> None:
    # the run root's: not fsynced (composer.durable's sync=False, a new boot discards it)
    durable.write_file(path, json.dumps(data).encode(), mode=0o644, sync=False)


def process_start_time(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def daemon(run_root: Path, project: str) -> int:
    """The detached daemon (called after the fork); prints ``ready`` once bound."""
    state_dir = run_root / project / "dns"
    state_dir.mkdir(parents=True, exist_ok=True)
    server = Server(Responder(run_root / "networks", project), state_dir)
    signal.signal(signal.SIGHUP, lambda *_: server.hup.set())
    signal.signal(signal.SIGTERM, lambda *_: setattr(server, "stop", True))
    server.sync()
    pid = os.getpid()
    write_json(state_dir / "pid.json", {"pid": pid, "start": process_start_time(pid)})
    log = os.open(state_dir / "daemon.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    os.dup2(log, 2)
    os.close(null)
    os.close(log)
    server.serve()
    for sock in server.sockets.values():
        sock.close()
    with contextlib.suppress(OSError):
        (state_dir / "pid.json").unlink()
    return 0


def main(argv: list[str]) -> int:
    run_root, project = Path(argv[1]), argv[2]
    if os.fork() != 0:
        return 0
    os.setsid()
    try:
        return daemon(run_root, project)
    except BaseException as exc:
        sys.stdout.write(f"error {exc}\n")
        sys.stdout.flush()
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
