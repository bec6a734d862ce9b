"""``composer watch`` on a real stack, the same checks on every backend: a ``watch`` process in the
background, files edited in the project folder, what the containers then hold.

The time from each write to the end of the batch that applied it is printed (the 300 ms goal),
never asserted: the watch runs with COMPOSER_DEBUG=1, and the moment its ``batch complete`` line
arrives is taken as the moment the change was applied.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tests.integration.timeouts import scaled

WATCHED = """\
services:
  web:
    image: {image}
    command: ["sh", "-c", "echo started >> /starts; exec sleep 600"]
    init: true
    develop:
      watch:
        - path: ./app
          action: sync
          target: /srv
          initial_sync: true
          ignore: ["*.tmp", "skipped/"]
        - path: ./restart.txt
          action: restart
        - path: ./hook
          action: sync+exec
          target: /hook
          exec:
            command: ["sh", "-c", "cat /hook/h.txt > /hook-ran"]
"""

Reader = Callable[[str], str]
"""Runs a shell script in the web container; its stdout."""


class WatchProcess:
    """``composer ... watch`` in the background; its stdout lines as they come."""

    def __init__(self, command: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        env = {**(os.environ if env is None else env), "COMPOSER_DEBUG": "1"}
        self.process = subprocess.Popen(list(command), cwd=cwd, env=env, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.errors: list[str] = []
        self.batches: list[float] = []  # when each ``batch complete`` line arrived (time.monotonic)
        self._readers = [threading.Thread(target=self._read, args=(self.process.stdout, self.lines), daemon=True),
                         threading.Thread(target=self._read, args=(self.process.stderr, self.errors), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            if "batch complete:" in line:
                self.batches.append(time.monotonic())
            into.append(line.rstrip("\n"))

    def edit(self, change: Callable[[], object], what: str) -> None:
        """Make ``change``; print how long until the next batch was applied."""
        started = time.monotonic()
        change()
        deadline = started + 60
        while not any(moment > started for moment in self.batches):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: no batch applied: {self.lines} {self.errors}")
            time.sleep(0.005)
        applied = min(moment for moment in self.batches if moment > started)
        sys.stdout.write(f"\nwatch: {what} applied {(applied - started) * 1000:.0f} ms after the write")

    def wait_for(self, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} from watch (exit {self.process.poll()}): {self.lines} {self.errors}")
            time.sleep(0.05)

    def interrupt(self) -> int:
        """Ctrl-C; the exit code."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
        try:
            code = self.process.wait(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.wait()
        for reader in self._readers:
            reader.join(timeout=5)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()
        return code


def until(read: Reader, script: str, expected: str, what: str, timeout: float = 15) -> None:
    """Wait until ``script`` prints ``expected`` in the container."""
    started = time.monotonic()
    while read(script) != expected:
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: {script!r} never printed {expected!r} (last: {read(script)!r})")
        time.sleep(0.02)


def write_project(folder: Path, image: str) -> None:
    (folder / "compose.yaml").write_text(WATCHED.format(image=image))
    (folder / "app" / "skipped").mkdir(parents=True)
    (folder / "app" / "first.txt").write_text("initial\n")
    (folder / "app" / "skipped" / "no.txt").write_text("never\n")
    (folder / "hook").mkdir()
    (folder / "restart.txt").write_text("0\n")


def _new_folder(app: Path) -> None:
    (app / "deep" / "er").mkdir(parents=True)
    (app / "deep" / "er" / "f.txt").write_text("deep\n")


def _no_folder(app: Path) -> None:
    (app / "deep" / "er" / "f.txt").unlink()
    (app / "deep" / "er").rmdir()
    (app / "deep").rmdir()


def check_sync(folder: Path, read: Reader, watch: WatchProcess) -> None:
    """initial_sync, a new file, an ignored file and folder, a change, a new folder, deletions."""
    app = folder / "app"
    assert read("cat /srv/first.txt; ls /srv") == "initial\nfirst.txt\n"  # initial sync, skipped/ ignored
    watch.edit(lambda: (app / "new.txt").write_text("one\n"), "a new file")
    until(read, "cat /srv/new.txt 2>/dev/null", "one\n", "a new file")
    (app / "ignored.tmp").write_text("x\n")
    (app / "skipped" / "late.txt").write_text("x\n")
    watch.edit(lambda: (app / "marker.txt").write_text("m\n"), "a file after ignored ones")
    until(read, "cat /srv/marker.txt 2>/dev/null", "m\n", "a file after ignored ones")
    assert read("ls /srv") == "first.txt\nmarker.txt\nnew.txt\n"  # the ignored ones never came
    watch.edit(lambda: (app / "new.txt").write_text("two\n"), "a change")
    until(read, "cat /srv/new.txt", "two\n", "a change")
    watch.edit(lambda: _new_folder(app), "a new folder")
    until(read, "cat /srv/deep/er/f.txt 2>/dev/null", "deep\n", "a new folder")
    watch.edit((app / "first.txt").unlink, "a deletion")
    until(read, "ls /srv", "deep\nmarker.txt\nnew.txt\n", "a deletion")
    watch.edit(lambda: _no_folder(app), "a folder's deletion")
    until(read, "ls /srv", "marker.txt\nnew.txt\n", "a folder's deletion")


def check_restart_and_exec(folder: Path, read: Reader, watch: WatchProcess) -> None:
    """A restart rule restarts the container; a sync+exec rule syncs, then runs its command."""
    assert read("cat /starts") == "started\n"
    watch.edit(lambda: (folder / "restart.txt").write_text("1\n"), "a restart")
    until(read, "cat /starts 2>/dev/null", "started\nstarted\n", "a restart", timeout=scaled(30))
    watch.wait_for('service(s) ["web"] restarted')
    watch.edit(lambda: (folder / "hook" / "h.txt").write_text("hooked\n"), "a sync+exec")
    until(read, "cat /hook-ran 2>/dev/null", "hooked\n", "a sync+exec")
    assert read("cat /hook/h.txt") == "hooked\n"
