"""The forkserver (``spawn.Forkserver`` starts it: ``bootstrap.py forkserver <socket fd> [<spare
parent> <spare delay>]``): the helper's imports once, then a loop that forks one helper per
request.

Each request is one message on a unix socket carrying the helper's descriptors (config, sync,
stderr, and net when there is a network hook); the answer is the helper's pid. The server never
starts a thread, so every child is a single-threaded process with a clean interpreter, as a
freshly started helper would be.

With a spare parent it also keeps a spare monitor ready (init.spare_monitor: cgroup made, PID 1
forked and moved into it) and hands it the starts that ask for one ("spare"), when it is ready; a
new one is made after each, the spare delay later. The first is made after the first start that
asks for one, not when the server starts: a command server that only ever runs ``config`` or
``ps`` (it starts a forkserver as it warms up) creates no cgroup, not even the parent.
Descriptors arrive close-on-exec and a spare is forked only while the server holds no start's
descriptors (they would end up in its container: CVE-2024-21626's class).

Runs without site, like every helper (see bootstrap.py): imports only the runtime's own modules.
"""

from __future__ import annotations

import os
import socket

from composer import faults
from composer.backends.native.runtime.devices import program
from composer.backends.native.runtime.init import main as helper_main
from composer.backends.native.runtime.init import spare_main
from composer.backends.native.runtime.seccomp import install  # noqa: F401  (what PID 1 imports before pivot_root)

DEFAULT_SPARE_DELAY = 0.1  # seconds


class Spare:
    """The channel to the spare monitor's P0 side; ``ready`` None: it went away."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.ready: bool | None = False

    def gone(self) -> None:
        self.channel.close()
        self.ready = None

    def is_ready(self) -> bool:
        """Whether the spare said it is ready; a spare that went away is marked gone."""
        if self.ready:
            return True
        try:
            said = self.channel.recv(16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return False
        except OSError:
            said = b""
        if said != b"ready":
            self.gone()
            return False
        self.ready = True
        return True


class Server:
    def __init__(self, server: socket.socket, spare_parent: str, spare_delay: float) -> None:
        self.server = server
        self.spare_parent = spare_parent
        self.spare_delay = spare_delay
        self.spare: Spare | None = None

    def new_spare(self, delay: float) -> Spare:
        """Called only while no start's descriptors are held; the spare keeps nothing else either."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.server.close()
                ours.close()
                channel = theirs.detach()
                os.closerange(3, channel)
                os.closerange(channel + 1, 1 << 20)
                code = spare_main(channel, self.spare_parent, delay)
            finally:
                os._exit(code)
        theirs.close()
        os.waitpid(pid, 0)  # it forks the spare monitor and exits at once
        return Spare(ours)

    def serve(self) -> None:
        while True:
            try:
                request, fds, _, _ = socket.recv_fds(self.server, 64, 4, socket.MSG_CMSG_CLOEXEC)
            except OSError:
                break
            if not request:
                break
            if request == b"spare" and self.to_spare(fds):
                continue
            self.fork_helper(fds, wants_spare=request == b"spare")

    def to_spare(self, fds: list[int]) -> bool:
        """Hand the start to the spare when it is ready (then make the next one): whether it took it."""
        spare = self.spare
        if spare is None or not spare.is_ready():
            return False
        try:
            socket.send_fds(spare.channel, [b"start"], fds)
        except OSError:  # it went away after saying ready (killed): replaced once this start is served
            spare.gone()
            return False
        for fd in fds:
            os.close(fd)
        self.server.sendall(b"0".ljust(16))
        spare.channel.close()
        self.spare = self.new_spare(self.spare_delay)
        return True

    def fork_helper(self, fds: list[int], *, wants_spare: bool = False) -> None:
        """Fork a helper for the start; then (its descriptors closed) make a spare when none is
        ready for the next one: the first after a start that asked for one, or one that went away."""
        config_fd, sync_fd, stderr_fd = fds[:3]
        net_fd = fds[3] if len(fds) > 3 else -1
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                self.server.close()
                if self.spare is not None:
                    self.spare.channel.close()  # its monitor would outlive the forkserver with it: the spare never ends
                os.setsid()
                faults.point("forkserver.child.forked")
                os.dup2(stderr_fd, 2)
                os.close(stderr_fd)
                code = helper_main(["helper", str(config_fd), str(sync_fd), *([str(net_fd)] if net_fd >= 0 else [])])
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        self.server.sendall(str(pid).encode().ljust(16))
        os.waitpid(pid, 0)  # the helper forks its monitor and exits at once
        spare = self.spare
        if spare is None:
            if wants_spare and self.spare_parent:
                self.spare = self.new_spare(self.spare_delay)  # the first: a start under its parent asked
        elif not spare.is_ready() and spare.ready is None:
            self.spare = self.new_spare(self.spare_delay)  # gone: replaced now that this start's fds are closed


def main(argv: list[str]) -> int:
    """``argv``: [name, socket fd, spare parent (optional), spare delay (optional)]."""
    program()  # the default device program's instructions, built once for every monitor forked here
    server = socket.socket(fileno=int(argv[1]))
    Server(server, argv[2] if len(argv) > 2 else "",
           float(argv[3]) if len(argv) > 3 else DEFAULT_SPARE_DELAY).serve()
    return 0
