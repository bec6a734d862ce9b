"""The projects a native backend call works on: each one's lock, held from the call's first
observation to ``release`` (so that a plan and its execution see the same containers), and its
supervisor: the client, and noticing one that died."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from composer.backends.native.runtime.api import Runtime, private_project_dir, project_dir
from composer.backends.native.runtime.supervisor import LOCK, Client, SupervisorError


class Projects:
    """Project locks (re-entrant within one backend) and supervisor clients."""

    def __init__(self, runtime: Runtime, run_root: Path, store_root: Path, cgroup_parent: str,
                 warn: Callable[[str], None]) -> None:
        self.runtime = runtime
        self.run_root = run_root
        self.store_root = store_root
        self.cgroup_parent = cgroup_parent
        self.warn = warn
        self._locks: dict[str, int] = {}
        self._locks_guard = threading.Lock()
        self._checked: set[str] = set()

    def client(self, project: str) -> Client:
        return Client(self.run_root, project, self.store_root, self.cgroup_parent, on_lost=self.warn)

    def lock(self, project: str) -> None:
        """Hold the project's lock until ``release`` (re-entrant within this backend)."""
        with self._locks_guard:
            if project in self._locks:
                return
            folder = private_project_dir(self.run_root, project)
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._locks[project] = fd

    def release(self) -> None:
        """Let every project lock go; a project left without containers loses its directory."""
        with self._locks_guard:
            for project, fd in self._locks.items():
                folder = project_dir(self.run_root, project)
                client = self.client(project)
                if not self.runtime.containers(project):
                    answer = client.notify("exit-if-empty")
                    deadline = time.monotonic() + 3
                    while answer and answer.get("exiting") and client.pid() is not None \
                            and time.monotonic() < deadline:
                        time.sleep(0.02)
                if not self.runtime.containers(project) and client.pid() is None:
                    for name in (LOCK, "supervisor.log", "supervisor.lock", "supervisor.pid", "supervisor.sock"):
                        with contextlib.suppress(OSError):
                            (folder / name).unlink()
                    with contextlib.suppress(OSError):
                        folder.rmdir()
                os.close(fd)
            self._locks.clear()

    def check_supervisor(self, project: str, running: Callable[[str], bool]) -> None:
        """Notice a supervisor that died (kill -9): report what still runs, and let a new one
        take over the running containers' restart policies and healthchecks."""
        if project in self._checked:
            return
        self._checked.add(project)
        client = self.client(project)
        if client.pid() is not None or not (project_dir(self.run_root, project) / "supervisor.pid").exists():
            return
        client._lost()
        if any(running(name) for name in self.runtime.containers(project)):
            with contextlib.suppress(SupervisorError):
                client.ensure()
