"""The commands that make or move the services' images: build, pull and push. Arguments in,
engine calls, text out.

Decisions are composer.planner.images'; progress goes through the renderers (``--progress``),
``-q`` keeps only errors.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend
    from composer.contract.plan import Outcome


def build_args(entries: list[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``--build-arg K=V`` entries; a bare ``K`` takes its value from the environment (dropped when unset)."""
    environ = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if not key:
            raise UsageError(f"invalid --build-arg {entry!r}: expected KEY=VALUE")
        if sep:
            result[key] = value
        elif key in environ:
            result[key] = environ[key]
    return result


def run_build(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import BuildOptions, PushOptions

    args = ctx.args
    project = ctx.project()
    options = BuildOptions(services=tuple(args.services), with_dependencies=args.with_dependencies,
                           no_cache=args.no_cache, pull=args.pull, args=build_args(args.build_args))
    sink = ctx.sink(quiet=getattr(args, "quiet", False))

    async def work(backend: Backend) -> Outcome:
        outcome = await engine.build(project, backend, options, sink, parallel=ctx.parallel, dry_run=ctx.dry_run)
        if args.push and not ctx.dry_run:
            await engine.push(project, backend, PushOptions(services=tuple(args.services)), sink,
                              parallel=ctx.parallel)
        return outcome

    outcome = ctx.run(work)
    ctx.print_plan(outcome.plan)
    return 0


def run_pull(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import PullOptions

    args = ctx.args
    project = ctx.project()
    if args.policy:
        from composer.spec.models.scalars import FrozenDict

        project = project.model_copy(update={"services": FrozenDict({
            name: service.model_copy(update={"pull_policy": args.policy})
            for name, service in project.services.items()})})
    options = PullOptions(services=tuple(args.services), include_deps=args.include_deps,
                          ignore_failures=args.ignore_pull_failures, ignore_buildable=args.ignore_buildable)
    sink = ctx.sink(quiet=getattr(args, "quiet", False))
    outcome = ctx.run(lambda backend: engine.pull(project, backend, options, sink, parallel=ctx.parallel,
                                                  dry_run=ctx.dry_run))
    ctx.print_plan(outcome.plan)
    return 0


def run_push(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.options import PushOptions

    args = ctx.args
    project = ctx.project()
    options = PushOptions(services=tuple(args.services), ignore_failures=args.ignore_push_failures)
    if ctx.dry_run:
        for reference in engine.push_references(project, options):
            print(f"push {reference}")
        return 0
    sink = ctx.sink(quiet=getattr(args, "quiet", False))
    ctx.run(lambda backend: engine.push(project, backend, options, sink, parallel=ctx.parallel))
    return 0
