"""The lifecycle commands: up, down, create, start, stop, restart, kill, pause, unpause, rm and
wait. Arguments in, engine calls, text out; no decisions here: those are the reconciler's."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from composer.cli.context import print_warnings
from composer.errors import UsageError

if TYPE_CHECKING:
    import argparse

    from composer.cli.attach import AttachOptions
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend
    from composer.contract.observed import ObservedContainer
    from composer.events import EventSink
    from composer.spec.models import Project


def _scale(entries: list[str]) -> dict[str, int]:
    scale: dict[str, int] = {}
    for entry in entries:
        name, sep, number = entry.partition("=")
        if not sep or not number.isdigit():
            raise UsageError(f"invalid --scale {entry!r}: expected SERVICE=NUM")
        scale[name] = int(number)
    return scale


def run_up(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import UpOptions
    from composer.errors import WaitTimeoutError

    args = ctx.args
    _check_up_flags(args)
    project = ctx.project()
    options = UpOptions(
        services=tuple(args.services), no_deps=args.no_deps, force_recreate=args.force_recreate,
        no_recreate=args.no_recreate, always_recreate_deps=args.always_recreate_deps,
        remove_orphans=args.remove_orphans, scale=_scale(args.scale), renew_anon_volumes=args.renew_anon_volumes,
        pull=args.pull, build=args.build, no_start=args.no_start, wait=args.wait,
        wait_timeout=args.wait_timeout, timeout=args.timeout,
    )
    sink = ctx.sink()
    if args.quiet_pull:
        from composer.cli.progress import QuietPull

        sink = QuietPull(sink)
    if args.quiet_build:
        from composer.cli.progress import QuietBuild

        sink = QuietBuild(sink)

    async def up(backend: Backend) -> None:
        outcome = await engine.up(project, backend, options, sink, parallel=ctx.parallel, dry_run=ctx.dry_run)
        print_warnings(outcome.plan)
        ctx.print_plan(outcome.plan)

    if not (args.detach or args.wait or args.no_start or ctx.dry_run):
        return _attach(ctx, project, up)
    try:
        ctx.run(up)
    except WaitTimeoutError:
        if args.wait_timeout is None:
            raise
        # v2's one line, however many services were not ready in time
        raise WaitTimeoutError(f"application not healthy after {args.wait_timeout:g}s") from None
    return 0


def _check_up_flags(args: argparse.Namespace) -> None:
    """Flag combinations v2 rejects, with its words."""
    if args.detach and (args.abort_on_container_exit or args.abort_on_container_failure or args.attach
                        or args.attach_dependencies or args.watch):
        raise UsageError("--detach cannot be combined with --abort-on-container-exit, "
                         "--abort-on-container-failure, --attach, --attach-dependencies or --watch")
    if args.abort_on_container_exit and args.abort_on_container_failure:
        raise UsageError("--abort-on-container-failure cannot be combined with --abort-on-container-exit")


def _attach(ctx: CommandContext, project: Project, up: Callable[[Backend], Awaitable[None]]) -> int:
    """Attached ``up``, in one event loop: run ``up``, then follow the attached services' logs
    until their containers exit; Ctrl-C stops the project gracefully (see composer.cli.attach)."""
    from composer.cli.attach import AttachedUp, AttachOptions, attached_services, cascade_of, colour_enabled

    args = ctx.args
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
        parallel=ctx.parallel, watching=args.watch,
    )
    sink = ctx.sink()
    if not args.watch:
        return ctx.run(lambda backend: AttachedUp(project, backend, options, sink, start=lambda: up(backend)).run())
    return ctx.run(lambda backend: _watched(ctx, project, backend, options, sink, up))


async def _watched(ctx: CommandContext, project: Project, backend: Backend, options: AttachOptions,
                   sink: EventSink, up: Callable[[Backend], Awaitable[None]]) -> int:
    """``up --watch``: attached ``up``, and once the containers are up, ``watch`` beside it until
    the attached ``up`` ends (Ctrl-C, or every container exited)."""
    import anyio

    from composer import engine
    from composer.cli.attach import AttachedUp
    from composer.cli.watch import watch_report
    from composer.contract.options import WatchOptions

    watch_options = WatchOptions(services=tuple(ctx.args.services), build=ctx.args.build is not False)
    async with anyio.create_task_group() as group:
        async def start() -> None:
            await up(backend)
            group.start_soon(lambda: engine.watch(project, backend, watch_options, watch_report(), sink,
                                                  parallel=ctx.parallel))

        code = await AttachedUp(project, backend, options, sink, start=start).run()
        group.cancel_scope.cancel()
    return code


def run_create(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import UpOptions

    args = ctx.args
    project = ctx.project()
    options = UpOptions(services=tuple(args.services), force_recreate=args.force_recreate,
                        no_recreate=args.no_recreate, remove_orphans=args.remove_orphans, scale=_scale(args.scale),
                        pull=args.pull, build=args.build, no_start=True)
    outcome = ctx.run(lambda backend: engine.up(project, backend, options, ctx.sink(), parallel=ctx.parallel,
                                                dry_run=ctx.dry_run))
    print_warnings(outcome.plan)
    ctx.print_plan(outcome.plan)
    return 0


def run_down(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import DownOptions

    args = ctx.args
    project, project_name = ctx.project_or_name()
    options = DownOptions(services=tuple(args.services), remove_orphans=args.remove_orphans,
                          remove_volumes=args.volumes, timeout=args.timeout, rmi=args.rmi)
    sink = ctx.sink()
    outcome = ctx.run(lambda backend: engine.down(project_name, project, backend, options, sink,
                                                  parallel=ctx.parallel, dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def replicas(entries: list[str]) -> dict[str, int]:
    """``scale``'s SERVICE=REPLICAS arguments, with v2's words for a bad one."""
    scale: dict[str, int] = {}
    for entry in entries:
        name, sep, number = entry.partition("=")
        if not sep:
            raise UsageError(f"invalid scale specifier: {entry}")
        if not number.isdigit():
            raise UsageError(f"invalid scale specifier: can't parse replica value as int: {entry}")
        scale[name] = int(number)
    return scale


def run_scale(ctx: CommandContext) -> int:
    """``scale``: v2's create then start of the named services at their new replica counts."""
    from composer import engine
    from composer.contract.options import UpOptions

    args = ctx.args
    scale = replicas(args.scale)
    project = ctx.project()
    for name in scale:
        if name not in project.services:
            raise UsageError(f"no such service: {name}")
    options = UpOptions(services=tuple(scale), scale=scale, no_deps=args.no_deps)
    outcome = ctx.run(lambda backend: engine.up(project, backend, options, ctx.sink(), parallel=ctx.parallel,
                                                dry_run=ctx.dry_run))
    print_warnings(outcome.plan)
    ctx.print_plan(outcome.plan)
    return 0


def run_start(ctx: CommandContext) -> int:
    from composer import engine

    project = ctx.project()
    outcome = ctx.run(lambda backend: engine.start(project, backend, tuple(ctx.args.services), ctx.sink(),
                                                   parallel=ctx.parallel, dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def run_stop(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import StopOptions

    project = ctx.project()
    options = StopOptions(services=tuple(ctx.args.services), timeout=ctx.args.timeout)
    sink = ctx.sink()
    outcome = ctx.run(lambda backend: engine.stop(project, backend, options, sink, parallel=ctx.parallel,
                                                  dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def run_restart(ctx: CommandContext) -> int:
    from composer import engine

    project = ctx.project()
    services = tuple(ctx.args.services)
    outcome = ctx.run(lambda backend: engine.restart(project, backend, services, ctx.sink(),
                                                     stop_timeout=ctx.args.timeout, parallel=ctx.parallel,
                                                     dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def run_kill(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()
    outcome = ctx.run(lambda backend: engine.kill(project_name, project, backend, tuple(args.services),
                                                  args.signal, ctx.sink(), parallel=ctx.parallel,
                                                  dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def _pause(ctx: CommandContext, paused: bool) -> int:
    from composer import engine

    project, project_name = ctx.project_or_name()
    verb = engine.pause if paused else engine.unpause
    ctx.run(lambda backend: verb(project_name, project, backend, tuple(ctx.args.services), ctx.sink()))
    return 0


def run_pause(ctx: CommandContext) -> int:
    return _pause(ctx, True)


def run_unpause(ctx: CommandContext) -> int:
    return _pause(ctx, False)


def run_rm(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()
    services = tuple(args.services)

    async def work(backend: Backend) -> int:
        found = await engine.removable(project_name, project, backend, services, stop=args.stop)
        if not found:
            print("No stopped containers", file=sys.stderr)
            return 0
        if not args.force and not ctx.dry_run:
            print(f"Going to remove {', '.join(c.name for c in found)}")
            sys.stdout.write("Are you sure? [yN] ")
            sys.stdout.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                return 0
        outcome = await engine.remove(project_name, project, backend, services, ctx.sink(), stop=args.stop,
                                      remove_volumes=args.volumes, parallel=ctx.parallel, dry_run=ctx.dry_run)
        ctx.print_plan(outcome.plan)
        return 0

    return ctx.run(work)


def run_wait(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()

    def exited(container: ObservedContainer, code: int) -> None:
        print(f'container "{container.container_id}" exited with status code {code}', flush=True)

    async def work(backend: Backend) -> int:
        code = await engine.wait(project_name, project, backend, tuple(args.services), exited)
        if args.down_project:
            from composer.contract.options import DownOptions

            await engine.down(project_name, project, backend, DownOptions(), ctx.sink())
        return code

    return ctx.run(work)
