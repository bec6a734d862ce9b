"""``watch``: bring the services up (``up -d``, unless ``--no-up``), then apply file changes to
them as their ``develop.watch`` rules say, until Ctrl-C (which leaves them running, as v2 does)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend
    from composer.engine import WatchReport

INTERRUPTED = 130


def watch_report(*, quiet: bool = False) -> WatchReport:
    """v2's watch logger: its messages on stdout, its warnings on stderr, exec output to the terminal."""
    from composer.contract.backend import Streams
    from composer.engine import WatchReport

    def log(message: str) -> None:
        if not quiet:
            print(message, flush=True)

    def warn(message: str) -> None:
        print(f"WARN[0000] {message}", file=sys.stderr, flush=True)

    def debug(message: str) -> None:
        print(f"DEBU {message}", file=sys.stderr, flush=True)

    return WatchReport(log, warn, Streams(sys.stdout.buffer, sys.stderr.buffer),
                       debug if os.environ.get("COMPOSER_DEBUG") else None)


def run_watch(ctx: CommandContext) -> int:
    from composer import engine
    from composer.cli.context import print_warnings
    from composer.contract.options import UpOptions, WatchOptions

    args = ctx.args
    project = ctx.project()
    options = WatchOptions(services=tuple(args.services))
    sink = ctx.sink(quiet=args.quiet)

    async def work(backend: Backend) -> None:
        if not args.no_up:
            outcome = await engine.up(project, backend, UpOptions(services=tuple(args.services)), sink,
                                      parallel=ctx.parallel)
            print_warnings(outcome.plan)
        await engine.watch(project, backend, options, watch_report(quiet=args.quiet), sink, parallel=ctx.parallel)

    try:
        ctx.run(work)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0
