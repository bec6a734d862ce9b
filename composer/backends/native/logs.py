"""Native containers' logs: Docker's json-file lines, read from each container's log file
(``tail`` last lines first) and followed while the container may still write."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from composer import labels
from composer.contract.backend import ContainerRef, LogLine
from composer.errors import NotFoundError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers


def log_targets(containers: NativeContainers, refs: Sequence[ContainerRef]) -> list[tuple[str, str, str, str]]:
    """(project, name, service, log path) of each container."""
    found = []
    for ref in refs:
        project, name, config = containers.locate(ref, "logs")
        service = str((config.get("labels") or {}).get(labels.SERVICE, name))
        found.append((project, name, service, str(config["log_path"])))
    return found


def read_lines(target: tuple[str, str, str, str], offset: int, tail: int | None = None
               ) -> tuple[list[LogLine], int]:
    _, name, service, path = target
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    lines = data[:end].splitlines()
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    found = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        found.append(LogLine(name, service, str(record.get("log", "")).removesuffix("\n"),
                             str(record.get("stream") or "stdout"), record.get("time")))
    return found, offset + end


def still_logging(containers: NativeContainers, target: tuple[str, str, str, str]) -> bool:
    project, name, _, _ = target
    try:
        return containers.state(project, name).status in ("running", "paused", "restarting")
    except NotFoundError:
        return False
