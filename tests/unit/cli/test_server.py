"""The warm command server, through real processes: a client (``python -m composer``) hands its
command to a worker forked from the server, which must behave exactly as the command run in the
client's own process (COMPOSER_SERVER=0): output, exit code, environment, folder, stdin, signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from composer.cli import client as client_module
from composer.cli import server
from composer.cli.server import SPARE_NAME, WORKER_NAME

COMPOSE = """\
    services:
      web:
        image: "nginx:${TAG:-1.25}"
        env_file: [web.env]
    """


@pytest.fixture
def folder() -> Iterator[Path]:
    """A private server folder (short: a Unix socket's path has at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="cs-"))
    path.chmod(0o700)
    try:
        yield path
    finally:
        server.stop_servers(str(path))
        subprocess.run(["rm", "-rf", str(path)], check=False)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(COMPOSE))
    (tmp_path / "web.env").write_text("GREETING=hello\n")
    return tmp_path


def environment(folder: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "COMPOSER_SERVER_DIR": str(folder), **extra}


def eventually(check: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def server_pid(folder: Path) -> int | None:
    for lock in folder.glob("*.sock.lock"):
        text = lock.read_text().strip()
        socket_file = lock.with_name(lock.name.removesuffix(".lock"))
        if text and socket_file.exists() and Path(f"/proc/{text}").exists():
            return int(text)
    return None


def children(pid: int) -> list[int]:
    """The server's workers running a command (not its spare worker, nor its container forkserver)."""
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split() if _process_name(int(child)) == WORKER_NAME]


def _process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


PYTHON_CLIENT = [sys.executable, "-m", "composer"]


@pytest.fixture(scope="session")
def compiled_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """composer/cli/client.c, built for this installation (falling back to this interpreter)."""
    return [str(build_client_in(tmp_path_factory.mktemp("client")))]


def build_client_in(folder: Path, python: str | None = None) -> Path:
    from composer.cli.build_client import BuildError, build

    output = folder / "composer"
    try:
        build(output, python=python)
    except BuildError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true and {exc}")
        pytest.skip(str(exc))
    return output


@pytest.fixture(params=["python", "compiled"])
def client(request: pytest.FixtureRequest) -> list[str]:
    """The command line of each client: ``python -m composer``, and the compiled one."""
    if request.param == "python":
        return PYTHON_CLIENT
    return list(request.getfixturevalue("compiled_client"))


def composer(cwd: Path, env: dict[str, str], *args: str, stdin: str | None = None, client: list[str] = PYTHON_CLIENT,
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*client, *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60, check=False)


def through_server(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The client's own entry, which says whether the server took the command (CODE None: no)."""
    script = ("import sys\nfrom composer.cli.client import run_via_server\n"
              f"code = run_via_server(['composer', *{list(args)!r}])\nprint('CODE', code)\n")
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def started_server(folder: Path, cwd: Path) -> int:
    composer(cwd, environment(folder), "config", "--services")  # a cold run starts one
    eventually(lambda: server_pid(folder) is not None)
    pid = server_pid(folder)
    assert pid is not None
    return pid


def test_first_command_runs_in_process_and_starts_a_server(folder: Path, project: Path) -> None:
    cold = through_server(project, environment(folder), "config", "--services")
    assert cold.stdout.splitlines()[-1] == "CODE None"  # nothing answered: the caller runs it
    eventually(lambda: server_pid(folder) is not None)
    warm = through_server(project, environment(folder), "config", "--services")
    assert warm.stdout.splitlines() == ["web", "CODE 0"], warm


@pytest.mark.parametrize("args", [
    ("config",),  # the environment's TAG, the env file relative to the working folder
    ("config", "--services"),
    ("config", "--format", "json"),
    ("-f", "missing.yaml", "config"),  # a one-line error, exit 1
    ("no-such-command",),  # argparse: usage on stderr, exit 2
    ("--help",),
])
def test_output_and_exit_code_match_the_in_process_run(folder: Path, project: Path, args: tuple[str, ...],
                                                       client: list[str]) -> None:
    started_server(folder, project)
    env = environment(folder, TAG="9.9")
    served = composer(project, env, *args, client=client)
    local = composer(project, {**env, "COMPOSER_SERVER": "0"}, *args)
    assert (served.returncode, served.stdout, served.stderr) == (local.returncode, local.stdout, local.stderr)
    if args == ("config",):
        assert "nginx:9.9" in served.stdout
        assert "GREETING: hello" in served.stdout


def test_stdin_is_the_clients(folder: Path, project: Path, client: list[str]) -> None:
    started_server(folder, project)
    text = "services:\n  piped:\n    image: busybox\n"
    result = composer(project, environment(folder), "-f", "-", "config", "--services", stdin=text, client=client)
    assert (result.returncode, result.stdout) == (0, "piped\n"), result.stderr


def test_umask_and_folder_are_the_clients(folder: Path, project: Path, client: list[str]) -> None:
    started_server(folder, project)
    output = project / "out" / "config.yaml"
    output.parent.mkdir()
    subprocess.run(["sh", "-c", f"umask 027 && exec {' '.join(client)} config -o out/config.yaml"],
                   cwd=project, env=environment(folder), check=True, timeout=60)
    assert output.read_text().startswith("name:")
    assert oct(output.stat().st_mode & 0o777) == oct(0o640)


def test_ctrl_c_reaches_the_command(folder: Path, project: Path, client: list[str]) -> None:
    pid = started_server(folder, project)
    # reads the Compose file from a pipe that stays open: the command waits until interrupted
    process = subprocess.Popen([*client, "-f", "-", "config"], cwd=project,
                               env=environment(folder), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: len(children(pid)) == 1)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)  # stdin stays open: only the signal can end the command
        assert process.stderr is not None
        stderr = process.stderr.read()
    finally:
        process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                stream.close()
    assert process.returncode == 130, stderr
    assert stderr.strip().splitlines()[-1] == "composer: interrupted"
    eventually(lambda: children(pid) == [])


def test_a_killed_client_takes_its_command_with_it(folder: Path, project: Path, client: list[str]) -> None:
    pid = started_server(folder, project)
    process = subprocess.Popen([*client, "-f", "-", "config"], cwd=project,
                               env=environment(folder), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        eventually(lambda: len(children(pid)) == 1)
        process.kill()
        process.wait()
        eventually(lambda: children(pid) == [])  # the worker did not outlive its client
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()


def test_a_changed_source_retires_the_server(folder: Path, project: Path) -> None:
    pid = started_server(folder, project)
    source = Path(server.__file__)
    info = source.stat()
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    try:
        refused = through_server(project, environment(folder), "config", "--services")
    finally:
        os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert refused.stdout.splitlines()[-1] == "CODE None"  # run by the caller instead
    eventually(lambda: not Path(f"/proc/{pid}").exists() or server_pid(folder) != pid)
    eventually(lambda: server_pid(folder) not in (None, pid))  # a fresh one took its place


def test_an_idle_server_exits_and_removes_its_socket(folder: Path, project: Path) -> None:
    composer(project, environment(folder, COMPOSER_SERVER_IDLE="1"), "config", "--services")
    eventually(lambda: server_pid(folder) is not None)
    pid = server_pid(folder)
    eventually(lambda: not Path(f"/proc/{pid}").exists(), timeout=30)
    assert list(folder.glob("*.sock")) == []


def test_opt_out_starts_no_server(folder: Path, project: Path) -> None:
    result = composer(project, environment(folder, COMPOSER_SERVER="0"), "config", "--services")
    assert result.stdout == "web\n"
    time.sleep(0.5)
    assert list(folder.iterdir()) == []


def spares(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(child) for child in text.split() if _process_name(int(child)) == SPARE_NAME]


def test_a_spare_worker_forked_ahead_takes_the_command_and_is_replaced(folder: Path, project: Path) -> None:
    pid = started_server(folder, project)
    eventually(lambda: len(spares(pid)) == 1)
    (spare,) = spares(pid)
    client = subprocess.Popen([sys.executable, "-m", "composer", "-f", "-", "config"], cwd=project,
                              env=environment(folder), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        eventually(lambda: children(pid) == [spare])  # the spare became the command's worker
        eventually(lambda: len(spares(pid)) == 1 and spares(pid) != [spare])  # and a new one waits
        out, _ = client.communicate("services:\n  piped:\n    image: busybox\n", timeout=30)
        assert "piped:" in out
    finally:
        client.kill()
        client.wait()
    (waiting,) = spares(pid)
    server.stop_servers(str(folder))
    eventually(lambda: not Path(f"/proc/{waiting}").exists())  # dismissed with its server


def test_stop_servers_stops_them(folder: Path, project: Path) -> None:
    pid = started_server(folder, project)
    assert server.stop_servers(str(folder)) == [pid]
    assert not Path(f"/proc/{pid}").exists() or Path(f"/proc/{pid}/status").read_text().find("State:\tZ") >= 0
    assert list(folder.glob("*.sock*")) == []


def test_the_compiled_client_hands_over_to_python_only_when_the_server_does_not_take_it(
        folder: Path, project: Path, tmp_path: Path) -> None:
    marker = tmp_path / "fallbacks"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$COMPOSER_CLIENT_FALLBACK" >> {marker}\nexec {sys.executable} "$@"\n')
    python.chmod(0o755)
    (tmp_path / "bin").mkdir()
    compiled = [str(build_client_in(tmp_path / "bin", python=str(python)))]

    def fallbacks() -> list[str]:
        return marker.read_text().split() if marker.exists() else []

    first = composer(project, environment(folder), "config", "--services", client=compiled)
    assert (first.returncode, first.stdout, fallbacks()) == (0, "web\n", ["none"])  # Python ran it, started a server
    eventually(lambda: server_pid(folder) is not None)
    pid = server_pid(folder)
    served = composer(project, environment(folder), "config", "--services", client=compiled)
    assert (served.returncode, served.stdout, fallbacks()) == (0, "web\n", ["none"])  # no Python this time
    off = composer(project, environment(folder, COMPOSER_SERVER="0"), "config", "--services", client=compiled)
    assert (off.stdout, fallbacks()) == ("web\n", ["none", "off"])
    source = Path(server.__file__)
    info = source.stat()
    os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns + 1_000_000_000))
    try:
        refused = composer(project, environment(folder), "config", "--services", client=compiled)
    finally:
        os.utime(source, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert (refused.stdout, fallbacks()) == ("web\n", ["none", "off", "stale"])
    eventually(lambda: server_pid(folder) not in (None, pid))  # the stale server was replaced


# --- whose socket: the client trusts only a private folder and a listener of its own user ---------
#
# Docker's CLI has no such server; Mercurial's chg, whose rule this is, refuses a socket folder that
# is not the user's own with no group or other bits. Here the client says so in one line and runs
# the command itself, with the same output and exit code.

NOBODY = 65534
WARNING = "composer: not using the command server: "


def fake_server(folder: Path, *, uid: int | None = None) -> socket.socket:
    """A listener at the socket path the clients look for in ``folder``, which never answers: a
    client that trusts it connects and sends its command, which stays readable here. With
    ``uid``, the listener is that user's (SO_PEERCRED records who called listen(): a forked child
    binds as root, becomes ``uid``, listens, and hands the listener back)."""
    path = str(folder / os.path.basename(client_module.socket_path()))
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    if uid is None:
        listener.listen(8)
        return listener
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:
        try:
            ours.close()
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            listener.listen(8)
            socket.send_fds(theirs, [b"L"], [listener.fileno()])
        finally:
            os._exit(0)
    theirs.close()
    listener.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 1, 1)
    finally:
        ours.close()
        os.waitpid(pid, 0)
    return socket.socket(fileno=fds[0])


def received(listener: socket.socket) -> bytes:
    """What clients sent the fake server (b"" when none connected, or one hung up unsent)."""
    listener.setblocking(False)
    data = b""
    while True:
        try:
            connection, _ = listener.accept()
        except BlockingIOError:
            return data
        with connection:
            connection.settimeout(5)
            while chunk := connection.recv(65536):
                data += chunk


def refused_and_run_in_process(cwd: Path, env: dict[str, str], client: list[str], listener: socket.socket) -> None:
    served = composer(cwd, env, "config", "--services", client=client)
    local = composer(cwd, {**env, "COMPOSER_SERVER": "0"}, "config", "--services")
    assert (served.returncode, served.stdout) == (local.returncode, local.stdout) == (0, "web\n")
    warnings = [line for line in served.stderr.splitlines() if line.startswith(WARNING)]
    assert len(warnings) == 1, served.stderr
    assert served.stderr.replace(warnings[0] + "\n", "") == local.stderr
    assert received(listener) == b""  # not a byte of argv or environment went to the fake server


@pytest.fixture
def nobody_owned(folder: Path) -> Iterator[Path]:
    """A folder of another user (uid 65534), 0700, inside the private test folder."""
    path = folder / "theirs"
    path.mkdir(mode=0o700)
    try:
        yield path
    finally:
        os.chown(path, os.getuid(), os.getgid())  # stop_servers and rm -rf need no privilege then


@pytest.mark.root  # another user's folder or listener: chown and setuid to uid 65534
def test_a_folder_created_first_by_another_user_is_refused(nobody_owned: Path, project: Path,
                                                          client: list[str]) -> None:
    listener = fake_server(nobody_owned)
    os.chown(nobody_owned, NOBODY, NOBODY)
    with listener:
        refused_and_run_in_process(project, environment(nobody_owned), client, listener)
    assert server_pid(nobody_owned) is None  # no server was started in their folder


def test_a_folder_open_to_group_or_others_is_refused(folder: Path, project: Path, client: list[str]) -> None:
    with fake_server(folder) as listener:
        for mode in (0o750, 0o705):
            folder.chmod(mode)
            refused_and_run_in_process(project, environment(folder), client, listener)
    folder.chmod(0o700)


def test_a_symlinked_folder_is_refused(folder: Path, project: Path, client: list[str]) -> None:
    real = folder / "real"
    real.mkdir(mode=0o700)
    (folder / "link").symlink_to(real)
    with fake_server(real) as listener:
        refused_and_run_in_process(project, environment(folder / "link"), client, listener)


@pytest.mark.root  # another user's folder or listener: chown and setuid to uid 65534
def test_a_foreign_xdg_runtime_dir_is_refused(nobody_owned: Path, project: Path, client: list[str]) -> None:
    theirs = nobody_owned / "composer"  # $XDG_RUNTIME_DIR/composer, the folder the client looks in
    theirs.mkdir(mode=0o700)
    listener = fake_server(theirs)
    os.chown(theirs, NOBODY, NOBODY)
    env = {key: value for key, value in environment(nobody_owned).items() if key != "COMPOSER_SERVER_DIR"}
    try:
        with listener:
            refused_and_run_in_process(project, {**env, "XDG_RUNTIME_DIR": str(nobody_owned)}, client, listener)
    finally:
        os.chown(theirs, os.getuid(), os.getgid())


@pytest.mark.root  # another user's folder or listener: chown and setuid to uid 65534
def test_a_listener_of_another_user_in_a_private_folder_is_refused(folder: Path, project: Path,
                                                                   client: list[str]) -> None:
    # the folder looks right (ours, 0700): only the peer's credentials tell the listener apart
    with fake_server(folder, uid=NOBODY) as listener:
        refused_and_run_in_process(project, environment(folder), client, listener)
    assert server_pid(folder) is None


def test_the_server_refuses_a_folder_that_is_not_private(folder: Path) -> None:
    folder.chmod(0o755)
    path = folder / "server-test.sock"
    result = subprocess.run([sys.executable, "-P", "-m", "composer.cli.server", str(path)], capture_output=True,
                            text=True, timeout=60, check=False, env=os.environ)
    assert result.returncode == 1
    assert "is open to other users (mode 755)" in result.stderr
    assert not path.exists()
    folder.chmod(0o700)


def test_the_server_creates_its_folder_private_whatever_the_umask(folder: Path, project: Path) -> None:
    private = folder / "new"
    subprocess.run(["sh", "-c", f"umask 000 && exec {sys.executable} -m composer config --services"],
                   cwd=project, env=environment(private), check=True, timeout=60, capture_output=True)
    eventually(lambda: server_pid(private) is not None)
    assert private.stat().st_mode & 0o777 == 0o700
    server.stop_servers(str(private))


def test_the_workers_faults_are_the_clients(folder: Path, project: Path) -> None:
    """The server imported composer.faults with its own environment (no COMPOSER_FAULTS): a worker
    re-reads the client's, so a bad value is refused in one line there too, as in process."""
    started_server(folder, project)
    refused = through_server(project, environment(folder, COMPOSER_FAULTS="bogus:kill"), "config", "--services")
    assert refused.stdout.splitlines()[-1] == "CODE 1", refused.stdout
    assert refused.stderr == "composer: COMPOSER_FAULTS: unknown point 'bogus'\n"
    served = through_server(project, environment(folder), "config", "--services")
    assert served.stdout.splitlines()[-1] == "CODE 0", served.stdout


def test_a_done_command_lets_go_of_the_clients_output() -> None:
    """A worker releases the client's stdout and stderr when the command is done, before it
    reports its pages and exits: a reader of the output (``| tee``) sees its end then. Here a
    forked process stands for the worker, and waits, output released, until the test has read."""
    output_read, output_write = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the "worker": the client's stdout and stderr are the pipe
        try:
            os.close(output_read)
            os.close(go_write)
            os.dup2(output_write, 1)
            os.dup2(output_write, 2)
            os.close(output_write)
            os.write(1, b"done\n")
            server.release_stdio()
            os.read(go_read, 1)  # still running: the reader must have seen the end already
        finally:
            os._exit(0)
    os.close(output_write)
    os.close(go_read)
    try:
        output = b""
        while chunk := _read_or_stuck(output_read):  # EOF while the worker is still alive
            output += chunk
        assert output == b"done\n"
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)
    finally:
        os.close(output_read)
        os.close(go_write)
        os.waitpid(pid, 0)


def _read_or_stuck(fd: int) -> bytes:
    """What the pipe has next (b"" at its end); a pipe still open after 30 s fails the test
    instead of hanging it (the worker holds it until the test lets it go)."""
    import select

    readable, _, _ = select.select([fd], [], [], 30)
    if not readable:
        raise AssertionError("the client's output is still open while the worker waits")
    return os.read(fd, 4096)
