"""``exec``, ``run`` and ``attach``: a command in a service's container, or in a new one-off
container, or a service's running container, with the terminal's streams (raw while a tty
session runs, its size followed: SIGWINCH, which the command server's client passes on)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend, Streams


def parse_env(entries: Iterable[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` entries; a bare ``KEY`` takes the value from the environment (skipped if unset)."""
    source = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if sep:
            result[key] = value
        elif key in source:
            result[key] = source[key]
    return result


@contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """The terminal in raw mode while a tty session runs (keys go to the container)."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class TerminalWindow:
    """The caller's terminal (the contract's TerminalWindow): its size, and SIGWINCH's news of a change."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.changed = threading.Event()

    def size(self) -> tuple[int, int] | None:
        try:
            size = os.get_terminal_size(self.fd)
        except OSError:
            return None
        return size.lines, size.columns

    def wait_change(self, timeout: float) -> bool:
        if not self.changed.wait(timeout):
            return False
        self.changed.clear()
        return True


def _terminal_fd() -> int | None:
    """The caller's terminal: stdout's (as the docker CLI's resize takes it), else stdin's."""
    for stream in (sys.stdout, sys.stdin):
        try:
            if stream.isatty():
                return stream.fileno()
        except (AttributeError, ValueError, OSError):
            continue
    return None


@contextmanager
def _followed_window(enabled: bool) -> Iterator[TerminalWindow | None]:
    """The terminal's window, told of each SIGWINCH while the session runs (None: no terminal)."""
    fd = _terminal_fd() if enabled else None
    if fd is None:
        yield None
        return
    window = TerminalWindow(fd)
    previous = signal.signal(signal.SIGWINCH, lambda _number, _frame: window.changed.set())
    try:
        yield window
    finally:
        signal.signal(signal.SIGWINCH, previous)


PROXIED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
CONTROL_KEYS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ@[\\]^_"


def detach_keys(text: str) -> bytes:
    """Docker's ``--detach-keys`` (``ctrl-p,ctrl-q``: ``ctrl-<a-z@[\\]^_>`` or one character each).

    :raises UsageError: a key Docker refuses.
    """
    keys = bytearray()
    for key in text.split(","):
        key = key.strip()
        if len(key) == 1:
            keys.append(ord(key))
        elif key.lower().startswith("ctrl-") and len(key) == 6 and key[5].upper() in CONTROL_KEYS:
            keys.append(ord(key[5].upper()) - 64)
        else:
            raise UsageError(f"Unknown character: '{key}'")
    return bytes(keys)


def _streams(interactive: bool, window: TerminalWindow | None = None, keys: bytes | None = None) -> Streams:
    from composer.contract.backend import DETACH_KEYS, Streams

    sys.stdout.flush()
    sys.stderr.flush()
    return Streams(sys.stdout.buffer, sys.stderr.buffer, sys.stdin.buffer if interactive else None, window=window,
                   detach_keys=DETACH_KEYS if keys is None else keys)


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def run_exec(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.backend import ExecSpec

    args = ctx.args
    if not args.cmd:
        raise UsageError("exec requires at least 2 arguments: SERVICE COMMAND")
    project, project_name = ctx.project_or_name()
    tty = not args.no_tty and not args.detach and _stdin_is_tty()
    spec = ExecSpec(tuple(args.cmd), user=args.user, workdir=args.workdir, environment=parse_env(args.env),
                    privileged=args.privileged, tty=tty, interactive=args.interactive and not args.detach)
    with _followed_window(tty) as window:
        streams = None if args.detach else _streams(spec.interactive, window)
        with _raw_terminal(tty):
            code = ctx.run(lambda backend: engine.exec_(project_name, project, backend, args.service, spec, streams,
                                                        index=args.index))
    return code or 0


def run_run(ctx: CommandContext) -> int:
    args = ctx.args
    if args.tty and args.no_tty:
        raise UsageError("--tty and --no-TTY can't be used together")
    project = ctx.project()
    project.service(args.service)
    tty = not args.no_tty and not args.detach and (args.tty or _stdin_is_tty())
    interactive = args.interactive and not args.detach
    with _followed_window(tty) as window:
        return _run(ctx, project, tty, interactive, window)


def _run(ctx: CommandContext, project: Any, tty: bool, interactive: bool, window: TerminalWindow | None) -> int:
    import shlex

    from composer import engine
    from composer.contract.options import RunOptions

    args = ctx.args
    options = RunOptions(
        command=tuple(args.cmd) if args.cmd else None,
        entrypoint=tuple(shlex.split(args.entrypoint)) if args.entrypoint is not None else None,
        environment=_run_environment(args.env, args.env_from_file), user=args.user, workdir=args.workdir,
        volumes=tuple(_volume(entry, project.working_dir) for entry in args.volume),
        ports=tuple(port for entry in args.publish for port in _ports(entry)), service_ports=args.service_ports,
        name=args.name, tty=tty, interactive=interactive, use_aliases=args.use_aliases,
        labels=parse_env(args.label, {}), console_size=window.size() if window is not None else None,
        cap_add=tuple(args.cap_add), cap_drop=tuple(args.cap_drop),
    )
    streams = None if args.detach else _streams(interactive, window)
    sink = ctx.sink(quiet=args.quiet)
    if args.quiet_pull:
        from composer.cli.progress import QuietPull

        sink = QuietPull(sink)
    with _raw_terminal(tty and _stdin_is_tty()):
        ref, code = ctx.run(lambda backend: engine.run(project, backend, args.service, options, streams,
                                                       sink, no_deps=args.no_deps, remove=args.rm,
                                                       pull=args.pull, parallel=args.parallel,
                                                       build=True if args.build else None,
                                                       remove_orphans=args.remove_orphans))
    if args.detach:  # even with -q, as v2 (which quiets the progress only)
        print(ref.container_id)
        return 0
    return code or 0


def run_attach(ctx: CommandContext) -> int:
    """``attach SERVICE``: the container's output, and its stdin and terminal when it has them;
    its exit code once it exits, 0 when detached (ctrl-p ctrl-q, or ``--detach-keys``)."""
    from composer import engine

    args = ctx.args
    keys = detach_keys(args.detach_keys)
    project, project_name = ctx.project_or_name()
    service = project.services.get(args.service) if project is not None else None
    tty = bool(service.tty) if service is not None else None  # without the file: as the container has it
    interactive = not args.no_stdin and (service is None or bool(service.stdin_open))
    proxy = args.sig_proxy == "true" and not tty  # with a terminal, the keys reach it as typed (as Docker)

    async def attach(backend: Backend) -> int | None:
        import anyio

        if not proxy:
            return await engine.attach(project_name, project, backend, args.service, streams, tty=tty,
                                       index=args.index)
        with anyio.open_signal_receiver(*PROXIED_SIGNALS) as received:
            numbers = (int(signal.Signals(number)) async for number in received)
            return await engine.attach(project_name, project, backend, args.service, streams, tty=tty,
                                       index=args.index, signals=numbers)

    with _followed_window(bool(tty)) as window:
        streams = _streams(interactive, window, keys)
        with _raw_terminal(bool(tty) and interactive and _stdin_is_tty()):
            code = ctx.run(attach)
    return code or 0


def _run_environment(entries: Iterable[str], files: Iterable[str]) -> dict[str, str]:
    """``-e`` entries, then each ``--env-from-file`` file for the names ``-e`` did not set (v2's
    order); a file's ``${X}`` sees what was set before it.

    :raises UsageError: a file that cannot be read or parsed (one line).
    """
    from composer.spec.dotenv import DotenvError, read_dotenv_file

    environment = parse_env(entries)
    for path in files:
        try:
            values = read_dotenv_file(path, environment.get)
        except DotenvError as exc:
            raise UsageError(f"--env-from-file: {exc.message}") from None
        for key, value in values.items():
            environment.setdefault(key, value)
    return environment


def _volume(entry: str, working_dir: str) -> Any:
    from composer.spec.models.service import ServiceVolume
    from composer.spec.shortsyntax import parse_volume

    fields = parse_volume(entry)
    source = fields.get("source")
    if fields.get("type") == "bind" and source and not os.path.isabs(source):
        fields["source"] = os.path.normpath(os.path.join(working_dir, os.path.expanduser(source)))
    return ServiceVolume.model_validate(fields)


def _ports(entry: str) -> list[Any]:
    from composer.spec.models.service import PortConfig
    from composer.spec.shortsyntax import parse_port

    return [PortConfig.model_validate(fields) for fields in parse_port(entry)]
