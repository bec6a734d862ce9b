"""Who owns a stack: the process that brought it up, identified so that it survives pid reuse.

A stack started through the library carries the ``dev.composer.owner`` label on its containers::

    boot=<boot id> pid=<pid> start=<start time in clock ticks> pidns=<pid namespace inode>

The owner is *gone* when the machine rebooted since (another boot id), or when no process has
that pid with that start time any more. A stack whose owner is gone was left behind by a run
killed with -9 (or a lost Ctrl-C) and can be removed. An owner in another pid namespace on the
same boot (a process in a container sharing our engine) cannot be checked: it counts as alive.
"""

from __future__ import annotations

import os
from typing import NamedTuple

__all__ = ["Owner", "alive", "boot_id", "process_start_time"]

_BOOT_ID = "/proc/sys/kernel/random/boot_id"


def boot_id() -> str:
    """This kernel's boot id (``/proc/sys/kernel/random/boot_id``); empty where there is none."""
    try:
        with open(_BOOT_ID, encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return ""


def process_start_time(pid: int) -> int | None:
    """When ``pid`` started, in clock ticks after boot (field 22 of ``/proc/<pid>/stat``);
    None when no such process exists."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as file:
            text = file.read()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may itself hold spaces and ")"
    fields = text[text.rfind(")") + 2 :].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def alive(pid: int, start: int | None) -> bool:
    """Whether ``pid`` is still the process started at ``start`` and not a zombie (a daemon killed
    -9 stays one until its new parent reaps it, with its pid and start time)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return False
    fields = data[data.rindex(b")") + 2:].split()
    try:
        return fields[0] not in (b"Z", b"X") and int(fields[19]) == start
    except (IndexError, ValueError):
        return False


def _pid_namespace(pid: int | str = "self") -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


class Owner(NamedTuple):
    """The process that owns a stack (the value of the ``dev.composer.owner`` label)."""

    boot_id: str
    pid: int
    start_time: int
    pid_namespace: str = ""

    @classmethod
    def current(cls) -> Owner:
        """This process."""
        pid = os.getpid()
        return cls(boot_id(), pid, process_start_time(pid) or 0, _pid_namespace())

    @classmethod
    def parse(cls, value: str) -> Owner | None:
        """The owner a label value names; None when the value is malformed."""
        fields = dict(part.partition("=")[::2] for part in value.split())
        try:
            return cls(fields["boot"], int(fields["pid"]), int(fields["start"]), fields.get("pidns", ""))
        except (KeyError, ValueError):
            return None

    def label(self) -> str:
        """The label value: ``boot=... pid=... start=... pidns=...``."""
        return f"boot={self.boot_id} pid={self.pid} start={self.start_time} pidns={self.pid_namespace}"

    def is_gone(self) -> bool:
        """Whether the owner no longer runs: another boot, or no process with that pid and start time.
        False when that cannot be told (another pid namespace of this boot)."""
        if self.boot_id != boot_id():
            return True
        if self.pid_namespace and self.pid_namespace != _pid_namespace():
            return False
        return process_start_time(self.pid) != self.start_time
