"""runtime.locks and the project lock of composer.backends.native.projects: a lock file removed by
its holder while another process waits on it must not let two holders in (issue 17); a lock held
too long gives a one-line "busy" after a bounded wait; a stale file is told by its owner."""

from __future__ import annotations

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
    locks.release(fd)
    assert not locks.stale(path), "its owner (this process) lives"
    path.write_text(Owner(Owner.current().boot_id, 999_999_999, 1).label())
    assert locks.stale(path), "its owner is gone and nobody holds it"


def test_release_with_unlink_removes_only_the_file_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    fd = locks.acquire(path)
    path.unlink()
    replacement = locks.acquire(path)  # someone else's, at the same path
    locks.release(fd, path, unlink=True)
    assert path.exists(), "the file of another holder stays"
    locks.release(replacement, path, unlink=True)
    assert not path.exists()
