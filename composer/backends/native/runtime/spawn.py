"""Start a container from a fresh single-threaded helper process (the orchestrator never forks).

``spawn`` runs the helper (``init.main`` in ``python -S -I``, see BOOTSTRAP) through subprocess
(vfork + exec, cheap even from a large process), writes the configuration to one pipe and reads
the helper's one-line JSON answer from another, as runc's sync socket and conmon's sync pipe do.
The helper's first process exits at once; the monitor it forked owns the container.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import marshal
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from composer.backends.native.runtime.bootstrap import helper_code, helper_main

BOOTSTRAP = helper_main("init")


# The forkserver: the same bootstrap, then a loop that forks one helper per request. Each request is
# one message on a unix socket carrying the helper's descriptors (config, sync, stderr, and net when
# there is a network hook); the answer is the helper's pid. The server never starts a thread, so every child is a
# single-threaded process with a clean interpreter, as a freshly started helper would be.
FORKSERVER = helper_code("init") + """import os, socket
try:  # what PID 1 loads before pivot_root, loaded once here
    from composer.backends.native.runtime.seccomp import load_library
    load_library()
except Exception:
    pass
server = socket.socket(fileno=int(sys.argv[1]))
while True:
    try:
        request, fds, _, _ = socket.recv_fds(server, 64, 4)
    except OSError:
        break
    if not request:
        break
    config_fd, sync_fd, stderr_fd = fds[:3]
    net_fd = fds[3] if len(fds) > 3 else -1
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            server.close()
            os.setsid()
            os.dup2(stderr_fd, 2)
            os.close(stderr_fd)
            code = main(["helper", str(config_fd), str(sync_fd), *([str(net_fd)] if net_fd >= 0 else [])])
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)
    server.sendall(str(pid).encode().ljust(16))
    os.waitpid(pid, 0)  # the helper forks its monitor and exits at once
"""


class SpawnError(Exception):
    """The helper reported an error (or died without answering); the message is one line."""


class Forkserver:
    """A long-lived single-threaded process that forks container helpers (one per start): the
    project supervisor uses it so that a start costs a fork, not an interpreter start and the
    helper's imports (~15 ms of CPU each). Thread-safe; started on first use; falls back to a
    fresh helper when it cannot serve."""

    def __init__(self, python: str | None = None, *, lock_path: str | None = None) -> None:
        self.python = python or sys.executable
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.process: subprocess.Popen[bytes] | None = None
        # Shared by the processes forked after it started (the command server's workers): a request
        # and its answer are one exchange on one socket, so they take turns on this file's lock.
        self.lock_fd = -1 if lock_path is None else os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [self.python, "-S", "-I", "-c", FORKSERVER, str(theirs.fileno())], pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env={})
        finally:
            theirs.close()
        self.sock = ours
        return ours

    def fork(self, config_r: int, sync_w: int, net_r: int, stderr_fd: int) -> int | None:
        """The helper's pid, forked with those descriptors; None when the server cannot."""
        fds = [config_r, sync_w, stderr_fd, *([net_r] if net_r >= 0 else [])]
        with self.lock, self._turn():
            for _ in range(2):  # a server that died is started again, once
                sock = self.sock or self._start()
                try:
                    socket.send_fds(sock, [b"fork"], fds)
                    answer = sock.recv(16)
                except OSError:
                    answer = b""
                if answer.strip().isdigit():
                    return int(answer)
                self.close()
        return None

    @contextlib.contextmanager
    def _turn(self) -> Any:
        if self.lock_fd < 0:
            yield
            return
        fcntl.lockf(self.lock_fd, fcntl.LOCK_EX)  # a record lock: per process, unlike flock
        try:
            yield
        finally:
            fcntl.lockf(self.lock_fd, fcntl.LOCK_UN)

    def start(self) -> None:
        """Start the server now rather than on the first fork."""
        with self.lock:
            if self.sock is None:
                self._start()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(1.0)
            self.process = None


# A forkserver this process inherited: the CLI's command server starts one before it forks the
# workers that run commands, so that their direct starts (``run``) cost a fork too.
inherited: Forkserver | None = None


def spawn(config: dict[str, Any], *, stderr_path: str | None = None, python: str | None = None,
          on_netns: Callable[[int], None] | None = None, forkserver: Forkserver | None = None) -> int:
    """Start the container described by ``config``; return its PID 1 (in the host's pid namespace)
    once its process has been exec'd. The helper is forked by ``forkserver`` when given (and able),
    else started afresh.

    ``on_netns(pid)`` (optional) is called once PID 1 is in its network namespace
    (``/proc/<pid>/ns/net``) and before its command runs, which waits until the call returns. An
    exception from it aborts the start and is re-raised once the container is gone.

    :raises SpawnError: the helper failed; nothing of the container is left running.
    """
    config_r, config_w = os.pipe()
    sync_r, sync_w = os.pipe()
    net_r, net_w = os.pipe() if on_netns is not None else (-1, -1)
    stderr_fd = os.open(stderr_path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    helper: subprocess.Popen[bytes] | None = None
    try:
        forked = forkserver.fork(config_r, sync_w, net_r, stderr_fd) if forkserver is not None else None
        if forked is None:
            helper = _start_helper(python, config_r, sync_w, net_r, stderr_fd)
    except BaseException:
        for fd in (config_w, sync_r, *((net_w,) if net_w >= 0 else ())):
            os.close(fd)
        raise
    finally:
        for fd in (config_r, sync_w, stderr_fd, *((net_r,) if net_r >= 0 else ())):
            os.close(fd)
    net = [net_w] if net_w >= 0 else []
    try:
        return _run(helper, config, config_w, sync_r, net, on_netns)
    finally:
        for fd in net:
            os.close(fd)


def _start_helper(python: str | None, config_r: int, sync_w: int, net_r: int, stderr_fd: int
                  ) -> subprocess.Popen[bytes]:
    extra = (net_r,) if net_r >= 0 else ()
    try:
        return subprocess.Popen(
            [python or sys.executable, "-S", "-I", "-c", BOOTSTRAP, str(config_r), str(sync_w), *map(str, extra)],
            pass_fds=(config_r, sync_w, *extra), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr_fd, start_new_session=True, env={})
    except OSError as exc:
        raise SpawnError(f"cannot start the runtime helper: {exc}") from None


def _run(helper: subprocess.Popen[bytes] | None, config: dict[str, Any], config_w: int, sync_r: int,
         net: list[int], on_netns: Callable[[int], None] | None) -> int:
    try:
        with os.fdopen(config_w, "wb") as pipe:
            pipe.write(marshal.dumps(config))  # the helper reads it without importing json
    except BrokenPipeError:
        pass
    if helper is not None:
        helper.wait()  # it forks the monitor and exits at once (a forkserver reaps its own)
    hook_error: BaseException | None = None
    with os.fdopen(sync_r, "rb") as pipe:
        while True:
            answer = pipe.readline()
            if not answer:
                status = "" if helper is None else f" ({helper.returncode})"
                raise SpawnError(f"the runtime helper exited{status} without answering")
            message = json.loads(answer)
            if "netns" not in message:
                break
            try:
                assert on_netns is not None
                on_netns(int(message["netns"]))
            except BaseException as exc:  # PID 1 sees EOF and fails: its answer follows
                hook_error = exc
            else:
                with contextlib.suppress(OSError):
                    os.write(net[0], b"1")
            os.close(net.pop())
    if hook_error is not None:
        raise hook_error
    if not message.get("ok"):
        raise SpawnError(str(message.get("error") or "unknown error").strip().splitlines()[-1])
    return int(message["pid"])
