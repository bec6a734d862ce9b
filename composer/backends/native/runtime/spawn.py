"""Start a container from a fresh single-threaded helper process (the orchestrator never forks).

``spawn`` runs the helper (``init.main`` in ``python -S -I``, see bootstrap.py) through subprocess
(vfork + exec, cheap even from a large process), writes the configuration to one pipe and reads
the helper's one-line JSON answer from another, as runc's sync socket and conmon's sync pipe do.
The helper's first process exits at once; the monitor it forked owns the container.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import marshal
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from composer import faults
from composer.backends.native.runtime import bootstrap

# Seconds between a start served by the spare monitor and the making of the next one (forkserver.py).
SPARE_DELAY = 0.1


class SpawnError(Exception):
    """The helper reported an error (or died without answering); the message is one line."""


class Forkserver:
    """A long-lived single-threaded process that forks container helpers (one per start): the
    project supervisor uses it so that a start costs a fork, not an interpreter start and the
    helper's imports (~15 ms of CPU each). Thread-safe; started on first use; falls back to a
    fresh helper when it cannot serve."""

    def __init__(self, python: str | None = None, *, lock_path: str | None = None,
                 spare_parent: str | None = None) -> None:
        self.python = python or sys.executable
        # With a cgroup parent, the forkserver keeps a spare monitor for starts of containers whose
        # cgroup is a child of it and that have a pid namespace of their own (see forkserver.py).
        self.spare_parent = spare_parent.strip("/") if spare_parent else None
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
                bootstrap.command("forkserver", str(theirs.fileno()),
                                  *([self.spare_parent, str(SPARE_DELAY)] if self.spare_parent else []),
                                  python=self.python), pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True, env=faults.environment())  # empty unless faults are armed
        finally:
            theirs.close()
        self.sock = ours
        return ours

    def fork(self, config_r: int, sync_w: int, net_r: int, stderr_fd: int, *, spare: bool = False) -> int | None:
        """The helper's pid, forked with those descriptors (0: a spare monitor took them); None when
        the server cannot. ``spare``: the start may go to a spare monitor (see ``takes_spare``)."""
        fds = [config_r, sync_w, stderr_fd, *([net_r] if net_r >= 0 else [])]
        with self.lock, self._turn():
            for _ in range(2):  # a server that died is started again, once
                sock = self.sock or self._start()
                try:
                    socket.send_fds(sock, [b"spare" if spare else b"fork"], fds)
                    answer = sock.recv(16)
                except OSError:
                    answer = b""
                if answer.strip().isdigit():
                    return int(answer)
                self.close()
        return None

    def takes_spare(self, config: dict[str, Any]) -> bool:
        """Whether a spare monitor can start this container: its cgroup is a child of the spares'
        parent, it has a pid namespace of its own (the spare's PID 1 was forked into one), and it
        is not privileged (the spare's cgroup carries the default device rules). An interactive
        one can (``run``'s one-offs are, -i being the default): the spare makes its terminal's
        socket or stdin pipe once it takes the start and sends them to PID 1 with the configuration."""
        parent, _, _ = str(config.get("cgroup") or "").strip("/").rpartition("/")
        return (self.spare_parent is not None and parent == self.spare_parent and config.get("pidns") is None
                and not config.get("privileged"))

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
          on_netns: Callable[[int], None] | None = None, forkserver: Forkserver | None = None,
          timeout: float | None = None) -> int:
    """Start the container described by ``config``; return its PID 1 (in the host's pid namespace)
    once its process has been exec'd. The helper is forked by ``forkserver`` when given (and able),
    else started afresh.

    ``on_netns(pid)`` (optional) is called once PID 1 is in its network namespace
    (``/proc/<pid>/ns/net``) and before its command runs, which waits until the call returns. An
    exception from it aborts the start and is re-raised once the container is gone.

    The helper must answer within ``timeout`` seconds (default: start_timeout()), or it is
    killed, with everything it started, and the start fails: the caller holds the container's
    lock meanwhile, and an image can make a start hang (a FIFO where a file is read).

    :raises SpawnError: the helper failed or did not answer in time; nothing of the container is
        left running.
    """
    seconds = start_timeout() if timeout is None else timeout
    deadline = time.monotonic() + seconds
    config_r, config_w = os.pipe()
    sync_r, sync_w = os.pipe()
    net_r, net_w = os.pipe() if on_netns is not None else (-1, -1)
    stderr_fd = os.open(stderr_path or os.devnull, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    helper: subprocess.Popen[bytes] | None = None
    try:
        forked = (forkserver.fork(config_r, sync_w, net_r, stderr_fd, spare=forkserver.takes_spare(config))
                  if forkserver is not None else None)
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
        return _run(helper, config, config_w, sync_r, net, on_netns, deadline, seconds)
    finally:
        for fd in net:
            os.close(fd)


def _start_helper(python: str | None, config_r: int, sync_w: int, net_r: int, stderr_fd: int
                  ) -> subprocess.Popen[bytes]:
    extra = (net_r,) if net_r >= 0 else ()
    try:
        return subprocess.Popen(
            bootstrap.command("init", str(config_r), str(sync_w), *map(str, extra), python=python),
            pass_fds=(config_r, sync_w, *extra), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr_fd, start_new_session=True, env=faults.environment())  # empty unless faults are armed
    except OSError as exc:
        raise SpawnError(f"cannot start the runtime helper: {exc}") from None


def _run(helper: subprocess.Popen[bytes] | None, config: dict[str, Any], config_w: int, sync_r: int,
         net: list[int], on_netns: Callable[[int], None] | None, deadline: float, seconds: float) -> int:
    try:
        with os.fdopen(config_w, "wb") as pipe:
            pipe.write(marshal.dumps(config))  # the helper reads it without importing json
    except BrokenPipeError:
        pass
    hooked = False
    try:
        _prepare(on_netns)  # meanwhile, what needs no namespace yet (a network hook's reservations)
        if helper is not None:
            try:  # it forks the monitor and exits at once (a forkserver reaps its own)
                helper.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _kill_helpers(sync_r, {helper.pid})
                helper.wait()
                raise _late(seconds) from None
        hook_error: BaseException | None = None
        lines = _Lines(sync_r, deadline, seconds)
        while True:
            answer = lines.next()
            if not answer:
                status = "" if helper is None else f" ({helper.returncode})"
                raise SpawnError(f"the runtime helper exited{status} without answering")
            message = json.loads(answer)
            if "netns" not in message:
                break
            hooked = True
            try:
                assert on_netns is not None
                on_netns(int(message["netns"]))
            except BaseException as exc:  # PID 1 sees EOF and fails: its answer follows
                hook_error = exc
            else:
                with contextlib.suppress(OSError):
                    os.write(net[0], b"1")
            os.close(net.pop())
    finally:
        os.close(sync_r)
        if not hooked:
            _abandon(on_netns)
    # A hook that found PID 1 gone (ENOENT, ESRCH) lost a race with PID 1's own failure (a mount
    # refused): PID 1's error is the one to show.
    gone = isinstance(hook_error, OSError) and hook_error.errno in (errno.ENOENT, errno.ESRCH)
    if hook_error is not None and not (gone and not message.get("ok")):
        raise hook_error
    if not message.get("ok"):
        raise SpawnError(str(message.get("error") or "unknown error").strip().splitlines()[-1])
    return int(message["pid"])


ENV_START_TIMEOUT = "COMPOSER_START_TIMEOUT"
DEFAULT_START_TIMEOUT = 300.0  # seconds: a start takes milliseconds; filling a large volume takes longer
KILL_GRACE = 5.0  # seconds the monitor gets to clean up after its PID 1 was killed


def start_timeout(environ: dict[str, str] | None = None) -> float:
    """COMPOSER_START_TIMEOUT (seconds), or DEFAULT_START_TIMEOUT when unset or not a positive number."""
    text = (os.environ if environ is None else environ).get(ENV_START_TIMEOUT, "")
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_START_TIMEOUT
    return value if 0 < value < float("inf") else DEFAULT_START_TIMEOUT


def _late(seconds: float) -> SpawnError:
    return SpawnError(f"the container did not start within {seconds:g}s ({ENV_START_TIMEOUT}): "
                      "its processes were killed")


class _Lines:
    """Lines read from the sync pipe, each by the deadline: past it, every process holding the
    pipe's other end (the monitor, PID 1) is killed with what it started, and SpawnError raised."""

    def __init__(self, fd: int, deadline: float, seconds: float) -> None:
        self.fd = fd
        self.deadline = deadline
        self.seconds = seconds
        self.buffer = b""

    def next(self) -> bytes:
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                _kill_helpers(self.fd, set())
                raise _late(self.seconds)
            chunk = os.read(self.fd, 1 << 16)
            if not chunk:
                line, self.buffer = self.buffer, b""
                return line
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line + b"\n"


def _kill_helpers(pipe_fd: int, extra: set[int]) -> None:
    """SIGKILL the processes holding the other end of the pipe ``pipe_fd`` (and ``extra``) and
    everything they started: descendants first (PID 1: its monitor then cleans up and exits),
    the holders themselves KILL_GRACE later if still there."""
    holders = _pipe_holders(pipe_fd) | extra
    descendants = set()
    pending = list(holders)
    while pending:
        for child in _children(pending.pop()):
            if child not in descendants:
                descendants.add(child)
                pending.append(child)
    roots = holders - descendants
    for pid in descendants:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    end = time.monotonic() + KILL_GRACE
    while roots and time.monotonic() < end:
        roots = {pid for pid in roots if os.path.exists(f"/proc/{pid}")}
        select.select([], [], [], 0.05)
    for pid in roots:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _pipe_holders(pipe_fd: int) -> set[int]:
    """Other processes with a descriptor on the pipe of ``pipe_fd`` (found through /proc)."""
    wanted = f"pipe:[{os.fstat(pipe_fd).st_ino}]"
    own = os.getpid()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{entry}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{entry}/fd/{fd}") == wanted:
                        found.add(int(entry))
                        break
    return found


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(child) for child in f.read().split()]
    return found


def _prepare(on_netns: Callable[[int], None] | None) -> None:
    """A hook's ``prepare`` (optional: reservations that need no namespace), before PID 1 asks."""
    prepare = getattr(on_netns, "prepare", None)
    if prepare is not None:
        prepare()


def _abandon(on_netns: Callable[[int], None] | None) -> None:
    """A hook that was prepared but never called (the start failed first) gives its reservations back."""
    abandon = getattr(on_netns, "abandon", None)
    if abandon is not None:
        with contextlib.suppress(Exception):
            abandon()
