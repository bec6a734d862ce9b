"""composer.durable: the one writer of state files (unique temporary, fsync, rename, fsync of
the folder), tried from many threads at once as the supervisor's threads write."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from composer import durable
from composer.backends.native.runtime.init import atomic_json


def test_threads_writing_one_file_at_once_never_share_a_temporary(tmp_path: Path) -> None:
    """The old writer used ``<path>.<pid>.tmp``: two threads of one process renamed each other's
    half-written file away (FileNotFoundError) or published it."""
    target = tmp_path / "supervise.json"
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def writer(index: int) -> None:
        start.wait()
        try:
            for count in range(200):
                atomic_json(str(target), {"writer": index, "count": count, "pad": "x" * 4096})
        except BaseException as exc:  # the failure under test
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    data = json.loads(target.read_text())
    assert data["count"] == 199 or isinstance(data["count"], int)
    assert data["pad"] == "x" * 4096
    assert [p.name for p in tmp_path.iterdir()] == ["supervise.json"], "a temporary was left"


def test_the_file_gets_its_mode_whatever_the_umask_and_replaces_the_old_content(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    old = os.umask(0o077)
    try:
        durable.write_file(target, b"one", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    durable.write_file(target, b"two")
    assert target.read_bytes() == b"two"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_failed_write_leaves_the_old_content_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    target.write_bytes(b"old")
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(FileNotFoundError):  # a rename across a missing folder fails after the temporary is made
        durable.write_file(tmp_path / "missing" / "state.json", b"new", tmp_dir=tmp_path / "elsewhere")
    assert target.read_bytes() == b"old"
    assert list((tmp_path / "elsewhere").iterdir()) == []


def test_temporaries_are_told_apart_from_state_files(tmp_path: Path) -> None:
    name = Path(durable.temporary_name(tmp_path / "config.json")).name
    assert durable.is_temporary(name)
    assert not durable.is_temporary("config.json")
    assert name != Path(durable.temporary_name(tmp_path / "config.json")).name


def test_only_the_temporaries_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    gone = f".state.json.{dead.stdout.strip()}.0a1b2c.tmp"
    live = Path(durable.temporary_name(tmp_path / "state.json")).name  # this process's
    for name in (gone, live, "state.json", ".lock"):
        (tmp_path / name).write_text("x")
    assert durable.remove_stale_temporaries(tmp_path) == [gone]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([live, "state.json", ".lock"])


@pytest.mark.parametrize(("writer", "fsyncs"), [("atomic_json", 2), ("state_json", 0)])
def test_the_stores_records_are_fsynced_and_the_run_roots_files_are_not(tmp_path: Path, writer: str,
                                                                        fsyncs: int) -> None:
    """A run root's files (state_json: config.json, state.json, exit.json...) skip the two fsyncs
    a store record (atomic_json) pays: a new boot discards them. Both are written whole (a temporary
    renamed over the file), as strace shows."""
    import shutil

    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    target = tmp_path / "exit.json"
    script = (f"from composer.backends.native.runtime.init import {writer}\n"
              f"{writer}({str(target)!r}, {{'exit_code': 3}})\n")
    trace = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=fsync,fdatasync,rename,renameat,renameat2",
                    sys.executable, "-c", script], check=True,
                   env={**os.environ, "PYTHONPATH": str(Path(durable.__file__).parents[1])})
    calls = trace.read_text().splitlines()
    assert len([c for c in calls if "fsync(" in c or "fdatasync(" in c]) == fsyncs, calls
    renames = [c for c in calls if "rename" in c and str(target) in c]
    assert len(renames) == 1, calls
    assert ".exit.json." in renames[0], calls  # the temporary, renamed over it
    assert json.loads(target.read_text()) == {"exit_code": 3}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["exit.json", "trace"]
