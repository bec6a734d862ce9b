"""The warm command server: one per user and interpreter, forking a worker per command.

``python -m composer.cli.server`` (started by the client, composer/cli/client.py, when none
answers) imports all of composer and its dependencies once, builds pydantic's validators, then
waits on a Unix socket in a folder only its user can enter. Each connection goes to a worker
forked ahead of time (a spare, named ``composer-spare`` until it takes a command, then
``composer-cmd``), which becomes the command's process: it takes the client's stdin, stdout and stderr,
argv, environment, working directory, umask and resource limits, runs the CLI's ``main`` and
reports the exit code. The server itself stays single-threaded (it forks) and never runs a
command.

It exits after COMPOSER_SERVER_IDLE seconds without a command (default 300), and as soon as
composer's own sources or an installed package change (it refuses the command, which then runs
in the client, and the next one starts a fresh server). Only the user who started it may
connect (SO_PEERCRED).

Each backend warms itself up through its hooks (composer.backends.select.WARM_UP): the modules it
imports inside functions, its first requests (docker-py's client), and helper processes started
before any worker is forked (as root on Linux, the native backend's container forkserver: the
containers a worker starts itself, ``run``'s one-offs, are then forked from a light helper
process instead of a fresh interpreter).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import importlib
import io
import os
import pkgutil
import select
import signal
import socket
import struct
import sys
import threading
import time
from types import ModuleType
from typing import Any

from composer import faults
from composer.cli import pages
from composer.cli.client import FRAME, folder_problem, parse_request, read_exact, socket_folder, socket_path

DEFAULT_IDLE_SECONDS = 300.0
LOCK_WAIT_SECONDS = 2.0  # a stale server refuses its last command, then exits: its successor waits
SPARE_AFTER = 0.5  # seconds after a hand-over, at the latest, the next spare is forked
SPARE_NAME, WORKER_NAME = "composer-spare", "composer-cmd"  # process names (15 characters at most)
# Every composer module is pre-imported (a command may import any), but these.
_NOT_PREIMPORTED = ("__main__", "composer.cli.server", "composer.pytest_plugin")
# Dependencies the CLI, the loader and the engine import inside functions: a worker must not
# import them again, after every fork. Each backend lists its own (composer.backends.select.WARM_UP).
_EXTRA_MODULES = ("anyio._backends._asyncio", "anyio.from_thread", "importlib.metadata", "ruamel.yaml", "tarfile",
                  "json", "traceback", "subprocess", "tempfile", "shlex", "secrets", "gzip", "difflib",
                  "ipaddress", "termios", "tty", "resource")


def idle_seconds() -> float:
    try:
        return max(1.0, float(os.environ.get("COMPOSER_SERVER_IDLE", DEFAULT_IDLE_SECONDS)))
    except ValueError:
        return DEFAULT_IDLE_SECONDS


def _secure_folder(folder: str) -> None:
    """Create the socket's folder 0700 (whatever the umask), or refuse one the clients would not
    trust (client.folder_problem): another user's, a symlink, or open to group or others."""
    os.makedirs(os.path.dirname(folder) or ".", exist_ok=True)
    try:
        os.mkdir(folder, 0o700)
    except FileExistsError:
        pass
    else:
        os.chmod(folder, 0o700)  # a umask of 0o700 would leave it unusable
    problem = folder_problem(folder)
    if problem is not None:
        raise SystemExit(f"composer server: {folder} {problem}: not a private folder of this user")


def preimport() -> list[ModuleType]:
    """Import every composer module and the heavy dependencies, build the models' validators and
    the parser, warm the backends up (composer.backends.select.WARM_UP); the backends' hook modules."""
    import composer
    from composer.backends.select import warm_up_hooks

    hooks = warm_up_hooks()
    for name in (*_EXTRA_MODULES, *(name for hook in hooks for name in getattr(hook, "MODULES", ()))):
        with contextlib.suppress(Exception):
            importlib.import_module(name)
    for info in pkgutil.walk_packages(composer.__path__, "composer."):
        if info.name.endswith(_NOT_PREIMPORTED) or info.name in _NOT_PREIMPORTED:
            continue
        with contextlib.suppress(Exception):
            importlib.import_module(info.name)
    from composer.cli import parser

    parser.prebuilt = parser.build_parser()
    for hook in hooks:
        warm_up = getattr(hook, "warm_up", None)
        if warm_up is not None:
            with contextlib.suppress(Exception):  # a cold start is slower, never broken
                warm_up()
    with contextlib.suppress(Exception):
        from composer.spec.models.scalars import build_validators

        build_validators()
    return hooks


def code_snapshot() -> dict[str, tuple[int, int]]:
    """What the loaded code depends on: each composer module's file, and each import folder
    (an install or upgrade changes the folder)."""
    import composer

    snapshot: dict[str, tuple[int, int]] = {}
    composer_folder = os.path.dirname(os.path.abspath(composer.__file__ or ""))
    paths = [getattr(module, "__file__", None) for module in list(sys.modules.values())]
    for path in [p for p in paths if isinstance(p, str) and p.startswith(composer_folder)] + sys.path:
        try:
            info = os.stat(path or ".")
        except OSError:
            snapshot[path] = (-1, -1)
        else:
            snapshot[path] = (info.st_mtime_ns, info.st_size)
    return snapshot


def _stale(snapshot: dict[str, tuple[int, int]]) -> bool:
    for path, (mtime, size) in snapshot.items():
        try:
            info = os.stat(path or ".")
        except OSError:
            if mtime != -1:
                return True
            continue
        if (info.st_mtime_ns, info.st_size) != (mtime, size):
            return True
    return False


def _peer_uid(connection: socket.socket) -> int:
    credentials = connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", credentials)[1])


def serve(path: str, idle: float) -> int:
    folder = os.path.dirname(path)
    _secure_folder(folder)
    lock = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    if not _take_lock(lock, LOCK_WAIT_SECONDS):
        return 0  # another server is running (or starting) for this key
    os.ftruncate(lock, 0)
    os.write(lock, f"{os.getpid()}\n".encode())  # who to stop: stop_servers()
    signal.signal(signal.SIGTERM, _exit_on_signal)  # through the finally: the socket goes too
    signal.signal(signal.SIGHUP, _exit_on_signal)
    listener: socket.socket | None = None
    helpers: list[Any] = []
    bound = -1
    try:
        hooks = preimport()
        snapshot = code_snapshot()
        helpers = _start_helpers(hooks, path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        listener.listen(64)
        bound = os.stat(path).st_ino  # removed at exit only if still ours
        gc.collect()
        gc.freeze()  # the workers' collections never touch (and copy) the server's objects
        _accept_commands(listener, lock, snapshot, idle)
    finally:
        with contextlib.suppress(OSError):
            if os.stat(path).st_ino == bound:
                os.unlink(path)
        if listener is not None:
            listener.close()
        for helper in helpers:
            helper.close()
    return 0


def _accept_commands(listener: socket.socket, lock: int, snapshot: dict[str, tuple[int, int]], idle: float) -> None:
    """Hand each command to a worker until idle for ``idle`` seconds, or stale.

    The worker is forked ahead of its command (a spare): forking a process this size takes
    ~2.5 ms, which the command would otherwise wait for. The next spare is forked once the
    command handed over is done (its worker's report has come), or SPARE_AFTER seconds later when
    it runs on: forking and copying pages meanwhile would take CPU from that command."""
    workers: set[int] = set()
    reports: dict[int, _Report] = {}  # worker pid -> the pages it wrote, coming once its command is done
    written: set[int] = set()  # pages commands wrote: each spare copies them ahead
    spare: _Spare | None = None
    spare_due = 0.0
    deadline = time.monotonic() + idle
    try:
        while not _stop_requested:
            now = time.monotonic()
            if spare is None and now >= spare_due:
                spare = _Spare(listener, lock, written)
                workers.add(spare.pid)
            wait = min(1.0, deadline - now) if spare is not None else spare_due - now
            channels = [report.channel for report in reports.values()]
            readable, _, _ = select.select([listener, *channels], [], [], max(0.0, wait))
            _reap(workers)
            for pid, report in list(reports.items()):
                if report.channel in readable or pid not in workers:
                    pages_written = report.read()
                    if pages_written is not None:  # complete: the worker is done
                        written |= pages_written
                        del reports[pid]
                        spare_due = 0.0
            if spare is not None and spare.pid not in workers:  # it died (killed by someone): another one
                spare.channel.close()
                spare = None
            if listener not in readable:
                if spare is not None and workers == {spare.pid} and time.monotonic() >= deadline:
                    return
                continue
            connection, _ = listener.accept()
            deadline = time.monotonic() + idle
            with connection:
                if _peer_uid(connection) != os.getuid():
                    continue
                if _stale(snapshot):
                    with contextlib.suppress(OSError):
                        connection.sendall(b"R" + bytes(FRAME - 1))
                    return
                if spare is None:  # none ready: fork one now
                    spare = _Spare(listener, lock, written)
                    workers.add(spare.pid)
                spare.hand(connection)
                reports[spare.pid] = _Report(spare.channel)
                spare = None
                spare_due = time.monotonic() + SPARE_AFTER
    finally:
        for channel in [*(r.channel for r in reports.values()), *([spare.channel] if spare is not None else [])]:
            channel.close()


class _Report:
    """The pages a worker reports once its command is done, read as they come (never blocking)."""

    def __init__(self, channel: socket.socket) -> None:
        self.channel = channel
        self.data = b""
        channel.setblocking(False)

    def read(self) -> set[int] | None:
        """The pages, once the worker has closed its end (exited); None until then."""
        import array

        try:
            while chunk := self.channel.recv(1 << 16):
                self.data += chunk
        except BlockingIOError:
            return None
        except OSError:
            pass
        self.channel.close()
        runs = array.array("Q")
        runs.frombytes(self.data[: len(self.data) - len(self.data) % (2 * runs.itemsize)])
        return pages.pages_of(runs)


class _Spare:
    """A worker forked ahead of its command. It copies the pages commands are known to write
    (composer/cli/pages.py), then waits on a socket pair for the connection the server accepts
    (passed with SCM_RIGHTS) and runs that command; the pair's end (the server dismissed it, or
    exited) makes it exit. Once its command is done it reports, on the same pair, the pages it wrote."""

    def __init__(self, listener: socket.socket, lock: int, written: set[int]) -> None:
        channel, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        pid = os.fork()
        if pid == 0:  # the worker: never back into the server's loop, whatever happens
            code = 1
            try:
                listener.close()
                os.close(lock)
                channel.close()
                _name_process(SPARE_NAME)
                regions = pages.private_writable_regions()  # the server's: the ones worth copying ahead
                pages.copy_ahead(written)
                connection = _await_connection(worker_end)
                if connection is not None:
                    _name_process(WORKER_NAME)
                    code = _worker(connection)
                    _send_report(worker_end, pages.written_pages(regions))
                else:
                    code = 0
            finally:
                os._exit(code)
        worker_end.close()
        self.pid = pid
        self.channel = channel

    def hand(self, connection: socket.socket) -> None:
        with contextlib.suppress(OSError):  # gone: the client sees the connection close, and runs it itself
            socket.send_fds(self.channel, [b"C"], [connection.fileno()])


def _send_report(channel: socket.socket, runs: Any) -> None:
    with contextlib.suppress(OSError):  # a report too big for the pair's buffer is dropped, never waited for
        channel.send(runs.tobytes(), socket.MSG_DONTWAIT)


def _name_process(name: str) -> None:
    """What ``ps`` shows (and tests look for): a spare or a worker running a command."""
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(name)


def _await_connection(channel: socket.socket) -> socket.socket | None:
    try:
        _, fds, _, _ = socket.recv_fds(channel, 1, 1)
    except OSError:
        return None
    return socket.socket(fileno=fds[0]) if fds else None


def _start_helpers(hooks: list[ModuleType], path: str) -> list[Any]:
    """The helper processes the backends start before any worker is forked, which the workers
    inherit (the native backend's container forkserver, as root on Linux); closed at exit."""
    helpers = []
    for hook in hooks:
        start = getattr(hook, "start_helpers", None)
        helper = None
        if start is not None:
            with contextlib.suppress(Exception):  # the workers then start their helpers themselves
                helper = start(path)
        if helper is not None:
            helpers.append(helper)
    return helpers


def _take_lock(lock: int, patience: float) -> bool:
    """The server's lock, waiting ``patience`` seconds for a stale server to finish exiting."""
    deadline = time.monotonic() + patience
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


_stop_requested = False


def _exit_on_signal(signal_number: int, _frame: object) -> None:
    # The exception is lost when the handler happens to run inside a finalizer (a __del__ during
    # gc.collect(), say): the flag is what the accept loop looks at, at least once a second.
    global _stop_requested
    _stop_requested = True
    raise SystemExit(0)


def _reap(workers: set[int]) -> None:
    for pid in list(workers):
        with contextlib.suppress(ChildProcessError):
            done, _ = os.waitpid(pid, os.WNOHANG)
            if not done:
                continue
        workers.discard(pid)


def stop_servers(folder: str | None = None, timeout: float = 5.0) -> list[int]:
    """Stop every server of ``folder`` (default: this user's) and wait for them to exit; their
    pids. For test suites and uninstalls: a server otherwise exits on its own when idle."""
    folder = folder or socket_folder()
    stopped: list[int] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return stopped
    for name in names:
        if not name.endswith(".sock.lock"):
            continue
        try:
            lock = os.open(os.path.join(folder, name), os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:  # another stop_servers (a parallel test session) got there first
            continue
        try:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: a live server, whose pid is in the file
                words = os.read(lock, 32).split()
                if not words or not words[0].isdigit():
                    continue  # not one of ours (an older server): it exits when idle
                pid = int(words[0])
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                    stopped.append(pid)
                _wait_for_lock(lock, pid, timeout)  # released when it has exited
            with contextlib.suppress(FileNotFoundError):  # the same race, after the wait
                os.unlink(os.path.join(folder, name))
        finally:
            os.close(lock)
    return stopped


def _wait_for_lock(lock: int, pid: int, timeout: float) -> None:
    if not _take_lock(lock, timeout):  # it did not exit when asked
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        fcntl.flock(lock, fcntl.LOCK_EX)  # released once it is gone


# --- the worker: one command ------------------------------------------------------------------

def _receive_request(connection: socket.socket) -> tuple[dict[str, Any], list[int]]:
    import array

    fds = array.array("i")
    data, ancillary, _, _ = connection.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    if len(data) < 8:
        raise ConnectionError("short request")
    size = int.from_bytes(data[:8], "little")
    rest = read_exact(connection, size - len(data[8:])) if size > len(data[8:]) else b""
    if rest is None:
        raise ConnectionError("truncated request")
    try:
        return parse_request(data[8:] + rest), list(fds)
    except (ValueError, IndexError) as exc:
        raise ConnectionError(f"bad request: {exc}") from None


def _adopt(request: dict[str, Any], fds: list[int]) -> None:
    """Become the client's process: its standard streams, folder, environment, umask, limits."""
    import resource

    for target, fd in zip((0, 1, 2), fds, strict=False):
        os.dup2(fd, target)
    for fd in fds:
        if fd > 2:
            os.close(fd)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["environ"])
    faults.arm()  # the client's COMPOSER_FAULTS, not the one the server started with
    os.umask(request["umask"])
    for number, (soft, hard) in request["rlimits"].items():
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(number, (soft, hard))
    encoding, errors = sys.stdout.encoding, sys.stdout.errors
    sys.stdin = open(0, encoding=encoding, errors=errors, closefd=False)
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding=encoding, errors=errors,
                                  line_buffering=os.isatty(1))
    sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), encoding=encoding, errors="backslashreplace",
                                  line_buffering=True, write_through=True)
    sys.argv = list(request["argv"])
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGWINCH, signal.SIGUSR1, signal.SIGUSR2,
                   signal.SIGCHLD):
        signal.signal(number, signal.SIG_DFL)


_command_done = threading.Event()  # the client may go: the worker only reports its pages, then exits


def _relay_signals(connection: socket.socket) -> None:
    """Raise in this process each signal the client passes on; if the client goes away before
    the command ends (killed), end the command as its process would have ended."""
    buffer = b""
    while True:
        try:
            chunk = connection.recv(64)
        except OSError:
            chunk = b""
        if not chunk:
            if not _command_done.is_set():
                os.kill(os.getpid(), signal.SIGKILL)
            return
        buffer += chunk
        while len(buffer) >= FRAME:
            frame, buffer = buffer[:FRAME], buffer[FRAME:]
            if frame[:1] == b"S":
                os.kill(os.getpid(), int.from_bytes(frame[1:], "little", signed=True))


def _worker(connection: socket.socket) -> int:
    try:
        request, fds = _receive_request(connection)
        _adopt(request, fds)
        connection.sendall(b"P" + os.getpid().to_bytes(4, "little", signed=True))
        if (read_exact(connection, FRAME) or b"")[:1] != b"G":  # the client gave up waiting and runs it itself
            return 1
    except Exception:
        return 1
    from composer.cli import EXIT_INTERRUPTED

    try:
        # the relay may raise a pending Ctrl-C at once: even while start() waits for the thread
        threading.Thread(target=_relay_signals, args=(connection,), daemon=True, name="composer-signals").start()
        code = _run_command(request["argv"][1:])
    except KeyboardInterrupt:  # a Ctrl-C relayed before the command's own handler was in place
        _interrupted()
        code = EXIT_INTERRUPTED
    _command_done.set()
    release_stdio()
    try:
        connection.sendall(b"X" + code.to_bytes(4, "little", signed=True))
    except OSError:
        pass
    return code


def release_stdio() -> None:
    """Let go of the client's stdin, stdout and stderr once the command is done (its streams
    flushed): whoever reads the command's output (a pipe, ``| tee``, a CI log) sees its end when
    the command ends, not once the worker has reported its pages and exited (5-10 ms later).
    Flushed here first: output still buffered would otherwise go to /dev/null."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)


def _interrupted() -> None:
    """What _main says on Ctrl-C, for an interrupt that came before it could."""
    with contextlib.suppress(Exception):
        sys.stderr.write("composer: interrupted\n")
        sys.stderr.flush()


def _run_command(argv: list[str]) -> int:
    import atexit

    from composer.cli import EXIT_INTERRUPTED, _main

    try:
        code = _main(argv)
    except SystemExit as exit_:  # argparse: --help, a usage error
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if isinstance(exit_.code, str):
            print(exit_.code, file=sys.stderr)
    except KeyboardInterrupt:  # while parsing the arguments, before _main's own handler
        _interrupted()
        code = EXIT_INTERRUPTED
    for thread in threading.enumerate():  # as interpreter shutdown does: wait for non-daemon threads
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    return code & 0xFF


def main(argv: list[str]) -> int:
    """``python -P -m composer.cli.server [SOCKET]``: the client names the socket it will look for.
    ``--stop``: stop this user's servers (those of COMPOSER_SERVER_DIR when set)."""
    if argv[1:] == ["--stop"]:
        stopped = stop_servers()
        print(f"stopped {len(stopped)} composer command server(s)")
        return 0
    return serve(argv[1] if len(argv) > 1 else socket_path(), idle_seconds())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
