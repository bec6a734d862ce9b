"""``stats``: the project's containers' resource usage, as v2 (the docker CLI's ``stats``) shows
it: a table redrawn every second, or one sample with ``--no-stream``; ``--format json`` or a Go
template (composer.cli.templates)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from composer.cli.tables import human_size

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend, ContainerStats
    from composer.contract.observed import ObservedContainer

INTERRUPTED = 130
INTERVAL = 1.0  # seconds between two frames: the CPU percentage is over the last interval
FIRST_INTERVAL = 0.5  # between the first two samples, before the first frame
DEFAULT_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}"
                 "\t{{.PIDs}}")
HEADERS = {"ID": "CONTAINER ID", "Container": "CONTAINER", "Name": "NAME", "CPUPerc": "CPU %",
           "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O",
           "PIDs": "PIDS"}


def binary_size(size: float) -> str:
    """go-units' BytesSize: binary units, four significant digits (``312KiB``, ``23.54GiB``)."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB")
    index = 0
    while size >= 1024 and index < len(units) - 1:
        size /= 1024
        index += 1
    return f"{size:.4g}{units[index]}"


def cpu_percent(before: ContainerStats | None, now: ContainerStats) -> float:
    """The docker CLI's: the container's share of the host's CPU time between two samples, times
    the online CPUs (0 without an earlier sample)."""
    if before is None:
        return 0.0
    cpu = now.cpu_ns - before.cpu_ns
    system = now.system_ns - before.system_ns
    if cpu <= 0 or system <= 0:
        return 0.0
    return cpu / system * now.online_cpus * 100.0


def stats_row(container: ObservedContainer, before: ContainerStats | None, now: ContainerStats | None, *,
              no_trunc: bool) -> dict[str, Any]:
    """One container's row, with the docker CLI's field names and words (a stopped one's are zeros)."""
    row: dict[str, Any] = {"BlockIO": "0B / 0B", "CPUPerc": "0.00%", "Container": container.container_id,
                           "ID": container.container_id if no_trunc else container.container_id[:12],
                           "MemPerc": "0.00%", "MemUsage": "0B / 0B", "Name": container.name, "NetIO": "0B / 0B",
                           "PIDs": "0"}
    if now is None:
        return row
    memory_percent = now.memory_usage / now.memory_limit * 100.0 if now.memory_limit else 0.0
    row.update(
        BlockIO=f"{human_size(now.block_read)} / {human_size(now.block_write)}",
        CPUPerc=f"{cpu_percent(before, now):.2f}%",
        MemPerc=f"{memory_percent:.2f}%",
        MemUsage=f"{binary_size(now.memory_usage)} / {binary_size(now.memory_limit)}",
        NetIO=f"{human_size(now.net_rx)} / {human_size(now.net_tx)}",
        PIDs=str(now.pids))
    return row


def run_stats(ctx: CommandContext) -> int:
    import anyio

    from composer import engine
    from composer.cli.templates import parse, render
    from composer.errors import ComposerError

    args = ctx.args
    project, project_name = ctx.project_or_name()
    if args.format not in ("", "table", "json"):
        parse(args.format)  # a template composer cannot print is refused before anything else
    redraw = not args.no_stream and sys.stdout.isatty()

    async def sample(backend: Backend, container: ObservedContainer) -> ContainerStats | None:
        from composer.contract.observed import observed_ref

        if container.state not in ("running", "paused"):
            return None
        try:
            return await backend.container_stats(observed_ref(container))
        except ComposerError:
            return None  # it stopped meanwhile: zeros, as for a stopped one

    async def work(backend: Backend) -> None:
        before: dict[str, ContainerStats | None] = {}
        first = True
        while True:
            found = await engine.containers(project_name, backend, include_stopped=args.all)
            await backend.release()  # the native backend's project lock: stats must not hold it
            if args.service:
                if project is not None and args.service not in project.services:
                    raise ComposerError(f"no such service: {args.service}")
                found = [c for c in found if c.service_name == args.service]
            found.sort(key=lambda c: c.name)
            samples = {c.container_id: await sample(backend, c) for c in found}
            if first and any(samples.values()):  # one sample tells no CPU percentage: take a second
                first, before = False, samples
                await anyio.sleep(FIRST_INTERVAL)
                continue
            first = False
            rows = [stats_row(c, before.get(c.container_id), samples[c.container_id], no_trunc=args.no_trunc)
                    for c in found]
            lines = render(args.format or "table", rows, default_table=DEFAULT_TABLE, headers=HEADERS)
            if redraw:
                sys.stdout.write("\033[2J\033[H")
            sys.stdout.write("".join(line + "\n" for line in lines))
            sys.stdout.flush()
            if args.no_stream:
                return
            before = samples
            await anyio.sleep(INTERVAL)

    try:
        ctx.run(work)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0
