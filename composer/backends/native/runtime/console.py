"""Interactive containers: the pseudo-terminal (``tty: true``), the held-open stdin
(``stdin_open: true``) and the attach socket through which the CLI reads and writes them.

The terminal is made as runc makes it (libcontainer's setupConsole, after pivot_root): PID 1
opens ``/dev/pts/ptmx`` of the container's own devpts instance (mounted ``newinstance,
ptmxmode=0666`` by init.mount_dev), so the pair belongs to the container's mount namespace
and nothing of the host's ``/dev/pts`` is reachable through it; it binds the peer onto
``/dev/console``, hands the master to the monitor over a socket (runc's console socket), makes
the peer its standard streams and, after setsid, its controlling terminal. The monitor (conmon's
role) keeps the master: it writes what comes out into the log, as without a terminal, and relays
it to attached clients.

Without a terminal, ``stdin_open`` gives PID 1 a pipe as stdin whose other end the monitor keeps
open. ``stdin_once`` (``run -i``: Docker's StdinOnce) closes it once an attached client's stdin
ends (``echo hi | run -T svc cat``).

The attach socket ``<run dir>/attach.sock`` (0600, the run directory is root's alone) speaks
frames of one kind byte, a 4-byte big-endian length and the payload. Client to monitor: ``i``
stdin bytes, ``e`` end of stdin, ``w`` a window size (rows, columns: two 16-bit big-endian).
Monitor to client: ``o`` stdout (the terminal's output), ``r`` stderr. Once the container has
exited and its output is drained, the monitor writes exit.json, and only then closes the
connections and removes the socket: a client let go, or one that finds no socket (a quick
one-off that ended before it connected), finds the exit code there. The output of a one-off
container made before its first client attached (the shell's prompt) is kept for that client,
up to REPLAY_LIMIT bytes.

Imported by PID 1 before pivot_root (the host's modules are out of reach after it) and by the
monitor: the standard library only, no typing at run time.
"""

from __future__ import annotations

import fcntl
import os
import select
import socket
import stat
import struct
import termios
import time

from composer.backends.native.runtime import linux as L

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

SOCKET = "attach.sock"
STDIN, STDIN_END, WINDOW, STDOUT, STDERR = b"i", b"e", b"w", b"o", b"r"
HEADER = 5
REPLAY_LIMIT = 1 << 20
CLIENT_TIMEOUT = 5.0  # seconds a client may stall the output before it is dropped
TIOCGPTPEER = 0x5441  # _IO('T', 0x41), Linux 4.13
TIOCSPTLCK = getattr(termios, "TIOCSPTLCK", 0x40045431)  # _IOW('T', 0x31, int): Python's termios lacks them
TIOCGPTN = getattr(termios, "TIOCGPTN", 0x80045430)  # _IOR('T', 0x30, unsigned int)
DRAIN_SECONDS = 1.0  # after the exit, how long leftover writers may keep the output open


def frame(kind: bytes, payload: bytes = b"") -> bytes:
    return kind + len(payload).to_bytes(4, "big") + payload


def window_payload(rows: int, columns: int) -> bytes:
    return struct.pack(">HH", max(0, min(rows, 0xFFFF)), max(0, min(columns, 0xFFFF)))


class FrameReader:
    """Frames out of a byte stream, as they complete."""

    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, data: bytes) -> list[tuple[bytes, bytes]]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= HEADER:
            size = int.from_bytes(self.buffer[1:HEADER], "big")
            if len(self.buffer) < HEADER + size:
                break
            frames.append((self.buffer[:1], self.buffer[HEADER:HEADER + size]))
            self.buffer = self.buffer[HEADER + size:]
        return frames


def connectable(run_dir: str) -> tuple[str, int]:
    """(path to bind or connect, directory fd to close afterwards or -1)."""
    path = os.path.join(run_dir, SOCKET)
    if len(path.encode()) < 100:
        return path, -1
    fd = os.open(run_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    return f"/proc/self/fd/{fd}/{SOCKET}", fd


def set_window(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


# --- PID 1 -----------------------------------------------------------------------------------------


def open_terminal(console_fd: int, size: Any, uid: int) -> None:
    """In PID 1, after pivot_root: a pair of the container's devpts instance; the master goes to
    the monitor over ``console_fd``, the peer becomes /dev/console, stdin, stdout and stderr
    (owned by the container's user, as runc's fixStdioPermissions leaves them) and, in a new
    session, the controlling terminal."""
    peer, number = new_pair(console_fd, size)
    L.mount(f"/dev/pts/{number}", "/dev/console", None, L.MS_BIND)
    take_terminal(peer, uid)


def new_pair(console_fd: int, size: Any) -> tuple[int, int]:
    """A pair from ``/dev/pts/ptmx`` of the mount namespace we are in (the container's own devpts
    instance); the master goes over ``console_fd`` (closed), the peer's fd and number are returned.

    :raises OSError: ``/dev/pts/ptmx`` is not the devpts multiplexer (a container that mounted
        something over it).
    """
    master = os.open("/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW)
    try:
        status = os.fstat(master)
        if not stat.S_ISCHR(status.st_mode) or status.st_rdev != os.makedev(5, 2):
            raise OSError("/dev/pts/ptmx of the container is not the terminal multiplexer")
        fcntl.ioctl(master, TIOCSPTLCK, struct.pack("i", 0))  # unlockpt
        number = struct.unpack("I", fcntl.ioctl(master, TIOCGPTN, b"\0" * 4))[0]
        try:
            peer = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError:  # before Linux 4.13: by its name, in the same devpts
            peer = os.open(f"/dev/pts/{number}", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NOFOLLOW)
        if size:
            set_window(peer, int(size[0]), int(size[1]))
        channel = socket.socket(fileno=console_fd)
        socket.send_fds(channel, [b"m"], [master])
        channel.close()
    finally:
        os.close(master)
    return peer, number


def take_terminal(peer: int, uid: int) -> None:
    """The peer becomes stdin, stdout and stderr (the user's), and the controlling terminal of a
    new session."""
    for target in (0, 1, 2):
        os.dup2(peer, target)
    if peer > 2:
        os.close(peer)
    os.fchown(0, uid, -1)
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def receive_master(console: socket.socket) -> int:
    """The master PID 1 (or an exec's process) sent; blocks until it is sent or the sender is gone.

    :raises RuntimeError: none came.
    """
    _, fds, _, _ = socket.recv_fds(console, 16, 1, socket.MSG_CMSG_CLOEXEC)
    console.close()
    if not fds:
        raise RuntimeError("the container's terminal was not received")
    return fds[0]


# --- the monitor -----------------------------------------------------------------------------------


class Client:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self.reader = FrameReader()
        self.stdin_ended = False


class Hub:
    """The monitor's side of an interactive container: its output into the log and to the
    attached clients, their input into its stdin (the master, or the stdin pipe)."""

    def __init__(self, cfg: dict[str, Any], log: Any) -> None:
        self.log = log
        self.tty = bool(cfg.get("tty"))
        self.stdin_open = bool(cfg.get("stdin_open"))  # a terminal alone takes no input (as Docker's OpenStdin)
        self.stdin_once = bool(cfg.get("stdin_once"))
        self.replay: list[tuple[bytes, bytes]] | None = [] if self.stdin_once else None
        self.replay_size = 0
        self.clients: dict[int, Client] = {}
        self.stdin_fd = -1
        self.pending_input = b""
        self.closing_stdin = False  # once what is pending has been written
        path, dir_fd = connectable(cfg["run_dir"])
        with_path = os.path.join(cfg["run_dir"], SOCKET)
        if os.path.lexists(with_path):
            os.unlink(with_path)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        os.fchmod(self.listener.fileno(), 0o600)
        try:
            self.listener.bind(path)
        finally:
            if dir_fd >= 0:
                os.close(dir_fd)
        os.chmod(with_path, 0o600)
        self.path = with_path
        self.listener.listen(8)
        self.listener.setblocking(False)

    # output -------------------------------------------------------------------------------------

    def output(self, kind: bytes, data: bytes) -> None:
        self.log.feed("stderr" if kind == STDERR else "stdout", data)
        if self.replay is not None:
            if self.replay_size + len(data) <= REPLAY_LIMIT:
                self.replay.append((kind, data))
                self.replay_size += len(data)
            return
        for client in list(self.clients.values()):
            self._send(client, frame(kind, data))

    def _send(self, client: Client, data: bytes) -> None:
        try:
            client.conn.sendall(data)
        except OSError:
            self.drop(client)

    # clients ------------------------------------------------------------------------------------

    def accept(self) -> Client | None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return None
        credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
        if int.from_bytes(credentials[4:8], "little") not in (0, os.getuid()):
            conn.close()
            return None
        conn.settimeout(CLIENT_TIMEOUT)
        client = Client(conn)
        self.clients[conn.fileno()] = client
        if self.replay is not None:
            for kind, data in self.replay:
                self._send(client, frame(kind, data))
            self.replay = None
        return client

    def drop(self, client: Client) -> None:
        fd = client.conn.fileno()
        if self.clients.pop(fd, None) is None:
            return
        client.conn.close()
        if self.stdin_once and not self.tty and not client.stdin_ended:
            self.close_stdin()

    def from_client(self, client: Client) -> bool:
        """Read what ``client`` sent; False when it has gone."""
        try:
            data = client.conn.recv(65536)
        except (TimeoutError, BlockingIOError):
            return True
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return False
        for kind, payload in client.reader.feed(data):
            if kind == STDIN and self.stdin_open and self.stdin_fd >= 0:
                self.pending_input += payload
            elif kind == STDIN_END:
                client.stdin_ended = True
                if self.stdin_once and not self.tty:
                    self.close_stdin()
            elif kind == WINDOW and self.tty and len(payload) == 4:
                rows, columns = struct.unpack(">HH", payload)
                try:
                    set_window(self.stdin_fd, rows, columns)
                except OSError:
                    pass
        self.flush_input()
        return True

    # input --------------------------------------------------------------------------------------

    def flush_input(self) -> None:
        if self.pending_input and self.stdin_fd >= 0:
            try:
                written = os.write(self.stdin_fd, self.pending_input)
            except BlockingIOError:
                written = 0
            except OSError:  # the container closed its stdin
                written = len(self.pending_input)
            self.pending_input = self.pending_input[written:]
        if self.closing_stdin and not self.pending_input and self.stdin_fd >= 0:
            os.close(self.stdin_fd)
            self.stdin_fd = -1

    def close_stdin(self) -> None:
        """End the container's stdin (a pipe; not a terminal) once what is pending is written."""
        if not self.tty:
            self.closing_stdin = True
            self.flush_input()

    def close(self) -> None:
        # A client whose connect is still in the listener's backlog (a quick one-off that ended
        # before its caller got there) is accepted now, so it gets the replayed output before the
        # end, not an empty stream (it connected: it will not fall back to the log).
        while self.accept() is not None:
            pass
        for client in list(self.clients.values()):
            self.clients.pop(client.conn.fileno(), None)
            try:
                client.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            client.conn.close()
        self.listener.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


def pump(hub: Hub, child: int, outputs: dict[int, bytes], stdin_fd: int, leftovers: Any = None,
         kill_leftovers: Any = None) -> int:
    """init.pump_logs for an interactive container: ``outputs`` maps the master (tty) or the
    stdout and stderr pipes to their frame kind; ``stdin_fd`` is the master or the stdin pipe's
    write end (-1: none). Until the container exits and its output is drained; its wait status.
    The log is closed; the hub (its socket, its clients) is the caller's to close, once exit.json
    is written."""
    hub.stdin_fd = stdin_fd
    if stdin_fd >= 0:
        os.set_blocking(stdin_fd, False)
    pidfd = os.pidfd_open(child)
    streams = dict(outputs)
    status: int | None = None
    deadline: float | None = None
    try:
        while streams:
            events = _poll(hub, streams, None if status is not None else pidfd, deadline)
            if not events and deadline is not None and time.monotonic() >= deadline:
                break  # exited, and nothing more came for a while (a leaked writer)
            for fd, mask in events:
                if fd == pidfd:
                    _, status = os.waitpid(child, 0)
                    if leftovers is not None:
                        kill_leftovers(leftovers)
                    deadline = time.monotonic() + DRAIN_SECONDS
                elif fd == hub.listener.fileno():
                    hub.accept()
                elif fd in hub.clients:
                    hub.from_client(hub.clients[fd])
                elif fd in streams and mask & (select.POLLIN | select.POLLHUP | select.POLLERR):
                    _read_output(hub, streams, fd)
            hub.flush_input()
    finally:
        hub.log.close()
        for fd in {*streams, hub.stdin_fd} - {-1}:
            os.close(fd)
    if status is None:
        _, status = os.waitpid(child, 0)
    os.close(pidfd)
    return status


def _poll(hub: Hub, streams: dict[int, bytes], pidfd: int | None, deadline: float | None) -> list[tuple[int, int]]:
    poller = select.poll()
    for fd in (*streams, hub.listener.fileno(), *hub.clients, *((pidfd,) if pidfd is not None else ())):
        poller.register(fd, select.POLLIN)
    timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
    if hub.pending_input and hub.stdin_fd >= 0:
        if hub.stdin_fd in streams:  # the master, polled for input already: retry the write soon
            timeout = 20 if timeout is None else min(timeout, 20)
        else:
            poller.register(hub.stdin_fd, select.POLLOUT)
    return poller.poll(timeout)


def _read_output(hub: Hub, streams: dict[int, bytes], fd: int) -> None:
    try:
        data = os.read(fd, 65536)
    except OSError:  # EIO: the terminal's last holder closed it
        data = b""
    if data:
        hub.output(streams[fd], data)
        return
    del streams[fd]
    if fd != hub.stdin_fd:
        os.close(fd)
