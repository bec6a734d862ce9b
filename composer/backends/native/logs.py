"""Native containers' logs: Docker's json-file lines, read from each container's log files
(rotated ones first, ``runtime/logfiles.py``; ``tail`` last lines first) and followed while the
container may still write. A container with the ``none`` driver keeps no log: one ``warning``
line says so, as dockerd answers v2 for it. ``since``/``until`` keep the lines written in that
window (each line's own ``time``), after ``tail``, as dockerd's json-file reader does."""

from __future__ import annotations

import calendar
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from composer import labels
from composer.backends.native.runtime.logfiles import Cursor
from composer.contract.backend import ContainerRef, LogLine
from composer.errors import NotFoundError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers

# dockerd's answer for a driver that keeps nothing to read (errdefs.NotImplemented)
UNREADABLE = "configured logging driver does not support reading"


@dataclass
class LogTarget:
    """One container's log and where its reader is in it."""

    project: str
    name: str
    service: str
    path: str
    readable: bool = True
    cursor: Cursor = field(init=False)

    def __post_init__(self) -> None:
        self.cursor = Cursor(self.path)


def log_targets(containers: NativeContainers, refs: Sequence[ContainerRef]) -> list[LogTarget]:
    """The log of each container."""
    found = []
    for ref in refs:
        project, name, config = containers.locate(ref, "logs")
        service = str((config.get("labels") or {}).get(labels.SERVICE, name))
        driver = (config.get("logging") or {}).get("driver")
        found.append(LogTarget(project, name, service, str(config["log_path"]), readable=driver != "none"))
    return found


def read_lines(target: LogTarget, tail: int | None = None) -> list[LogLine]:
    """The lines written since the last read (the first read: every file's, or the last ``tail``)."""
    if not target.readable:
        first = target.cursor.inode is None
        target.cursor.inode = 0
        return [LogLine(target.name, target.service, UNREADABLE, "warning")] if first else []
    found = []
    for line in target.cursor.read(tail):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.append(LogLine(target.name, target.service, str(record.get("log", "")).removesuffix("\n"),
                             str(record.get("stream") or "stdout"), record.get("time")))
    return found


def unix_time(stamp: str | None) -> float | None:
    """The Unix time of a log line's ``time`` (RFC 3339 in UTC with nanoseconds, as the monitor
    writes it: runtime.init.rfc3339); None when it has none or another shape."""
    if not stamp:
        return None
    head, _, fraction = stamp.rstrip("Z").partition(".")
    try:
        seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None
    digits = fraction[:9] if fraction.isdigit() else ""
    return seconds + (int(digits) / 10 ** len(digits) if digits else 0.0)


def within(line: LogLine, since: float | None, until: float | None) -> bool:
    """Whether ``line`` was written in the window: at or after ``since``, at or before ``until``
    (moby's: a line Before(since) is skipped, one After(until) ends the read). A line without a
    time (the ``none`` driver's warning) is always shown."""
    moment = unix_time(line.timestamp)
    if moment is None:
        return True
    return (since is None or moment >= since) and (until is None or moment <= until)


def still_logging(containers: NativeContainers, target: LogTarget) -> bool:
    try:
        return containers.state(target.project, target.name).status in ("running", "paused", "restarting")
    except NotFoundError:
        return False
