"""``composer events``: the project's container events, as Compose v2 prints them, until Ctrl-C.

Plain, one event then an empty line (v2 prints its event text, which ends with a newline,
with Println)::

    2026-11-27 21:00:00.000000 container start <id> (image=..., name=...)

``--json``: one object per line with ``action``, ``attributes``, ``id``, ``service``, ``time``
(RFC 3339 with nanoseconds) and ``type``, keys sorted as Go marshals a map. The renderers are
pure and unit-tested.
"""

from __future__ import annotations

import json
import signal
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend, EngineEvent

INTERRUPTED = 130


def _local(time_ns: int) -> tuple[time.struct_time, int]:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return time.localtime(seconds), nanos


def rfc3339_nano(time_ns: int) -> str:
    """Go's RFC3339Nano in local time: trailing zeros of the fraction dropped, ``Z`` for UTC."""
    moment, nanos = _local(time_ns)
    fraction = f".{nanos:09d}".rstrip("0").rstrip(".")
    offset = moment.tm_gmtoff or 0
    if offset == 0:
        zone = "Z"
    else:
        sign = "+" if offset > 0 else "-"
        hours, minutes = divmod(abs(offset) // 60, 60)
        zone = f"{sign}{hours:02d}:{minutes:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", moment) + fraction + zone


def plain_event(event: EngineEvent) -> str:
    """v2's text of one event (attributes sorted: Go's map order is random), newline included."""
    moment, nanos = _local(event.time_ns)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", moment) + f".{nanos // 1000:06d}"
    attributes = ", ".join(f"{key}={value}" for key, value in sorted(event.attributes.items()))
    return f"{stamp} container {event.action} {event.id} ({attributes})\n"


def json_event(event: EngineEvent) -> str:
    return json.dumps({"action": event.action, "attributes": dict(sorted(event.attributes.items())),
                       "id": event.id, "service": event.service, "time": rfc3339_nano(event.time_ns),
                       "type": "container"}, separators=(",", ":"))


def run_events(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project_name = ctx.project_name()
    render = json_event if args.json else plain_event
    # Ctrl-C ends the stream even when started in the background by a shell (SIGINT ignored), as v2's does.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    async def stream(backend: Backend) -> None:
        async for event in engine.events(project_name, backend, tuple(args.services)):
            print(render(event), flush=True)

    try:
        ctx.run(stream)
    except KeyboardInterrupt:
        return INTERRUPTED
    return 0
