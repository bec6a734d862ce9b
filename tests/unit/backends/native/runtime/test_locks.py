"""runtime.locks and the project lock of composer.backends.native.projects: a lock file removed by
its holder while another process waits on it must not let two holders in (issue 17); a lock held
too long gives a one-line "busy" after a bounded wait; a stale file is told by its owner."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from composer.backends.native.image.store import ImageStore
from composer.backends.native.projects import Projects
from composer.backends.native.runtime import locks
from composer.backends.native.runtime.api import Runtime
from composer.errors import BackendError
from composer.owner import Owner


def projects(tmp_path: Path) -> Projects:
    store = ImageStore(tmp_path / "store")
    return Projects(Runtime(store, run_root=tmp_path / "run"), tmp_path / "run", store.root, "composer-test",
                    warn=lambda _text: None)


def test_a_waiter_on_a_removed_lock_file_does_not_hold_it_beside_a_newcomer(tmp_path: Path) -> None:
    """The first holder releases an empty project (its lock file goes); a waiter blocked on the
    old file gets it; a newcomer locks the path meanwhile: only one of them may hold the lock."""
    first, waiter, newcomer = projects(tmp_path), projects(tmp_path), projects(tmp_path)
    holding: list[str] = []
    overlap: list[tuple[str, ...]] = []
    guard = threading.Lock()

    def hold(who: str, backend: Projects, seconds: float) -> None:
        backend.lock("web")
        with guard:
            if holding:
                overlap.append((*holding, who))
            holding.append(who)
        time.sleep(seconds)
        with guard:
            holding.remove(who)
        backend.release()

    first.lock("web")
    waiting = threading.Thread(target=hold, args=("waiter", waiter, 0.5))
    waiting.start()
    time.sleep(0.3)  # the waiter is blocked on the lock file
    first.release()  # the project has no container: its folder and lock file go
    time.sleep(0.05)
    coming = threading.Thread(target=hold, args=("newcomer", newcomer, 0.5))
    coming.start()
    waiting.join(10)
    coming.join(10)
    assert not overlap, f"two holders at once: {overlap}"
    assert not (tmp_path / "run" / "web").exists(), "the last release removes the folder"


def test_a_busy_project_is_one_line_after_a_bounded_wait(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPOSER_LOCK_TIMEOUT", "0.3")
    holder, other = projects(tmp_path), projects(tmp_path)
    holder.lock("web")
    try:
        with pytest.raises(BackendError) as caught:
            other.lock("web")
        message = str(caught.value)
        assert "project web is busy" in message
        assert "\n" not in message
        assert "COMPOSER_LOCK_TIMEOUT" in message
    finally:
        holder.release()


def test_a_stale_lock_file_is_told_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    fd = locks.acquire(path)
    assert locks.holder(path) == Owner.current()
    assert not locks.stale(path), "held"
    path.write_text(Owner(Owner.current().boot_id, 999_999_999, 1).label())
    assert not locks.stale(path), "held, whatever it records"
    locks.release(fd)
    assert locks.holder(path) is None, "a release empties the file"
    assert locks.stale(path), "nobody holds it and it records no owner"
    fd = locks.acquire(path)
    os.close(fd)  # let go without a release, as by a holder killed -9
    assert not locks.stale(path), "its owner (this process) lives"
    path.write_text(Owner(Owner.current().boot_id, 999_999_999, 1).label())
    assert locks.stale(path), "its owner is gone and nobody holds it"


def test_the_next_holder_is_told_of_one_that_died_holding_the_lock(tmp_path: Path) -> None:
    """A released lock records no owner; one let go without a release (its holder killed -9)
    still records it, and ``take`` says so: Projects.lock then lets the project's supervisor
    finish what that holder had asked of it before anything is observed."""
    path = tmp_path / "lock"
    locks.release(locks.acquire(path))
    fd, abandoned = locks.take(path)
    assert abandoned is None
    os.close(fd)
    with subprocess.Popen([sys.executable, "-c", "import os, sys\n"
                           "from pathlib import Path\n"
                           "from composer.backends.native.runtime import locks\n"
                           "locks.acquire(Path(sys.argv[1]))\n"
                           "os.kill(os.getpid(), 9)\n", str(path)]) as killed:
        assert killed.wait() == -9
    fd, abandoned = locks.take(path, timeout=5)
    assert abandoned is not None
    assert abandoned.pid == killed.pid
    assert abandoned.is_gone()
    locks.release(fd)
    fd, abandoned = locks.take(path)
    assert abandoned is None
    locks.release(fd)


def test_release_with_unlink_removes_only_the_file_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    fd = locks.acquire(path)
    path.unlink()
    replacement = locks.acquire(path)  # someone else's, at the same path
    locks.release(fd, path, unlink=True)
    assert path.exists(), "the file of another holder stays"
    locks.release(replacement, path, unlink=True)
    assert not path.exists()
