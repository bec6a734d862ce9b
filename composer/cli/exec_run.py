"""``exec`` and ``run``: a command in a service's container, or in a new one-off container,
with the terminal's streams (raw while a tty session runs)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Streams


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


def _streams(interactive: bool) -> Streams:
    from composer.contract.backend import Streams

    sys.stdout.flush()
    sys.stderr.flush()
    return Streams(sys.stdout.buffer, sys.stderr.buffer, sys.stdin.buffer if interactive else None)


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
    streams = None if args.detach else _streams(spec.interactive)
    with _raw_terminal(tty):
        code = ctx.run(lambda backend: engine.exec_(project_name, project, backend, args.service, spec, streams,
                                                    index=args.index))
    return code or 0


def run_run(ctx: CommandContext) -> int:
    import shlex

    from composer import engine
    from composer.contract.options import RunOptions

    args = ctx.args
    project = ctx.project()
    project.service(args.service)
    tty = not args.no_tty and not args.detach and _stdin_is_tty()
    interactive = args.interactive and not args.detach
    options = RunOptions(
        command=tuple(args.cmd) if args.cmd else None,
        entrypoint=tuple(shlex.split(args.entrypoint)) if args.entrypoint is not None else None,
        environment=_run_environment(args.env, args.env_from_file), user=args.user, workdir=args.workdir,
        volumes=tuple(_volume(entry, project.working_dir) for entry in args.volume),
        ports=tuple(port for entry in args.publish for port in _ports(entry)), service_ports=args.service_ports,
        name=args.name, tty=tty, interactive=interactive, use_aliases=args.use_aliases,
        labels=parse_env(args.label, {}), cap_add=tuple(args.cap_add), cap_drop=tuple(args.cap_drop),
    )
    streams = None if args.detach else _streams(interactive)
    sink = ctx.sink(quiet=args.quiet)
    if args.quiet_pull:
        from composer.cli.progress import QuietPull

        sink = QuietPull(sink)
    with _raw_terminal(tty):
        ref, code = ctx.run(lambda backend: engine.run(project, backend, args.service, options, streams,
                                                       sink, no_deps=args.no_deps, remove=args.rm,
                                                       pull=args.pull, parallel=args.parallel,
                                                       build=True if args.build else None,
                                                       remove_orphans=args.remove_orphans))
    if args.detach:  # even with -q, as v2 (which quiets the progress only)
        print(ref.container_id)
        return 0
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
