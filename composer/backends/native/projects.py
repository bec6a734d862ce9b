"""The projects a native backend call works on: each one's lock, held from the call's first
observation to ``release`` (so that a plan and its execution see the same containers), and its
supervisor: the client, and noticing one that died."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

from composer.backends.native.errors import error
from composer.backends.native.runtime import eventlog, locks
from composer.backends.native.runtime.api import Runtime, private_project_dir, project_dir
from composer.backends.native.runtime.supervisor import LOCK, START_LOCK, Client, SupervisorError


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
        """Hold the project's lock until ``release`` (re-entrant within this backend), waiting at
        most COMPOSER_LOCK_TIMEOUT seconds for another command that holds it. Left-overs of a
        create killed midway are reclaimed once it is held; after a holder killed holding it, the
        requests it had sent to the supervisor are finished first (``Supervisor.op_settle``), so
        that what this command observes is not changed by them afterwards.

        :raises BackendError: the project stayed busy for the whole wait (one line).
        """
        with self._locks_guard:
            if project in self._locks:
                return
            for _attempt in range(100):
                folder = private_project_dir(self.run_root, project)
                try:
                    fd, abandoned = locks.take(folder / LOCK, timeout=locks.timeout_from_environment(),
                                               what=f"project {project}")
                    break
                except FileNotFoundError:
                    continue  # its folder went with the last release; made again above
                except locks.LockBusyError as exc:
                    raise error(str(exc), "lock") from None
            else:
                raise error(f"cannot lock project {project}: its folder keeps vanishing", "lock")
            self._locks[project] = fd
            if abandoned is not None:
                self.client(project).notify("settle")
            self.runtime.reclaim(project)
            if (self.run_root / "networks").is_dir():  # what a killed network create or remove left
                from composer.backends.native.network.manager import NetworkManager

                NetworkManager(self.run_root).recover()

    def release(self) -> None:
        """Let every project lock go; a project left without containers loses its directory
        (the lock file last, by its holder: see runtime.locks)."""
        with self._locks_guard:
            for project, fd in self._locks.items():
                folder = project_dir(self.run_root, project)
                client = self.client(project)
                empty = False
                if not self.runtime.containers(project):
                    answer = client.notify("exit-if-empty")
                    deadline = time.monotonic() + 3
                    while answer and answer.get("exiting") and client.pid() is not None \
                            and time.monotonic() < deadline:
                        time.sleep(0.02)
                    empty = not self.runtime.containers(project) and client.pid() is None
                if empty:
                    for name in ("supervisor.log", "supervisor.pid", "supervisor.sock", eventlog.FILE,
                                 eventlog.ROTATED):
                        with contextlib.suppress(OSError):
                            (folder / name).unlink()
                    with contextlib.suppress(OSError, locks.LockBusyError):  # left by a supervisor killed -9
                        locks.release(locks.acquire(folder / START_LOCK, timeout=0), folder / START_LOCK, unlink=True)
                locks.release(fd, folder / LOCK, unlink=empty)
                if empty:
                    with contextlib.suppress(OSError):
                        folder.rmdir()
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
