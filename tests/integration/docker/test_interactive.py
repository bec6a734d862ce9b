"""Interactive containers on the docker backend, through a real pseudo-terminal and the real CLI:
the same checks as tests/integration/native/test_interactive.py. ``run -it`` goes through the
engine's attach (hijacked connection, the engine's own escape proxy for ctrl-p ctrl-q); composer
adds the first size (HostConfig.ConsoleSize), the resizes (SIGWINCH) and knowing a detach from
an exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.integration.terminal import Terminal

PROMPT = r"/ # "


@pytest.fixture
def project(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    folder = tmp_path / f"it{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  shell:
    image: {busybox_image}
    command: sh
    tty: true
    stdin_open: true
""")
    yield folder
    remove_project(docker_api, folder.name)


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    try:
        yield opened
    finally:
        for terminal in opened:
            terminal.close()


def open_terminal(project: Path, terminals: list[Terminal], *args: str, rows: int = 24, columns: int = 80) -> Terminal:
    environ = {**os.environ, "COMPOSER_BACKEND": "docker", "NO_COLOR": "1"}
    terminal = Terminal([sys.executable, "-m", "composer", "--progress", "quiet", *args], env=environ, cwd=project,
                        rows=rows, columns=columns)
    terminals.append(terminal)
    return terminal


def running(api: Any, project: Path) -> list[str]:
    found = api.containers(filters={"label": f"com.docker.compose.project={project.name}"})
    return [c["Names"][0].lstrip("/") for c in found]


def test_run_with_a_terminal_prompt_commands_window_size_and_exit_status(
        project: Path, terminals: list[Terminal], docker_api: Any) -> None:
    terminal = open_terminal(project, terminals, "run", "--rm", "shell", rows=24, columns=80)
    terminal.expect(PROMPT)
    terminal.send("echo $((6 * 7))\r")
    terminal.expect(r"\r\n42\r\n")
    terminal.send("stty size\r")
    terminal.expect(r"24 80\r\n")
    terminal.resize(33, 101)
    terminal.expect(PROMPT)
    terminal.send("stty size\r")
    terminal.expect(r"33 101\r\n")
    terminal.send("exit 3\r")
    assert terminal.wait() == 3
    assert running(docker_api, project) == []


def test_ctrl_p_ctrl_q_detaches_then_attach_again(project: Path, terminals: list[Terminal], docker_api: Any) -> None:
    subprocess.run([sys.executable, "-m", "composer", "--backend", "docker", "up", "-d"], cwd=project, check=True,
                   capture_output=True, timeout=120)
    first = open_terminal(project, terminals, "attach", "shell", rows=40, columns=120)
    first.send("\r")
    first.expect(PROMPT)
    first.send("stty size\r")
    first.expect(r"40 120\r\n")
    first.send(b"\x10\x11")
    assert first.wait() == 0
    assert running(docker_api, project) == [f"{project.name}-shell-1"]
    second = open_terminal(project, terminals, "attach", "shell")
    second.send("\r")
    second.expect(PROMPT)
    second.send("exit 5\r")
    assert second.wait() == 5


def test_exec_with_a_terminal_follows_the_window(project: Path, terminals: list[Terminal]) -> None:
    subprocess.run([sys.executable, "-m", "composer", "--backend", "docker", "up", "-d"], cwd=project, check=True,
                   capture_output=True, timeout=120)
    terminal = open_terminal(project, terminals, "exec", "shell", "sh")
    terminal.expect(PROMPT)
    terminal.send("tty; ls /dev/pts | tr '\\n' ' '; echo\r")
    terminal.expect(r"/dev/pts/1\r\n0 1 ptmx \r\n")
    terminal.resize(31, 91)
    terminal.expect(PROMPT)
    terminal.send("stty size\r")
    terminal.expect(r"31 91\r\n")
    terminal.send("exit 2\r")
    assert terminal.wait() == 2


def test_attach_without_a_terminal_proxies_signals_to_the_container(project: Path, busybox_image: str) -> None:
    (project / "compose.yaml").write_text((project / "compose.yaml").read_text() + f"""
  worker:
    image: {busybox_image}
    command: ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; while true; do echo tick; sleep 0.1; done"]
""")
    environ = {**os.environ, "COMPOSER_BACKEND": "docker"}
    subprocess.run([sys.executable, "-m", "composer", "up", "-d", "worker"], cwd=project, env=environ, check=True,
                   capture_output=True, timeout=120)
    attach = subprocess.Popen([sys.executable, "-m", "composer", "attach", "worker"], cwd=project, env=environ,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert attach.stdout is not None
        assert attach.stdout.readline() == "tick\n"
        attach.send_signal(signal.SIGTERM)
        out, err = attach.communicate(timeout=30)
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    assert attach.returncode == 7, err
    assert "got TERM" in out


def test_run_without_a_terminal_takes_piped_stdin(project: Path) -> None:
    environ = {**os.environ, "COMPOSER_BACKEND": "docker"}
    result = subprocess.run(f"echo hi | {sys.executable} -m composer --progress quiet run --rm -T shell cat",
                            shell=True, cwd=project, env=environ, capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, "hi\n"), result.stderr
