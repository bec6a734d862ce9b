"""Progress renderers: the CLI's EventSinks (``--progress auto|tty|plain|json|quiet``).

The engine emits composer.events.Event values and never prints; these turn them into
text the way Compose v2's display modes do.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TextIO

from composer.events import Event, EventSink, EventStatus

MODES = ("auto", "tty", "plain", "json", "quiet")


def _label(resource_id: str) -> str:
    """``container:web-1`` → ``Container web-1``, as v2 names resources."""
    kind, _, name = resource_id.partition(":")
    return f"{kind.capitalize()} {name}" if name else resource_id


class PlainRenderer:
    """One line per event."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        details = f" {event.details}" if event.details else ""
        self.stream.write(f" {_label(event.resource_id)}  {event.text}{details}\n")
        self.stream.flush()


class JsonRenderer:
    """One JSON object per event."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        record: dict[str, object] = {"id": event.resource_id, "status": event.status.value, "text": event.text}
        if event.details:
            record["details"] = event.details
        if event.parent_id:
            record["parent_id"] = event.parent_id
        if event.total is not None:
            record["current"] = event.current
            record["total"] = event.total
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class QuietRenderer:
    """Prints only errors."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        if event.status is EventStatus.ERROR:
            self.stream.write(f"{_label(event.resource_id)}: {event.text} {event.details}".rstrip() + "\n")


class TtyRenderer:
    """A live status line per resource, redrawn in place (child events under their parent)."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: dict[str, Event] = {}
        self.drawn = 0

    def emit(self, event: Event) -> None:
        self.lines[event.resource_id] = event
        self.redraw()

    def redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")
        rows = [self.row(event) for event in self.lines.values()]
        for row in rows:
            self.stream.write("\x1b[2K" + row + "\n")
        self.drawn = len(rows)
        self.stream.flush()

    @staticmethod
    def row(event: Event) -> str:
        mark = {EventStatus.DONE: "✔", EventStatus.ERROR: "✘", EventStatus.WARNING: "!"}.get(event.status, "⠿")
        indent = "   " if event.parent_id else " "
        progress = ""
        if event.total:
            done = int(20 * (event.current or 0) / event.total)
            progress = f" [{'=' * done}{' ' * (20 - done)}]"
        details = f" {event.details}" if event.details else ""
        return f"{indent}{mark} {_label(event.resource_id)}  {event.text}{progress}{details}"


class QuietPull:
    """``up --quiet-pull``: the pulls' progress (Pulling, layers, Pulled) left out, errors kept."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def emit(self, event: Event) -> None:
        pulling = event.resource_id.startswith("image:") and event.text in ("Pulling", "Pulled")
        layer = event.resource_id.startswith("layer:") and (event.parent_id or "").startswith("image:")
        if event.status is not EventStatus.ERROR and (pulling or layer):
            return
        self.sink.emit(event)


class QuietBuild:
    """``--quiet-build``: the builds' output (their steps, under ``build:<service>``) left out, errors kept."""

    def __init__(self, sink: EventSink) -> None:
        self.sink = sink

    def emit(self, event: Event) -> None:
        if event.status is not EventStatus.ERROR and event.resource_id.startswith("build:"):
            return
        self.sink.emit(event)


def make_renderer(mode: str | None, stream: TextIO | None = None) -> EventSink:
    """The renderer for ``--progress`` (or COMPOSE_PROGRESS); auto is tty on a terminal. The stream
    is sys.stderr as it is at the call (not at import: tests and embedders replace it)."""
    stream = stream if stream is not None else sys.stderr
    chosen = mode or os.environ.get("COMPOSE_PROGRESS") or "auto"
    if chosen == "auto":
        chosen = "tty" if stream.isatty() and os.environ.get("COMPOSE_ANSI") != "never" else "plain"
    if chosen == "tty":
        return TtyRenderer(stream)
    if chosen == "json":
        return JsonRenderer(stream)
    if chosen == "quiet":
        return QuietRenderer(stream)
    return PlainRenderer(stream)
