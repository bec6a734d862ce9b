"""The runtime's helper launcher (bootstrap.py) and the forkserver it starts, without root: a helper
forked with an empty configuration answers its error on the sync pipe, as a fresh one would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.native.runtime import bootstrap, spawn


def test_helper_command_is_a_short_line_naming_the_module() -> None:
    line = bootstrap.command("nsexec", "7")
    assert line == [sys.executable, "-S", "-I", os.path.join(bootstrap.FOLDER, "bootstrap.py"), "nsexec", "7"]
    assert bootstrap.command("supervisor", "{}", "9", site=True)[1:3] == ["-P", line[3]]


def test_a_helper_imports_no_package_init() -> None:
    # the launcher's bare packages: composer's __init__ (its lazy exports) is never run in a helper
    probe = ("import sys; from composer.backends.native.runtime import bootstrap; bootstrap._bare_packages(); "
             "import composer.backends.native.runtime.linux; print(hasattr(sys.modules['composer'], '_LAZY'))")
    tree = str(Path(bootstrap.FOLDER).parents[3])  # the folder holding composer/
    done = subprocess.run([sys.executable, "-S", "-I", "-c", f"import sys; sys.path.insert(0, {tree!r}); " + probe],
                          capture_output=True, text=True, check=True, env={})
    assert done.stdout.strip() == "False"


@pytest.fixture
def forkserver() -> Iterator[spawn.Forkserver]:
    server = spawn.Forkserver()
    server.start()
    try:
        yield server
    finally:
        server.close()


def forked_answer(server: spawn.Forkserver, *, spare: bool) -> tuple[int | None, dict[str, object]]:
    config_r, config_w = os.pipe()
    sync_r, sync_w = os.pipe()
    stderr = os.open(os.devnull, os.O_WRONLY)
    os.close(config_w)  # an empty configuration: the helper answers an error and exits
    try:
        pid = server.fork(config_r, sync_w, -1, stderr, spare=spare)
    finally:
        for fd in (config_r, sync_w, stderr):
            os.close(fd)
    with os.fdopen(sync_r, "rb") as sync:
        return pid, json.loads(sync.readline())


def test_forkserver_forks_a_helper_per_request(forkserver: spawn.Forkserver) -> None:
    for spare in (False, True):  # without a spare parent, a "spare" start is forked like any other
        pid, answer = forked_answer(forkserver, spare=spare)
        assert pid is not None
        assert pid > 0
        assert answer["ok"] is False
        assert "bad configuration" in str(answer["error"])
    assert forkserver.process is not None  # serving, so past its exec: its command line is its own
    cmdline = Path(f"/proc/{forkserver.process.pid}/cmdline").read_bytes().split(b"\0")
    launcher = os.fsencode(os.path.join(bootstrap.FOLDER, "bootstrap.py"))
    assert cmdline[3:5] == [launcher, b"forkserver"]  # a short line: no program text


def test_forkserver_exits_when_its_socket_closes(forkserver: spawn.Forkserver) -> None:
    process = forkserver.process
    assert process is not None
    forkserver.close()
    assert process.poll() == 0
