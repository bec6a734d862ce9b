"""A real pseudo-terminal for tests of interactive commands (``run -it``, ``attach``).

The command runs in a session of its own whose controlling terminal is the pair's peer
(``setsid -w -c``), as in a terminal emulator: the terminal's line discipline, its foreground
process group and SIGWINCH on a resize (TIOCSWINSZ on the master) are the kernel's, not a
simulation. A reader thread collects the output; ``expect`` waits for a pattern in what came
after the previous match.
"""

from __future__ import annotations

import fcntl
import os
import re
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class Terminal:
    def __init__(self, command: Sequence[str], *, env: Mapping[str, str], cwd: Path, rows: int = 24,
                 columns: int = 80) -> None:
        self.master, peer = os.openpty()
        self.resize(rows, columns)
        try:
            self.process = subprocess.Popen(["setsid", "-w", "-c", *command], stdin=peer, stdout=peer, stderr=peer,
                                            env=dict(env), cwd=cwd, close_fds=True)
        finally:
            os.close(peer)
        self.output = b""
        self.position = 0
        self.lock = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: every holder of the peer has gone
                data = b""
            with self.lock:
                if not data:
                    self.lock.notify_all()
                    return
                self.output += data
                self.lock.notify_all()

    def resize(self, rows: int, columns: int) -> None:
        """What a terminal emulator does when its window changes: the kernel signals SIGWINCH."""
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))

    def send(self, data: bytes | str) -> None:
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def expect(self, pattern: bytes | str, timeout: float = 30.0) -> re.Match[bytes]:
        """The first match of ``pattern`` after the previous match (AssertionError with the output
        when none comes in time)."""
        regex = re.compile(pattern.encode() if isinstance(pattern, str) else pattern)
        deadline = time.monotonic() + timeout
        with self.lock:
            while True:
                found = regex.search(self.output, self.position)
                if found:
                    self.position = found.end()
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (not self.reader.is_alive() and not found):
                    raise AssertionError(f"{pattern!r} did not appear; the terminal shows: "
                                         f"{self.output[self.position:]!r}")
                self.lock.wait(min(remaining, 0.5))

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout)

    def close(self) -> None:
        """End the command if it still runs (the test failed), and the terminal."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.reader.join(5)
        os.close(self.master)
