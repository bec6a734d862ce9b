"""The port proxy: how the host reaches a container's published ports on 127.0.0.0/8.

Docker's default (userland-proxy=true) runs docker-proxy for every published port; composer does
the same with one process per container, so the bridges never need ``route_localnet=1`` (with it,
a container could send packets to the host's 127.0.0.1 services, and the LAN to ports published
on 127.0.0.1). Connections to a port published on a host address other than loopback are DNATed
by the kernel before they reach this process (firewall.py); what it sees comes from the host to
127.0.0.0/8.

The manager binds the listening sockets (so a taken port fails the start in one line) and runs
``python -I -S proxy.py <run root> <container> <spec>`` with them and a pidfd of the container's
PID 1 inherited. The proxy exits when PID 1 does; ``detach`` (and a restart) kill it and wait.
It runs as nobody and imports only the standard library (``-I -S``: no site, no composer
package). The spec is JSON: ``{"pidfd": fd or null, "ports": [{"fd", "protocol", "address",
"port"}]}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from typing import Any, cast

MAX_TCP_CONNECTIONS = 1024  # beyond, new connections are closed at once (fds are finite)
MAX_UDP_CLIENTS = 1024  # beyond, datagrams from new clients are dropped
UDP_IDLE_SECONDS = 90.0  # docker-proxy's UDP connection timeout
CHUNK = 65536
NOBODY = 65534


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        writer.close()


class TCPForwarder:
    def __init__(self, address: str, port: int) -> None:
        self.target = (address, port)
        self.active = 0

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.active >= MAX_TCP_CONNECTIONS:
            client_w.close()
            return
        self.active += 1
        try:
            try:
                upstream_r, upstream_w = await asyncio.open_connection(*self.target)
            except OSError:
                client_w.close()
                return
            await asyncio.gather(_pump(client_r, upstream_w), _pump(upstream_r, client_w))
            for writer in (client_w, upstream_w):
                writer.close()
        finally:
            self.active -= 1


class UDPUpstream(asyncio.DatagramProtocol):
    """One client's socket to the container: answers go back through the listening socket."""

    def __init__(self, listener: UDPListener, client: Any) -> None:
        self.listener = listener
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass of it on 3.11
        self.touch()

    def touch(self) -> None:
        if self.idle is not None:
            self.idle.cancel()
        self.idle = asyncio.get_running_loop().call_later(UDP_IDLE_SECONDS, self.close)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.touch()
        if self.listener.transport is not None:
            self.listener.transport.sendto(data, self.client)

    def error_received(self, exc: Exception) -> None:
        return None  # ICMP errors from the container: nothing to tell a UDP client

    def close(self) -> None:
        self.listener.clients.pop(self.client, None)
        if self.transport is not None:
            self.transport.close()


class UDPListener(asyncio.DatagramProtocol):
    def __init__(self, address: str, port: int) -> None:
        self.target = (address, port)
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[Any, UDPUpstream | asyncio.Future[None]] = {}
        self.pending: dict[Any, list[bytes]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)  # not a subclass of it on 3.11

    def datagram_received(self, data: bytes, addr: Any) -> None:
        upstream = self.clients.get(addr)
        if isinstance(upstream, UDPUpstream):
            if upstream.transport is not None:
                upstream.touch()
                upstream.transport.sendto(data)
            return
        if upstream is not None:  # its socket is being made
            self.pending.setdefault(addr, []).append(data)
            return
        if len(self.clients) >= MAX_UDP_CLIENTS:
            return
        self.pending[addr] = [data]
        self.clients[addr] = asyncio.ensure_future(self._open(addr))

    async def _open(self, addr: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, protocol = await loop.create_datagram_endpoint(lambda: UDPUpstream(self, addr),
                                                              remote_addr=self.target)
        except OSError:
            self.clients.pop(addr, None)
            self.pending.pop(addr, None)
            return
        self.clients[addr] = protocol
        for data in self.pending.pop(addr, []):
            if protocol.transport is not None:
                protocol.transport.sendto(data)


async def serve(spec: dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def finish() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_signal_handler(signal.SIGTERM, finish)
    loop.add_signal_handler(signal.SIGINT, finish)
    if spec.get("pidfd") is not None:  # readable once the container's PID 1 has exited
        loop.add_reader(int(spec["pidfd"]), finish)
    servers = []
    for port in spec["ports"]:
        sock = socket.socket(fileno=int(port["fd"]))
        sock.setblocking(False)
        if port["protocol"] == "tcp":
            forwarder = TCPForwarder(str(port["address"]), int(port["port"]))
            servers.append(await asyncio.start_server(forwarder.handle, sock=sock))
        else:
            listener = UDPListener(str(port["address"]), int(port["port"]))
            await loop.create_datagram_endpoint(lambda listener=listener: listener, sock=sock)  # type: ignore[misc]
    await done
    for server in servers:
        server.close()


def drop_privileges() -> None:
    """Run as nobody, without capabilities: the sockets are already bound, connecting to the
    container needs nothing, and what comes through is the container's to shape."""
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)


def main(argv: list[str]) -> int:
    # argv: <run root> <container> <spec>; the first two only name the process (ps, residue checks)
    spec = json.loads(argv[3])
    drop_privileges()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(spec))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
