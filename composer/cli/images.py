"""CLI glue for the image verbs (build, pull, push): arguments in, engine calls, text out.

Decisions are composer.planner.images'; progress goes through the renderers (``--progress``),
``-q`` keeps only errors.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVar

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.contract.plan import Outcome
    from composer.events import EventSink
    from composer.spec.models import Project

T = TypeVar("T")


def _load_project(args: argparse.Namespace) -> Project:
    from composer.cli.commands import project_options
    from composer.spec import load_project

    return load_project(project_options(args))


def _run(args: argparse.Namespace, work: Callable[[Backend], Awaitable[T]]) -> T:
    """Run ``work`` with the chosen backend on the event loop, closing the backend afterwards."""
    import anyio

    from composer.backends.select import make_backend

    async def main() -> T:
        backend = make_backend(args.backend)
        try:
            return await work(backend)
        finally:
            await backend.aclose()

    return anyio.run(main, backend="asyncio")


def _sink(args: argparse.Namespace) -> EventSink:
    from composer.cli.progress import make_renderer

    return make_renderer("quiet" if getattr(args, "quiet", False) else args.progress)


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


def run_build(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.options import BuildOptions, PushOptions

    project = _load_project(args)
    options = BuildOptions(services=tuple(args.services), with_dependencies=args.with_dependencies,
                           no_cache=args.no_cache, pull=args.pull, args=build_args(args.build_args))
    sink = _sink(args)

    async def work(backend: Backend) -> Outcome:
        outcome = await engine.build(project, backend, options, sink, parallel=args.parallel, dry_run=args.dry_run)
        if args.push and not args.dry_run:
            await engine.push(project, backend, PushOptions(services=tuple(args.services)), sink,
                              parallel=args.parallel)
        return outcome

    outcome = _run(args, work)
    if args.dry_run:
        sys.stdout.write(outcome.plan.render() + "\n")
    return 0


def run_pull(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.options import PullOptions

    project = _load_project(args)
    if args.policy:
        from composer.spec.models.scalars import FrozenDict

        project = project.model_copy(update={"services": FrozenDict({
            name: service.model_copy(update={"pull_policy": args.policy})
            for name, service in project.services.items()})})
    options = PullOptions(services=tuple(args.services), include_deps=args.include_deps,
                          ignore_failures=args.ignore_pull_failures, ignore_buildable=args.ignore_buildable)
    sink = _sink(args)
    outcome = _run(args, lambda backend: engine.pull(project, backend, options, sink, parallel=args.parallel,
                                                         dry_run=args.dry_run))
    if args.dry_run:
        sys.stdout.write(outcome.plan.render() + "\n")
    return 0


def run_push(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.options import PushOptions

    project = _load_project(args)
    options = PushOptions(services=tuple(args.services), ignore_failures=args.ignore_push_failures)
    if args.dry_run:
        for reference in engine.push_references(project, options):
            print(f"push {reference}")
        return 0
    sink = _sink(args)
    _run(args, lambda backend: engine.push(project, backend, options, sink, parallel=args.parallel))
    return 0
