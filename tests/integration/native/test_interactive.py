"""Interactive containers on the native backend, through a real pseudo-terminal and the real CLI:
``run`` with a terminal (prompt, typed commands, exit status, window size, ctrl-p ctrl-q),
``attach``, ``run -T`` with piped stdin, ``tty: true`` / ``stdin_open: true`` services, and
what the container's terminal lets it reach (its own devpts instance only).

Docker behaves the same way on each point (tests/integration/docker/test_interactive.py runs the
same terminal checks against dockerd): ``docker run -it`` prints the shell's prompt, returns the
shell's exit status, follows the window (SIGWINCH), detaches on ctrl-p ctrl-q leaving the
container running, and the container's /dev/pts holds only its own terminal (``0``) and ``ptmx``.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.integration.native.test_lifecycle import Project, env, eventually, nothing_left, project
from tests.integration.terminal import Terminal
from tests.integration.timeouts import scaled

__all__ = ["env", "project"]  # the fixtures, shared with test_lifecycle (same store, same residue check)

SHELL = """
    shell:
      image: IMAGE
      command: sh
      tty: true
      stdin_open: true
"""
PROMPT = r"/ # "


@pytest.fixture
def terminals() -> Iterator[list[Terminal]]:
    opened: list[Terminal] = []
    try:
        yield opened
    finally:
        for terminal in opened:
            terminal.close()


def open_terminal(project: Project, terminals: list[Terminal], *args: str, rows: int = 24,
                  columns: int = 80) -> Terminal:
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, *args]
    terminal = Terminal(command, env=project.env.environ, cwd=project.folder, rows=rows, columns=columns)
    terminals.append(terminal)
    return terminal


def test_run_with_a_terminal_prompt_commands_window_size_and_exit_status(
        project: Project, terminals: list[Terminal]) -> None:
    project.write(SHELL)
    terminal = open_terminal(project, terminals, "run", "--rm", "shell", rows=24, columns=80)
    terminal.expect(PROMPT)
    terminal.send("echo $((6 * 7))\r")
    terminal.expect(r"\r\n42\r\n")
    terminal.send("stty size; tty\r")  # the first size is the caller's
    terminal.expect(r"24 80\r\n/dev/pts/0\r\n")
    terminal.resize(33, 101)  # SIGWINCH: the CLI passes the new size on
    terminal.expect(PROMPT)
    terminal.send("stty size\r")
    terminal.expect(r"33 101\r\n")
    terminal.send("exit 3\r")
    assert terminal.wait() == 3
    assert project.run("ps", "-a", "-q").stdout.strip() == ""  # --rm


def test_the_terminal_is_the_containers_own(project: Project, terminals: list[Terminal]) -> None:
    """The pair comes from the container's own devpts instance (newinstance): the host's
    terminals are not there, the peer is the controlling terminal and /dev/console, owned by the
    container's user (as runc does; Docker shows the same /dev/pts: ``0`` and ``ptmx``)."""
    project.write(SHELL)
    terminal = open_terminal(project, terminals, "run", "--rm", "-u", "1000:1000", "shell")
    terminal.expect(r"\$ ")
    terminal.send("ls /dev/pts; stat -c '%u %t:%T' /dev/pts/0 /dev/console; cat /proc/self/stat | cut -d' ' -f7\r")
    shown = terminal.expect(r"(?s)0\s+ptmx\r\n1000 88:0\r\n\d+ 88:0\r\n(\d+)\r\n")
    assert int(shown.group(1)) == (136 << 8), shown.group(0)  # tty_nr: pts/0, its controlling terminal
    terminal.send("exit\r")
    assert terminal.wait() == 0


def test_ctrl_p_ctrl_q_detaches_and_the_container_keeps_running(project: Project, terminals: list[Terminal]) -> None:
    project.write(SHELL)
    terminal = open_terminal(project, terminals, "run", "shell")
    terminal.expect(PROMPT)
    terminal.send("echo before > /tmp/mark\r")
    terminal.expect(PROMPT)
    terminal.send(b"\x10")  # ctrl-p alone is held back, then passed on with what follows
    terminal.send(b"\x11")
    assert terminal.wait() == 0
    listed = project.run("ps", "--format", "json").stdout
    assert "running" in listed, listed
    name = project.run("ps", "-q").stdout.strip()
    assert name, project.ps()


def test_attach_to_a_tty_service_detach_then_attach_again_and_exit(
        project: Project, terminals: list[Terminal]) -> None:
    project.write(SHELL)
    project.run("up", "-d")
    first = open_terminal(project, terminals, "attach", "shell", rows=40, columns=120)
    first.send("\r")
    first.expect(PROMPT)
    first.send("stty size\r")  # attach sends the caller's size
    first.expect(r"40 120\r\n")
    first.send(b"\x10\x11")
    assert first.wait() == 0
    assert "Up" in project.ps()
    second = open_terminal(project, terminals, "attach", "--detach-keys", "ctrl-x,x", "shell")
    second.send("\r")
    second.expect(PROMPT)
    second.send("echo $((2 + 3))\r")
    second.expect(r"\r\n5\r\n")
    second.send("exit 5\r")
    assert second.wait() == 5
    assert "Exited (5)" in eventually(lambda: (out := project.ps()) and "Exited" in out and out)
    project.run("down", "-t", "1")
    nothing_left(project)


def test_exec_with_a_terminal_gets_one_of_the_containers_devpts(project: Project, terminals: list[Terminal]) -> None:
    """``exec -it``'s terminal is a second pair of the container's own devpts instance (runc's
    exec makes it there too; Docker shows ``/dev/pts/1`` and ``0 1 ptmx`` likewise), and its
    size follows the caller's window."""
    project.write(SHELL)
    project.run("up", "-d")
    terminal = open_terminal(project, terminals, "exec", "shell", "sh", rows=30, columns=90)
    terminal.expect(PROMPT)
    terminal.send("tty; ls /dev/pts | tr '\\n' ' '; echo; stty size\r")
    terminal.expect(r"/dev/pts/1\r\n0 1 ptmx \r\n30 90\r\n")
    terminal.resize(31, 91)
    terminal.expect(PROMPT)
    terminal.send("stty size\r")
    terminal.expect(r"31 91\r\n")
    terminal.send("exit 2\r")
    assert terminal.wait() == 2
    assert "Up" in project.ps()


def test_attach_without_a_terminal_proxies_signals_to_the_container(project: Project) -> None:
    """``attach`` (``--sig-proxy`` by default) sends the signals it receives to a container without
    a terminal, as ``docker attach`` does; the container's exit code is attach's."""
    project.write("""
        worker:
          image: IMAGE
          command: ["sh", "-c", "trap 'echo got TERM; exit 7' TERM; while true; do echo tick; sleep 0.1; done"]
    """)
    project.run("up", "-d")
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "attach", "worker"]
    attach = subprocess.Popen(command, cwd=project.folder, env=project.env.environ, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert attach.stdout is not None
        assert attach.stdout.readline() == "tick\n"  # attached: new output arrives
        attach.send_signal(signal.SIGTERM)
        out, err = attach.communicate(timeout=scaled(30))
    finally:
        if attach.poll() is None:
            attach.kill()
            attach.wait()
    assert attach.returncode == 7, err
    assert "got TERM" in out
    assert "Exited (7)" in project.ps()


def test_run_without_a_terminal_takes_piped_stdin(project: Project) -> None:
    project.write(SHELL)
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name,
               "run", "--rm", "-T", "shell", "sh", "-c", "cat; echo err >&2; exit 4"]
    result = subprocess.run(command, input="hi\nthere\n", cwd=project.folder, env=project.env.environ,
                            capture_output=True, text=True, timeout=scaled(60))
    assert result.returncode == 4, result.stderr
    assert result.stdout == "hi\nthere\n"
    assert result.stderr.endswith("err\n")
    echo = subprocess.run(f"echo hi | {' '.join(command[:-4])} shell cat", shell=True, cwd=project.folder,
                          env=project.env.environ, capture_output=True, text=True, timeout=scaled(60))
    assert (echo.returncode, echo.stdout) == (0, "hi\n"), echo.stderr


def test_a_tty_service_keeps_its_terminal_output_in_the_log(project: Project) -> None:
    """Without ``stdin_open``, what is typed at an attached client does not reach it (Docker's
    OpenStdin false): ``read`` times out."""
    project.write("""
        talk:
          image: IMAGE
          command: sh -c 'tty; echo line; read -t 3 x && echo got $$x || echo none; sleep 30'
          tty: true
    """)
    project.run("up", "-d")
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "attach", "talk"]
    attach = subprocess.Popen(command, cwd=project.folder, env=project.env.environ, stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert attach.stdin is not None
        attach.stdin.write(b"typed\n")
        attach.stdin.flush()
        logs = eventually(lambda: (out := project.run("logs", "talk").stdout) and ("none" in out or "got" in out)
                          and out)
    finally:
        attach.kill()
        attach.communicate()  # closes our end of its stdin
    assert "/dev/pts/0" in logs
    assert "line" in logs
    assert "none" in logs, logs
    assert "got" not in logs, logs
    project.run("down", "-t", "1")
