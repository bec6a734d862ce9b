"""Progress renderers: the CLI's EventSinks (``--progress auto|tty|plain|json|quiet``).

The engine emits composer.events.Event values and never prints; these turn them into
text the way Compose v2's display modes do.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import TextIO

from composer.cli.tables import human_size
from composer.events import Event, EventSink, EventStatus

MODES = ("auto", "tty", "plain", "json", "quiet")
BAR_CELLS = 50  # docker's jsonmessage bar: one '=' per 2 %, then a '>' head
MIN_BAR_CELLS = 10  # narrower than this, the bar is left out and only the bytes are shown
PERCENT_CHARS = "⠀⡀⣀⣄⣤⣦⣶⣷⣿"  # v2's per-layer glyphs on an image's line, empty to full
REDRAW_INTERVAL = 0.1  # seconds: progress alone redraws at most ~10 times a second, as v2's ticker


def _label(resource_id: str) -> str:
    """``container:web-1`` → ``Container web-1``, as v2 names resources."""
    kind, _, name = resource_id.partition(":")
    return f"{kind.capitalize()} {name}" if name else resource_id


class PlainRenderer:
    """One line per event, except an event that only moves a count (a layer's bytes): the line
    would repeat the previous one, ten times a second while a layer downloads."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.last: dict[str, tuple[EventStatus, str, str]] = {}

    def emit(self, event: Event) -> None:
        said = (event.status, event.text, event.details)
        if event.current is not None and self.last.get(event.resource_id) == said:
            return
        self.last[event.resource_id] = said
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
        # v2's field names for a layer's bytes (current, total, percent), each only when known
        if event.current is not None:
            record["current"] = event.current
        if event.total is not None:
            record["total"] = event.total
        if event.percent is not None:
            record["percent"] = event.percent
        self.stream.write(json.dumps(record) + "\n")
        self.stream.flush()


class QuietRenderer:
    """Prints only errors."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def emit(self, event: Event) -> None:
        if event.status is EventStatus.ERROR:
            self.stream.write(f"{_label(event.resource_id)}: {event.text} {event.details}".rstrip() + "\n")


def progress_bar(current: int, total: int, width: int = BAR_CELLS + 21, units: str = "") -> str:
    """Docker's jsonmessage progress, as v2 shows a layer's: ``[=========>      ]  12.3MB/45.6MB``
    (go-units sizes; with ``units``, ``3/10 steps``), the bar narrowed to fit ``width`` cells and
    left out when it would not."""
    if units:
        numbers = f"{current}/{total} {units}"
    else:  # a count past the total: the total is not shown, as docker
        numbers = f"{human_size(current, 4):>8}/{human_size(total, 4)}" if current <= total \
            else f"{human_size(current, 4):>8}"
    cells = min(BAR_CELLS, width - len(numbers) - 4)  # "[", the '>' head, "] "
    if cells < MIN_BAR_CELLS:
        return numbers.strip()
    filled = min(cells, max(0, current) * 100 // max(total, 1) * cells // 100)
    return f"[{'=' * filled}>{' ' * (cells - filled)}] {numbers}"


def _terminal_size(stream: TextIO) -> tuple[int, int]:
    """(columns, rows) of the terminal ``stream`` writes to; 80x24 when it says nothing."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return 80, 24
    return size.columns or 80, size.lines or 24


class TtyRenderer:
    """A live status line per resource, redrawn in place, children under their parent, as v2's tty
    display: a layer's line shows its bytes against its size (``[===>  ]  12.3MB/45.6MB``) while it
    downloads or extracts, and its image's line one glyph per layer and the bytes of them all.

    A change of status or text is drawn at once; an event that only moves a count is drawn at most
    every REDRAW_INTERVAL seconds (the next draw shows it), so a fast download does not flood the
    terminal. Every row is cut to the terminal's width (a wrapped row would break the redraw), and
    children are left out when the rows would not fit its height. ``size`` and ``clock`` are for tests.
    """

    def __init__(self, stream: TextIO, *, size: Callable[[], tuple[int, int]] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.size = size or (lambda: _terminal_size(stream))
        self.clock = clock
        self.lines: dict[str, Event] = {}
        self.reached: dict[str, int] = {}  # each resource's highest count and size: an image's sum
        self.sizes: dict[str, int] = {}    # only grows (dockerd's Download complete tells neither)
        self.drawn = 0
        self.last_draw: float | None = None

    def emit(self, event: Event) -> None:
        previous = self.lines.get(event.resource_id)
        self.lines[event.resource_id] = event
        if event.current is not None:
            self.reached[event.resource_id] = max(event.current, self.reached.get(event.resource_id, 0))
        if event.total:
            self.sizes[event.resource_id] = max(event.total, self.sizes.get(event.resource_id, 0))
        moved_only = previous is not None and (previous.status, previous.text, previous.details) == (
            event.status, event.text, event.details)
        now = self.clock()
        if moved_only and self.last_draw is not None and now - self.last_draw < REDRAW_INTERVAL:
            return
        self.last_draw = now
        self.redraw()

    def rows(self) -> list[str]:
        width, height = self.size()
        parents = [event for event in self.lines.values() if event.parent_id not in self.lines]
        children = {parent.resource_id: [event for event in self.lines.values()
                                         if event.parent_id == parent.resource_id] for parent in parents}
        fits = len(self.lines) <= height - 1  # v2 drops the children when they would scroll off
        rows: list[str] = []
        for parent in parents:
            rows.append(self.row(parent, children[parent.resource_id], width))
            if fits:
                rows.extend(self.row(child, [], width) for child in children[parent.resource_id])
        return rows

    def redraw(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")
        rows = self.rows()
        for row in rows:
            self.stream.write("\x1b[2K" + row + "\n")
        self.drawn = len(rows)
        self.stream.flush()

    def row(self, event: Event, children: list[Event], width: int) -> str:
        mark = {EventStatus.DONE: "✔", EventStatus.ERROR: "✘", EventStatus.WARNING: "!"}.get(event.status, "⠿")
        indent = "   " if event.parent_id else " "
        head = f"{indent}{mark} {_label(event.resource_id)}{self.summary(event, children)}  {event.text}"
        progress = ""
        if event.status is EventStatus.WORKING and event.current is not None and event.total:
            progress = " " + progress_bar(event.current, event.total, width - len(head) - 2, event.units)
        details = f" {event.details}" if event.details else ""
        return (head + progress + details)[:max(1, width - 1)]

    def summary(self, event: Event, children: list[Event]) -> str:
        """A working parent's layers, as v2 draws them: `` [⣿⣀] 15.92MB / 42.98MB`` (a glyph per
        layer by its percentage; the bytes once every working layer knows its size)."""
        if event.status is not EventStatus.WORKING or not children:
            return ""
        glyphs = []
        current = total = 0
        known = True
        for child in children:
            done = child.status is EventStatus.DONE
            size = self.sizes.get(child.resource_id, 0)
            reached = min(100, self.reached.get(child.resource_id, 0) * 100 // size) if size else 0
            percent = 100 if done else child.percent if child.percent is not None else reached
            glyphs.append(PERCENT_CHARS[(len(PERCENT_CHARS) - 1) * percent // 100])
            if child.units:  # steps, not bytes: the image's line shows no sum
                known = False
            elif size:
                total += size
                current += size if done else min(size, self.reached.get(child.resource_id, 0))
            elif not done:
                known = False
        numbers = f" {human_size(current, 4):>7} / {human_size(total, 4):<7}".rstrip() if known and total else ""
        return f" [{''.join(glyphs)}]{numbers}"


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
