"""The native backend's part in the CLI's command server warm-up (composer.backends.select.warm_up_hooks):
what it imports inside functions, and the container forkserver the server's workers inherit."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.backends.native.runtime.spawn import Forkserver

MODULES = ("zstandard", "ctypes.util", "pwd")


class _Helper:
    """The forkserver, and its lock file removed once it is closed."""

    def __init__(self, forkserver: Forkserver, lock_path: str) -> None:
        self.forkserver = forkserver
        self.lock_path = lock_path

    def close(self) -> None:
        self.forkserver.close()
        with contextlib.suppress(OSError):  # workers still running keep their descriptor
            os.unlink(self.lock_path)


def start_helpers(socket_path: str) -> _Helper | None:
    """As root on Linux, a forkserver for the container helpers the workers start themselves
    (``run``'s one-offs; a supervisor has its own): a start then costs a fork instead of an
    interpreter (~15 ms). Started before the server forks any worker, which inherit it
    (``spawn.inherited``). None elsewhere, or when it cannot start. Its spare monitors go under
    the server's COMPOSER_CGROUP_PARENT (the first once a start there asks for one: forkserver.py,
    so that a server that runs no container creates no cgroup)."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    try:
        from composer.backends.native.runtime import spawn
        from composer.backends.native.runtime.api import default_cgroup_parent

        forkserver = spawn.Forkserver(lock_path=socket_path + ".forks", spare_parent=default_cgroup_parent())
        forkserver.start()
    except Exception:
        return None
    spawn.inherited = forkserver
    return _Helper(forkserver, socket_path + ".forks")
