"""composer.owner: a process's identity (pid and start time) and whether it is still there."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from composer.owner import alive, process_start_time


def test_a_zombie_is_not_alive_though_its_pid_and_start_time_remain() -> None:
    """A daemon killed -9 keeps its pid and start time until its parent reaps it: it answers no
    signal, so whoever waits for it (the DNS daemon's SIGHUP) must count it gone."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        start = process_start_time(child.pid)
        assert start is not None
        assert alive(child.pid, start)
        assert not alive(child.pid, start + 1)  # another process under a reused pid
        os.kill(child.pid, signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
        assert process_start_time(child.pid) == start
        assert not alive(child.pid, start)
    finally:
        child.kill()
        child.wait()
    assert not alive(child.pid, start)
