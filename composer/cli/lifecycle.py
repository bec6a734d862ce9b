"""CLI glue for the lifecycle verbs (up, down, stop, ps, logs): arguments in, engine calls,
text out. No decisions here: those are the reconciler's."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import anyio

from composer.errors import ComposerError, UsageError

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.spec.models import Project

T = TypeVar("T")


def _load_project(args: argparse.Namespace, services: tuple[str, ...] = ()) -> Project:
    from composer.cli.commands import project_options
    from composer.engine import load_project_cached

    return load_project_cached(project_options(args))


def _make_backend(args: argparse.Namespace) -> Backend:
    from composer.backends.select import make_backend

    return make_backend(args.backend)


def _run(args: argparse.Namespace, work: Callable[[Backend], Awaitable[T]]) -> T:
    """Run ``work`` with a backend on the event loop, closing the backend afterwards."""

    async def main() -> T:
        backend = _make_backend(args)
        try:
            return await work(backend)
        finally:
            await backend.aclose()

    return anyio.run(main, backend="asyncio")


def _scale(entries: list[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for entry in entries:
        name, sep, number = entry.partition("=")
        if not sep or not number.isdigit():
            raise UsageError(f"invalid --scale {entry!r}: expected SERVICE=NUM")
        scale[name] = int(number)
    return scale


def run_up(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.cli.progress import make_renderer
    from composer.contract.options import UpOptions
    from composer.errors import WaitTimeoutError

    _check_up_flags(args)
    project = _load_project(args)
    options = UpOptions(
        services=tuple(args.services), no_deps=args.no_deps, force_recreate=args.force_recreate,
        no_recreate=args.no_recreate, always_recreate_deps=args.always_recreate_deps,
        remove_orphans=args.remove_orphans, scale=_scale(args.scale), renew_anon_volumes=args.renew_anon_volumes,
        pull=args.pull, build=args.build, no_start=args.no_start, wait=args.wait,
        wait_timeout=args.wait_timeout, timeout=args.timeout,
    )
    sink = make_renderer(args.progress)
    if args.quiet_pull:
        from composer.cli.progress import QuietPull

        sink = QuietPull(sink)

    async def up(backend: Backend) -> None:
        outcome = await engine.up(project, backend, options, sink, parallel=args.parallel, dry_run=args.dry_run)
        for warning in outcome.plan.warnings:
            print(f"WARN[0000] {warning}", file=sys.stderr)
        if args.dry_run:
            sys.stdout.write(outcome.plan.render() + "\n")

    if not (args.detach or args.wait or args.no_start or args.dry_run):
        return _attach(args, project, up)
    try:
        _run(args, up)
    except WaitTimeoutError:
        if args.wait_timeout is None:
            raise
        # v2's one line, however many services were not ready in time
        raise WaitTimeoutError(f"application not healthy after {args.wait_timeout:g}s") from None
    return 0


def _check_up_flags(args: argparse.Namespace) -> None:
    """Flag combinations v2 rejects, with its words."""
    if args.detach and (args.abort_on_container_exit or args.abort_on_container_failure or args.attach
                        or args.attach_dependencies):
        raise UsageError("--detach cannot be combined with --abort-on-container-exit, "
                         "--abort-on-container-failure, --attach, --attach-dependencies or --watch")
    if args.abort_on_container_exit and args.abort_on_container_failure:
        raise UsageError("--abort-on-container-failure cannot be combined with --abort-on-container-exit")


def _attach(args: argparse.Namespace, project: Project, up: Callable[[Backend], Awaitable[None]]) -> int:
    """Attached ``up``, in one event loop: run ``up``, then follow the attached services' logs
    until their containers exit; Ctrl-C stops the project gracefully (see composer.cli.attach)."""
    from composer.cli.attach import AttachedUp, AttachOptions, attached_services, cascade_of, colour_enabled
    from composer.cli.progress import make_renderer

    services = attached_services(project, tuple(args.services), attach=tuple(args.attach),
                                 no_attach=tuple(args.no_attach), attach_dependencies=args.attach_dependencies)
    if args.exit_code_from:
        if args.exit_code_from not in project.services:
            raise UsageError(f"no such service: {args.exit_code_from}")
        if args.exit_code_from not in services:
            services.append(args.exit_code_from)
    options = AttachOptions(
        services=tuple(services),
        cascade=cascade_of(args.abort_on_container_exit, args.abort_on_container_failure, args.exit_code_from),
        exit_code_from=args.exit_code_from, timeout=args.timeout,
        color=colour_enabled(args.no_color, sys.stdout), prefix=not args.no_log_prefix, timestamps=args.timestamps,
        parallel=args.parallel,
    )
    sink = make_renderer(args.progress)
    return _run(args, lambda backend: AttachedUp(project, backend, options, sink,
                                                  start=lambda: up(backend)).run())


def run_down(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.cli.progress import make_renderer
    from composer.contract.options import DownOptions

    project: Project | None
    try:
        project = _load_project(args)
        project_name = project.name
    except ComposerError:
        if not args.project_name:
            raise
        project, project_name = None, args.project_name
    options = DownOptions(remove_orphans=args.remove_orphans, remove_volumes=args.volumes, timeout=args.timeout,
                          rmi=args.rmi)
    sink = make_renderer(args.progress)
    outcome = _run(args, lambda backend: engine.down(project_name, project, backend, options, sink,
                                                         parallel=args.parallel, dry_run=args.dry_run))
    if args.dry_run:
        sys.stdout.write(outcome.plan.render() + "\n")
    return 0


def run_stop(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.cli.progress import make_renderer
    from composer.contract.options import StopOptions

    project = _load_project(args)
    options = StopOptions(services=tuple(args.services), timeout=args.timeout)
    sink = make_renderer(args.progress)
    outcome = _run(args, lambda backend: engine.stop(project, backend, options, sink, parallel=args.parallel,
                                                         dry_run=args.dry_run))
    if args.dry_run:
        sys.stdout.write(outcome.plan.render() + "\n")
    return 0


def _project_name(args: argparse.Namespace) -> str:
    if args.project_name:
        return str(args.project_name)
    return _load_project(args).name


def run_logs(args: argparse.Namespace) -> int:
    import time

    from composer import engine
    from composer.cli.attach import LogFormatter, colour_enabled, display_name
    from composer.cli.timestamps import parse_time
    from composer.contract.backend import ContainerRef

    if args.index is not None and len(args.services) != 1:
        raise UsageError("--index requires one service to be selected")
    project_name = _project_name(args)
    tail = None if args.tail == "all" else int(args.tail)
    now = time.time()
    since = None if args.since is None else parse_time(args.since, now, "since")
    until = None if args.until is None else parse_time(args.until, now, "until")
    formatter = LogFormatter(color=colour_enabled(args.no_color, sys.stdout), prefix=not args.no_log_prefix,
                             timestamps=args.timestamps)

    async def show(backend: Backend) -> None:
        found = await engine.containers(project_name, backend, include_stopped=True)
        found = [c for c in found if not args.services or c.service_name in args.services]
        if args.index is not None:
            found = [c for c in found if c.number == args.index and not c.oneoff]
            if not found:
                raise ComposerError(f'service "{args.services[0]}" is not running container #{args.index}')
        names = {c.name: display_name(c.name, project_name, c.service_name, c.number) for c in found}
        refs = [ContainerRef(c.container_id, c.name) for c in found]
        async for line in backend.logs(refs, follow=args.follow, tail=tail, since=since, until=until):
            name = names.get(line.container_name, line.container_name)
            sys.stdout.write(formatter.line(name, line.text.rstrip("\n"), line.timestamp))
            sys.stdout.flush()

    try:
        _run(args, show)
    except KeyboardInterrupt:
        return 130
    return 0
