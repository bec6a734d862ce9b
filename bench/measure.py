"""Run a command and measure it: wall time, CPU time (user + system) and peak RSS.

Linux carries a process's peak RSS across fork and exec (``ru_maxrss`` starts at the parent's
high-water mark), so a tool started straight from a benchmark that has docker-py loaded (~50 MiB)
would report at least that. The command is therefore started by a small ``python3 -S -I`` launcher
(~8 MiB: the floor of what is reported), which times it and reads its ``wait4`` usage.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

LAUNCHER = """
import json, os, sys, time
argv = sys.argv[1:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        os.execvp(argv[0], argv)
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
seconds = time.perf_counter() - start
print(json.dumps({"rc": os.waitstatus_to_exitcode(status), "seconds": seconds,
                  "cpu": usage.ru_utime + usage.ru_stime, "maxrss_kib": usage.ru_maxrss}), file=sys.stderr)
"""


@dataclass
class Run:
    rc: int
    seconds: float
    cpu_seconds: float
    maxrss_kib: int
    stderr: bytes


def measured(argv: list[str], cwd: Path, env: dict[str, str]) -> Run:
    """Run ``argv`` (stdout discarded) and measure it; its stderr is kept."""
    with tempfile.TemporaryFile() as stderr:
        launcher = [sys.executable, "-S", "-I", "-c", LAUNCHER, *argv]
        done = subprocess.run(launcher, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=stderr, check=False)
        stderr.seek(0)
        output = stderr.read()
    body, _, last = output.rstrip(b"\n").rpartition(b"\n")
    try:
        report = json.loads(last)
    except ValueError:
        return Run(done.returncode or 1, 0.0, 0.0, 0, output)
    return Run(int(report["rc"]), float(report["seconds"]), float(report["cpu"]), int(report["maxrss_kib"]), body)


if __name__ == "__main__":  # a quick check: python bench/measure.py CMD...
    print(measured(sys.argv[1:], Path.cwd(), dict(os.environ)))
