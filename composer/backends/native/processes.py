"""A native container's processes: ``exec`` (through runtime.nsexec, with or without a tty),
``attach`` (through its monitor's attach socket when it has a terminal or stdin, else its log
followed until its monitor ends) and ``top`` (its cgroup's processes, as
``ps -ef`` shows them). Long-lived: the backend releases the project's lock first."""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from composer.backends.native.errors import error
from composer.backends.native.runtime import cgroups, console, eventlog, nsexec
from composer.backends.native.runtime.api import open_pidfd, wait_pidfd
from composer.backends.native.runtime.logfiles import Cursor
from composer.backends.native.runtime.supervisor import read_json
from composer.backends.native.status import running_cgroup
from composer.contract.backend import ContainerRef, DetachScanner, ExecSpec, ProcessList, Streams, TerminalWindow
from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers


def exec_in_container(containers: NativeContainers, ref: ContainerRef, spec: ExecSpec,
                      streams: Streams | None) -> int | None:
    project, name, config = containers.locate(ref, "exec")
    state = containers.state(project, name, config)
    if state.status == "paused":
        raise error(f"container {name} is paused, unpause the container before exec", "exec")
    if state.status != "running":
        raise error(f"container {name} is not running", "exec")
    runtime_state = read_json(containers.runtime.run_dir(project, name) / "state.json") or {}
    cfg = nsexec.exec_config(config, runtime_state, list(spec.command), user=spec.user, workdir=spec.workdir,
                             env=dict(spec.environment), privileged=spec.privileged, tty=spec.tty)
    # docker's exec events: exec_create and exec_start with the command, exec_die with its code (a
    # detached exec outlives this process, which cannot see its end: its exec_die is not recorded)
    exec_id, command = eventlog.new_exec_id(), eventlog.exec_command(list(spec.command))
    for action in ("exec_create", "exec_start"):
        containers.event(project, f"{action}: {command}", config, execID=exec_id)
    if streams is None:
        nsexec.run(cfg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return None
    code = _exec_tty(cfg, streams, spec.interactive) if spec.tty else _exec_piped(cfg, streams, spec.interactive)
    containers.event(project, "exec_die", config, execID=exec_id, exitCode=str(code))
    return code


def _exec_piped(cfg: dict[str, Any], streams: Streams, interactive: bool) -> int:
    stdin = _fileno(streams.stdin) if interactive and streams.stdin is not None else None
    stdout, stderr = _fileno(streams.stdout), _fileno(streams.stderr)
    with contextlib.suppress(Exception):
        streams.stdout.flush()
        streams.stderr.flush()
    process = nsexec.run(cfg, stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                         stderr=stderr if stderr is not None else subprocess.PIPE)
    pumps = []
    for pipe, target in ((process.stdout, streams.stdout), (process.stderr, streams.stderr)):
        if pipe is not None:
            thread = threading.Thread(target=_copy, args=(pipe, target), daemon=True)
            thread.start()
            pumps.append(thread)
    code = process.wait()
    for thread in pumps:
        thread.join()
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()
    return code


def _exec_tty(cfg: dict[str, Any], streams: Streams, interactive: bool) -> int:
    """The process gets a terminal of the container's own devpts instance (nsexec sends its
    master back), never one of the host's; its size follows the caller's window."""
    import socket

    size = streams.window.size() if streams.window is not None else None
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    errors = _fileno(streams.stderr)
    try:
        process = nsexec.run({**cfg, "console_size": list(size) if size else None}, stdout=subprocess.DEVNULL,
                             stderr=errors if errors is not None else subprocess.PIPE, console_fd=theirs.fileno())
    finally:
        theirs.close()
    try:
        master = console.receive_master(ours)
    except (RuntimeError, OSError):  # it failed before its exec: the helper said why on stderr
        if process.stderr is not None:
            streams.stderr.write(process.stderr.read())
            streams.stderr.flush()
        return process.wait()
    done = threading.Event()
    if streams.window is not None:
        threading.Thread(target=_follow_window, args=(streams.window, master, done), daemon=True).start()
    stdin = _fileno(streams.stdin) if interactive and streams.stdin is not None else None
    try:
        while True:
            readers = [master] + ([stdin] if stdin is not None else [])
            ready, _, _ = select.select(readers, [], [], 0.1)
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                streams.stdout.write(data)
                streams.stdout.flush()
            if stdin is not None and stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    os.write(master, data)
                else:
                    stdin = None
            if not ready and process.poll() is not None:
                break
    finally:
        done.set()
        os.close(master)
    if process.stderr is not None:
        streams.stderr.write(process.stderr.read())
        process.stderr.close()
    return process.wait()


def _follow_window(window: TerminalWindow, master: int, done: threading.Event) -> None:
    while not done.is_set():
        if window.wait_change(0.2) and (size := window.size()) is not None:
            with contextlib.suppress(OSError):
                console.set_window(master, *size)


def attach_container(containers: NativeContainers, ref: ContainerRef, streams: Streams, start: bool) -> int | None:
    """Stream the container's output (and its stdin, terminal and window size when it has them,
    through its monitor's attach socket: runtime/console.py) until it exits; its exit code, or
    None when the caller typed the detach keys (with a terminal and stdin, as Docker)."""
    project, name, config = containers.locate(ref, "attach")
    if start:
        if config.get("restart") or config.get("healthcheck"):
            containers.start(ref)
        else:
            containers.start_direct(project, name, config)
    elif containers.state(project, name, config).status != "running":
        raise error("You cannot attach to a stopped container, start it first", "attach")
    containers.release()
    run_dir = containers.runtime.run_dir(project, name)
    state = read_json(run_dir / "state.json") or {}
    fd = open_pidfd(state.get("monitor"), state.get("monitor_start"))
    try:
        relayed = False
        if config.get("tty") or config.get("stdin_open"):
            try:
                if _relay(str(run_dir), streams, tty=bool(config.get("tty"))):
                    return None
                relayed = True
            except BackendError:
                # A quick one-off can end, and its monitor with its socket, before the caller connects:
                # its output is in the log, as the monitor wrote it, and stdin can no longer matter.
                # The monitor writes exit.json before it removes its socket (console.py), so no
                # socket and no exit.json is a monitor that died (killed), or something else.
                ended = fd is None or (run_dir / "exit.json").exists() or wait_pidfd(fd, 0)
                if not ended:
                    raise
        if relayed:
            if fd is not None:
                wait_pidfd(fd, None)
        else:
            cursor = Cursor(str(config["log_path"]))
            while True:
                done = wait_pidfd(fd, 0.05) if fd is not None else _ended(containers, project, name)
                _copy_log(cursor, streams)
                if done:
                    break
    finally:
        if fd is not None:
            os.close(fd)
    return int(containers.runtime.state(project, name).exit_code or 0)


def _ended(containers: NativeContainers, project: str, name: str) -> bool:
    """Whether a container whose monitor this process holds no pidfd for has ended, by its state
    files (exit.json; its PID 1 or monitor alive); polled. No pidfd is not an end: a one-off whose
    monitor could not be opened as state.json names it was taken for ended at once, its log read
    before it wrote any and its code taken as 0 (a suspect for an empty `run --rm` in a TCG guest)."""
    if containers.runtime.state(project, name).status in ("exited", "dead"):
        return True
    time.sleep(0.05)
    return False


def _relay(run_dir: str, streams: Streams, *, tty: bool) -> bool:
    """Relay ``streams`` through the attach socket until the monitor closes it; True when the
    caller detached instead."""
    import socket

    path, dir_fd = console.connectable(run_dir)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise error(f"cannot attach to the container: {exc.strerror or exc}", "attach") from None
    finally:
        if dir_fd >= 0:
            os.close(dir_fd)
    return _Relay(sock, streams, tty).run()


class _Relay:
    """The client's side of an attach socket: stdin (watching for the detach keys) and window
    sizes out, the output in."""

    def __init__(self, sock: Any, streams: Streams, tty: bool) -> None:
        self.sock = sock
        self.streams = streams
        self.tty = tty
        self.sending = threading.Lock()
        self.done = threading.Event()
        self.detached = threading.Event()

    def run(self) -> bool:
        helpers = []
        if self.tty and self.streams.window is not None:
            helpers.append(threading.Thread(target=self._follow_window, daemon=True, name="attach-window"))
        if self.streams.stdin is not None:
            helpers.append(threading.Thread(target=self._read_stdin, daemon=True, name="attach-stdin"))
        for thread in helpers:
            thread.start()
        reader = console.FrameReader()
        try:
            while data := self._receive():
                for kind, payload in reader.feed(data):
                    target = self.streams.stderr if kind == console.STDERR else self.streams.stdout
                    target.write(payload)
                    target.flush()
        finally:
            self.done.set()
            self.sock.close()
        return self.detached.is_set()

    def _receive(self) -> bytes:
        try:
            data: bytes = self.sock.recv(65536)
        except OSError:
            return b""
        return data

    def _send(self, data: bytes) -> bool:
        with self.sending:
            try:
                self.sock.sendall(data)
            except OSError:
                return False
        return True

    def _follow_window(self) -> None:
        window = self.streams.window
        assert window is not None
        while not self.done.is_set():
            size = window.size()
            if size is not None and not self._send(console.frame(console.WINDOW, console.window_payload(*size))):
                return
            while not self.done.is_set() and not window.wait_change(0.2):
                pass

    def _read_stdin(self) -> None:
        import socket

        stdin = self.streams.stdin
        assert stdin is not None
        scanner = DetachScanner(self.streams.detach_keys if self.tty else b"")
        stdin_fd = _fileno(stdin)
        while not self.done.is_set():
            if stdin_fd is not None and not select.select([stdin_fd], [], [], 0.2)[0]:
                continue
            data = os.read(stdin_fd, 65536) if stdin_fd is not None else stdin.read(65536)
            if not data:
                self._send(console.frame(console.STDIN_END))
                return
            data, detach = scanner.feed(data)
            if data and not self._send(console.frame(console.STDIN, data)):
                return
            if detach:
                self.detached.set()
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_RDWR)
                return


def _copy_log(cursor: Cursor, streams: Streams) -> None:
    """The container's output logged since the last copy (across a rotation of the log)."""
    touched = set()
    for line in cursor.read():
        with contextlib.suppress(ValueError, KeyError):
            record = json.loads(line)
            target = streams.stderr if record["stream"] == "stderr" else streams.stdout
            target.write(record["log"].encode())
            touched.add(id(target))
    for target in (streams.stdout, streams.stderr):
        if id(target) in touched:
            target.flush()


def container_top(containers: NativeContainers, ref: ContainerRef) -> ProcessList:
    project, name, _ = containers.locate(ref, "top")
    cgroup = running_cgroup(containers.runtime, project, name, "top")
    rows = [row for row in (_process_row(pid) for pid in sorted(cgroups.pids(cgroup))) if row is not None]
    return ProcessList(("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"), tuple(rows))


def _fileno(stream: BinaryIO | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    while data := source.read1(65536) if hasattr(source, "read1") else source.read(65536):
        target.write(data)
        target.flush()


def _process_row(pid: int) -> tuple[str, ...] | None:
    """One ``ps -ef`` row from /proc (as Docker's top shows by default)."""
    import pwd

    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "0")
    with contextlib.suppress(KeyError):
        uid = pwd.getpwuid(int(uid)).pw_name
    ticks = os.sysconf("SC_CLK_TCK")
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    started = time.localtime(boot + int(fields[19]) / ticks)
    cpu = (int(fields[11]) + int(fields[12])) // ticks
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    tty = "?" if int(fields[4]) == 0 else f"pts/{int(fields[4]) & 0xFF}"
    return (uid, str(pid), fields[1], "0", time.strftime("%H:%M", started), tty,
            f"{cpu // 3600:02d}:{cpu % 3600 // 60:02d}:{cpu % 60:02d}", cmdline or f"[{comm}]")
