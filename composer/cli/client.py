"""The thin front of the ``composer`` command: hand the command to the warm command server.

A Python command line pays for its imports on every run (pydantic's models, docker-py, anyio,
pyroute2: ~0.3 s here), which is more than a whole ``up -d`` of one service on either backend.
So, like Mercurial's chg, the command runs in a process forked from a per-user server that has
imported everything already (composer/cli/server.py). This module is all the client runs: it
imports nothing beyond what Python's start-up has loaded (``_socket``, ``_signal``):
not even ``signal``, which imports ``enum`` (~3 ms).

The client sends its argv, environment, working directory, umask and resource limits, and passes
its stdin, stdout and stderr (SCM_RIGHTS), so the command reads and writes the caller's own
files, pipes and terminal. The worker answers with its pid once it has taken the command, then
with the exit code. Signals the client receives (Ctrl-C, SIGTERM, SIGHUP, a resize) are passed
on; the worker runs its usual handlers for them.

Whenever the server cannot take the command (none running, a stale one, COMPOSER_SERVER=0) the
client says so (``None``) and the command runs in this process; a server is started in the
background for the next command. Nothing runs twice: once the worker has answered with its pid,
the command is the worker's.

The socket is trusted only as Mercurial's chg trusts its own: its folder must be a folder (not a
symlink) of this user with no group or other permission bits, and the process listening on it
must be this user's (or root's: SO_PEERCRED), checked before anything is sent. Otherwise another
local user (who created the folder first, or whose folder a foreign XDG_RUNTIME_DIR names) would
receive the command's argv, environment and terminal: the client says so in one line and the
command runs in this process, with no server started.
"""

from __future__ import annotations

import _socket
import os
import stat
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal
    from typing import Any
else:
    import _signal as signal  # the C module: the same calls, without signal.py's enums

# Frames, server to client: b"P" + pid (the worker took the command), b"X" + exit code, b"R"
# (refused: stale code or shutting down). Client to worker: b"G" (go: the answer came in time, the
# command is the worker's), then b"S" + signal number.
FRAME = 5
REQUEST_VERSION = b"composer-request-1"
# Set by client.c when it hands the command to Python: why the server did not take it (none: no
# server, stale: it refused, busy: no answer in time, unsafe: the folder or the listener is not
# this user's, which client.c has said on stderr already).
FALLBACK = "COMPOSER_CLIENT_FALLBACK"
UNTRUSTED = b"U"  # _exchange's answer for a listener of another user (its uid as the value)
FORWARDED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGWINCH", "SIGUSR1", "SIGUSR2")
RLIMITS = ("RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_CORE", "RLIMIT_MEMLOCK", "RLIMIT_STACK")
# How long the server may take to answer before the command runs here instead (a server that is
# busy starting, swapping or stuck must not hang the command).
ACCEPT_TIMEOUT = 3.0
EXIT_INTERNAL = 2


def enabled() -> bool:
    return os.environ.get("COMPOSER_SERVER", "1").strip().lower() not in ("0", "false", "no", "off")


def socket_folder() -> str:
    """A folder only this user can enter: COMPOSER_SERVER_DIR, $XDG_RUNTIME_DIR/composer, else
    /run/composer-cli (root) or composer-cli-<uid> in the temporary folder."""
    chosen = os.environ.get("COMPOSER_SERVER_DIR")
    if chosen:
        return chosen
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "composer")
    uid = os.getuid()
    if uid == 0:
        return "/run/composer-cli"
    return os.path.join(os.environ.get("TMPDIR") or "/tmp", f"composer-cli-{uid}")


def folder_problem(folder: str) -> str | None:
    """Why ``folder`` must not hold the command server's socket, or None when it may: it must be
    a folder (lstat: not a symlink) owned by this user, with no group or other permission bits
    (as chg's). client.c's folder_problem() applies the same rule.

    :raises FileNotFoundError: there is no such folder (yet).
    """
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        raise
    except OSError as exc:  # a folder of another user's, say: it cannot even be looked at
        return f"cannot be checked ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a folder"
    if info.st_uid != os.getuid():
        return f"belongs to uid {info.st_uid}"
    if info.st_mode & 0o077:
        return f"is open to other users (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def warn_untrusted(where: str, problem: str) -> None:
    os.write(2, os.fsencode(f"composer: not using the command server: {where} {problem}; "
                            "running the command in this process\n"))


def trusted_peer(uid: int) -> bool:
    """Whether a listener of ``uid`` may receive this user's commands: this user, or root."""
    return uid in (os.getuid(), 0)


def identity() -> list[bytes]:
    """What tells installations apart: the interpreter (resolved), its environment (venv) and
    composer's own folder. composer/cli/client.c has these compiled in (composer.cli.build_client)."""
    package = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))
    return [os.fsencode(path) for path in (os.path.realpath(sys.executable), sys.prefix, package)]


def server_key(installation: list[bytes] | None = None) -> str:
    """Which server serves this command: the same installation, PYTHON* variables and user. (A
    hash would cost an import; a checksum of the text is enough to tell them apart.) client.c
    computes the same from the same text."""
    python_env = sorted(os.fsencode(f"{k}={v}") for k, v in os.environ.items()
                        if k.startswith("PYTHON") and k != "PYTHONDONTWRITEBYTECODE")
    text = b"\0".join([*(installation or identity()), *python_env, str(os.getuid()).encode()])
    checksum = 0
    for byte in text:
        checksum = (checksum * 131 + byte) % 0xFFFFFFFFFFFF
    return f"{checksum:012x}"


def socket_path() -> str:
    return os.path.join(socket_folder(), f"server-{server_key()}.sock")


def _request(argv: list[str]) -> bytes:
    """The command, as NUL-separated fields (client.c sends the same): a version, the working
    folder, the umask, the count of resource limits and each as "number soft hard", the count of
    arguments and each, then every environment entry "NAME=value"."""
    import resource

    limits = []
    for name in RLIMITS:
        number = getattr(resource, name, None)
        if number is not None:
            soft, hard = resource.getrlimit(number)
            limits.append(f"{number} {soft} {hard}".encode())
    umask = os.umask(0o22)
    os.umask(umask)
    fields = [REQUEST_VERSION, os.fsencode(os.getcwd()), str(umask).encode(), str(len(limits)).encode(), *limits,
              str(len(argv)).encode(), *map(os.fsencode, argv),
              *(os.fsencode(name) + b"=" + os.fsencode(value) for name, value in os.environ.items())]
    payload = b"\0".join(fields)
    return len(payload).to_bytes(8, "little") + payload


def parse_request(payload: bytes) -> dict[str, Any]:
    """The server's reading of ``_request``'s fields.

    :raises ValueError: not a request of this version.
    """
    fields = payload.split(b"\0")
    if fields[0] != REQUEST_VERSION:
        raise ValueError("not a composer request of this version")
    limits = {}
    count = int(fields[3])
    for field in fields[4:4 + count]:
        number, soft, hard = (int(word) for word in field.split())
        limits[number] = (soft, hard)
    at = 4 + count
    argc = int(fields[at])
    environ = {}
    for entry in fields[at + 1 + argc:]:
        name, equals, value = entry.partition(b"=")
        if name and equals:
            environ[os.fsdecode(name)] = os.fsdecode(value)
    return {"cwd": os.fsdecode(fields[1]), "umask": int(fields[2]), "rlimits": limits,
            "argv": [os.fsdecode(word) for word in fields[at + 1:at + 1 + argc]], "environ": environ}


def _standard_fds() -> list[int]:
    fds = []
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            fds.append(fd)
        except OSError:  # closed: the worker gets /dev/null, as a fresh process would misbehave anyway
            fds.append(os.open(os.devnull, os.O_RDWR))
    return fds


def read_exact(connection: _socket.socket, size: int) -> bytes | None:
    """``size`` bytes from a stream socket; None when it ends first."""
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _receive(connection: _socket.socket) -> tuple[bytes, int] | None:
    data = read_exact(connection, FRAME)
    return None if data is None else (data[:1], int.from_bytes(data[1:], "little", signed=True))


def run_via_server(argv: list[str]) -> int | None:
    """The command's exit code, run by the server; None when it should run in this process."""
    if not enabled():
        return None
    tried = os.environ.pop(FALLBACK, None)
    if tried is not None:  # client.c tried the server already, and runs the command here
        if tried in ("none", "stale"):
            start_server(replacing=tried == "stale")
        return None
    path = socket_path()
    try:
        problem = folder_problem(os.path.dirname(path))
    except FileNotFoundError:  # no server yet: the one started creates the folder, private
        start_server()
        return None
    if problem is not None:
        warn_untrusted(os.path.dirname(path), problem)
        return None
    connection = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    pending = _hold_signals()
    try:
        connection.settimeout(ACCEPT_TIMEOUT)
        frame = _exchange(connection, path, argv)
        if frame is not None and frame[0] == UNTRUSTED:
            _release_signals(pending)
            warn_untrusted(path, f"is served by uid {frame[1]}")
            return None
        if frame is None or frame[0] != b"P":
            _release_signals(pending)
            start_server(replacing=frame is not None and frame[0] == b"R")
            return None
        connection.settimeout(None)
        connection.sendall(b"G" + bytes(FRAME - 1))  # go: this client did not give up and run it itself
        return _follow(connection, pending)
    finally:
        connection.close()


def _exchange(connection: _socket.socket, path: str, argv: list[str]) -> tuple[bytes, int] | None:
    """Send the command; the server's first answer, None when nothing answered, or (UNTRUSTED,
    its uid) when another user listens (then nothing was sent)."""
    try:
        request = _request(argv)  # first: a folder that is gone fails here, before the server waits
        fds = _standard_fds()
        connection.connect(path)
        credentials = connection.getsockopt(_socket.SOL_SOCKET, _socket.SO_PEERCRED, 12)  # pid, uid, gid
    except OSError:
        return None
    uid = int.from_bytes(credentials[4:8], sys.byteorder)
    if not trusted_peer(uid):
        return UNTRUSTED, uid
    try:
        sent = connection.sendmsg([request[:4096]], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                                      b"".join(fd.to_bytes(4, sys.byteorder) for fd in fds))])
        if sent < len(request[:4096]) or len(request) > 4096:
            connection.sendall(request[sent:])
    except OSError:
        pass  # a stale server refuses before reading: its answer is waiting all the same
    try:
        return _receive(connection)
    except OSError:
        return None


def _hold_signals() -> list[int]:
    """Until the worker has the command, signals wait in a list (then go to it, or to this
    process when it runs the command itself)."""
    pending: list[int] = []
    for name in FORWARDED_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, lambda signal_number, _frame: pending.append(signal_number))
    return pending


def _release_signals(pending: list[int]) -> None:
    for name in FORWARDED_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, signal.default_int_handler if number == signal.SIGINT else signal.SIG_DFL)
    for number in pending:
        signal.raise_signal(number)


def _follow(connection: _socket.socket, pending: list[int]) -> int:
    """Pass signals on until the worker reports its exit code."""

    def forward(signal_number: int, _frame: object) -> None:
        try:
            connection.sendall(b"S" + signal_number.to_bytes(4, "little", signed=True))
        except OSError:
            pass

    for name in FORWARDED_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            signal.signal(number, forward)
    for number in pending:
        forward(number, None)
    while True:
        try:
            frame = _receive(connection)
        except OSError:
            frame = None
        if frame is None:
            os.write(2, b"composer: internal error: the command server's worker ended without an exit code\n")
            return EXIT_INTERNAL
        if frame[0] == b"X":
            return frame[1]


def _server_running(path: str) -> bool:
    """Whether a server holds this socket's lock (running, or still importing)."""
    import fcntl

    try:
        lock = os.open(path + ".lock", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(lock)
    return False


def start_server(replacing: bool = False) -> None:
    """Start the server in the background for the next command (it exits when idle), unless one
    is starting already (commands that arrive while it imports run in their own process). When
    ``replacing`` a stale one that is exiting, the new one waits for its lock."""
    import subprocess

    if not replacing and _server_running(socket_path()):
        return
    try:
        subprocess.Popen([sys.executable, "-P", "-m", "composer.cli.server", socket_path()], cwd="/",
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    except OSError:
        pass
