"""Lock files that can be removed safely, whose owner can be told, and that make a waiter give
up with a clear "busy" after a bounded wait.

A lock is an ``flock(2)`` on a file. The kernel drops it when its holder dies (kill -9 included),
so a lock is never left held by a dead process; what can be left is the *file*. Removing that
file is the one delicate part: a waiter blocked in flock on the old inode would take a lock that
nobody else sees any more, while a newcomer locks a fresh file at the same path, and both would
believe they hold "the lock". So ``acquire`` checks, once it holds the flock, that its fd is
still the file at the path (same device and inode) and starts over when it is not; and only the
holder removes the file (``release(unlink=True)``), before letting the flock go. Whoever then gets
the old inode sees it is gone and locks the new file.

The holder writes its owner (composer.owner: boot id, pid, start time) into the file, for
messages ("busy: held by pid N") and for telling a stale file from a live one (``stale``): a file
that no process holds and whose recorded owner is gone. ``release`` empties the file, so an owner
found in it by the next holder (``take``) is one that died holding the lock (kill -9): what it had
begun elsewhere (a request to a project's supervisor) may still be under way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from composer.owner import Owner

DEFAULT_TIMEOUT = 120.0  # seconds a command waits for a project another command is changing
POLL_START, POLL_MAX = 0.005, 0.1


class LockBusyError(Exception):
    """The lock stayed held for the whole wait (one line: who holds it)."""


def timeout_from_environment() -> float:
    """COMPOSER_LOCK_TIMEOUT (seconds), else DEFAULT_TIMEOUT; a bad value counts as the default."""
    try:
        return max(0.0, float(os.environ.get("COMPOSER_LOCK_TIMEOUT") or DEFAULT_TIMEOUT))
    except ValueError:
        return DEFAULT_TIMEOUT


def holder(path: Path) -> Owner | None:
    """The owner recorded in the lock file (the last holder, or the present one)."""
    try:
        return Owner.parse(path.read_text(errors="replace"))
    except OSError:
        return None


def _same_file(fd: int, path: Path) -> bool:
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (mine.st_dev, mine.st_ino) == (here.st_dev, here.st_ino)


def acquire(path: Path, *, timeout: float | None = None, what: str = "") -> int:
    """Hold the lock at ``path`` (created 0600 when missing); its locked fd. ``timeout``: seconds
    to wait (None: for ever).

    :raises LockBusyError: still held by another after ``timeout`` seconds; ``what`` names the
        locked thing in the message ("project web").
    """
    return take(path, timeout=timeout, what=what)[0]


def take(path: Path, *, timeout: float | None = None, what: str = "") -> tuple[int, Owner | None]:
    """``acquire``, and the owner the file still recorded: a holder that died holding the lock
    (None after a ``release``, which empties the file).

    :raises LockBusyError: as ``acquire``.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    delay = POLL_START
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            if deadline is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except OSError as exc:
                        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                            raise
                    if time.monotonic() >= deadline:
                        owner = holder(path)
                        by = f" by pid {owner.pid}" if owner is not None else ""
                        raise LockBusyError(f"{what or path} is busy: another composer command{by} is changing it; "
                                            f"gave up after {timeout:g}s (COMPOSER_LOCK_TIMEOUT)")
                    time.sleep(delay)
                    delay = min(delay * 2, POLL_MAX)
            if _same_file(fd, path):
                abandoned = Owner.parse(os.pread(fd, 512, 0).decode(errors="replace"))
                os.ftruncate(fd, 0)
                os.pwrite(fd, Owner.current().label().encode(), 0)
                return fd, abandoned
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # the file was removed (or replaced) while we waited: lock the one there now


def release(fd: int, path: Path | None = None, *, unlink: bool = False) -> None:
    """Let the lock go; with ``unlink``, remove its file first (only the holder may: see above).
    The file is emptied first: the next holder finds no owner in it (see ``take``)."""
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
    if unlink and path is not None and _same_file(fd, path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    os.close(fd)


@contextlib.contextmanager
def held(path: Path, *, timeout: float | None = None, what: str = "") -> Iterator[int]:
    """``acquire`` ... ``release`` (the file stays)."""
    fd = acquire(path, timeout=timeout, what=what)
    try:
        yield fd
    finally:
        release(fd)


def stale(path: Path) -> bool:
    """Whether the lock file at ``path`` is left over: nobody holds it and its recorded owner is
    gone (or it records none). A file that cannot be opened is not called stale."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return False  # held now
        owner = holder(path)
        return owner is None or owner.is_gone()
    finally:
        os.close(fd)
