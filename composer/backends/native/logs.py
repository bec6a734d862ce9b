"""Native containers' logs: Docker's json-file lines, read from each container's log files
(rotated ones first, ``runtime/logfiles.py``; ``tail`` last lines first) and followed while the
container may still write. A container with the ``none`` driver keeps no log: one ``warning``
line says so, as dockerd answers v2 for it."""

from __future__ import annotations

import json
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


def still_logging(containers: NativeContainers, target: LogTarget) -> bool:
    try:
        return containers.state(target.project, target.name).status in ("running", "paused", "restarting")
    except NotFoundError:
        return False
