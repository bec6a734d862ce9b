"""``logs``: the output of a project's containers, prefixed and coloured as v2 prints it."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from composer.errors import ComposerError, UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend


def run_logs(ctx: CommandContext) -> int:
    import time

    from composer import engine
    from composer.cli.attach import LogFormatter, colour_enabled, display_name, unreadable_warning
    from composer.cli.timestamps import parse_time
    from composer.contract.backend import ContainerRef

    args = ctx.args
    if args.index is not None and len(args.services) != 1:
        raise UsageError("--index requires one service to be selected")
    project_name = ctx.project_name()
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
            if line.stream == "warning":
                sys.stderr.write(unreadable_warning(line.container_name, line.text))
                continue
            name = names.get(line.container_name, line.container_name)
            sys.stdout.write(formatter.line(name, line.text.rstrip("\n"), line.timestamp))
            sys.stdout.flush()

    try:
        ctx.run(show)
    except KeyboardInterrupt:
        return 130
    return 0
