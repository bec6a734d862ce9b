"""A project's container events (``composer events``): one JSON line each, appended to
``<run root>/<project>/events.jsonl`` by whichever process made the change, and followed by
readers of the file.

Docker keeps its events in the daemon; here there is no daemon, and the changes come from more
than one process: the CLI creates, removes, renames, pauses and unpauses a container; the project's
supervisor starts, signals, stops and restarts it, sees it die (and whether the kernel's OOM killer
did it), and runs its healthchecks. Each appends its own lines, with Docker's actions and
attributes (``image``, ``name``, the container's labels; ``exitCode`` on ``die`` and ``exec_die``,
``signal`` on ``kill``, ``oldName`` on ``rename``, ``execID`` on the healthcheck's ``exec_*``).

A line is written with one ``write`` on an ``O_APPEND`` descriptor under an exclusive ``flock``,
so lines from several processes never interleave. The file is bounded: once it holds
``MAX_BYTES``, the writer renames it to ``events.jsonl.1`` (replacing the previous one) and starts
a new one, as the ``local`` log driver rotates. The file goes with the project's folder (its last
container removed): an ``events`` that follows it reads what its open descriptor still holds, then
waits for the next file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

FILE = "events.jsonl"
ROTATED = FILE + ".1"
MAX_BYTES = 1 << 20


def attributes(config: Mapping[str, Any], **extra: str) -> dict[str, str]:
    """Docker's attributes of a container event: its labels, ``image`` (as the service named it),
    ``name``, and the event's own (``exitCode``, ``signal``...)."""
    found = {str(key): str(value) for key, value in (config.get("labels") or {}).items()}
    found["image"] = str(config.get("image_ref") or config.get("image") or "")
    found["name"] = str(config.get("name") or "")
    found.update(extra)
    return found


def record(folder: Path, action: str, config: Mapping[str, Any], **extra: str) -> None:
    """Append one event about the container ``config`` to the project's file in ``folder``.
    Best effort: a project whose folder is gone, or a full disk, loses the event, never the
    operation that made it."""
    line = json.dumps({"time": time.time_ns(), "type": "container", "action": action,
                       "id": str(config.get("id") or ""), "attributes": attributes(config, **extra)},
                      separators=(",", ":")) + "\n"
    with contextlib.suppress(OSError):
        _append(folder / FILE, line.encode())


def exec_command(command: list[str] | tuple[str, ...]) -> str:
    """How moby's exec_create/exec_start actions name an exec's command: the entrypoint, a space,
    the arguments joined by spaces (``true `` for a lone ``true``)."""
    return f"{command[0]} {' '.join(command[1:])}" if command else " "


def new_exec_id() -> str:
    """An exec's ID, shaped as Docker's (64 hex digits)."""
    return secrets.token_hex(32)


def _append(path: Path, data: bytes) -> None:
    for _attempt in range(3):
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            status = os.fstat(fd)
            try:
                current = os.stat(path)
            except FileNotFoundError:
                continue  # rotated (or removed) while we waited for the lock: open the new one
            if (current.st_dev, current.st_ino) != (status.st_dev, status.st_ino):
                continue
            if status.st_size >= MAX_BYTES:
                os.replace(path, path.with_name(ROTATED))
                continue  # the next writer (us, at once) makes the new file
            if status.st_size and os.pread(fd, 1, status.st_size - 1) != b"\n":
                data = b"\n" + data  # a writer killed mid-line: its half stays a line of its own
            os.write(fd, data)
            return
        finally:
            os.close(fd)  # the lock goes with it


class Follower:
    """Reads the events appended to a project's file from now on: ``poll`` returns those written
    since its last call (never blocks). It follows the file through rotation and through the
    project's folder going and coming back (``down`` then ``up``)."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / FILE
        self._file: int | None = None
        self._identity: tuple[int, int] | None = None
        self._partial = b""
        self._open(at_end=True)

    def _open(self, *, at_end: bool) -> bool:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            return False
        self.close()
        status = os.fstat(fd)
        self._file, self._identity, self._partial = fd, (status.st_dev, status.st_ino), b""
        if at_end:
            os.lseek(fd, 0, os.SEEK_END)
        return True

    def _replaced(self) -> bool:
        """Whether the path now names another file than ours (rotated, or removed and made again)."""
        try:
            current = os.stat(self.path)
        except OSError:
            return False  # nothing newer yet
        return (current.st_dev, current.st_ino) != self._identity

    def _read(self) -> list[dict[str, Any]]:
        if self._file is None:
            return []
        chunks = []
        while chunk := os.read(self._file, 1 << 16):
            chunks.append(chunk)
        data = self._partial + b"".join(chunks)
        *lines, self._partial = data.split(b"\n")
        events = []
        for line in lines:
            with contextlib.suppress(ValueError):
                event = json.loads(line)
                if isinstance(event, dict):
                    events.append(event)
        return events

    def poll(self) -> list[dict[str, Any]]:
        """The events written since the last call, oldest first."""
        events = self._read()
        if self._file is None or self._replaced():
            # ours is drained (just read to its end); a new file holds only what came after it
            events += self._read() if self._file is not None else []
            if self._open(at_end=False):
                events += self._read()
        return events

    def close(self) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None


__all__ = ["FILE", "MAX_BYTES", "ROTATED", "Follower", "attributes", "new_exec_id", "record"]
