"""Names that would become paths, the project supervisor's socket, and the state files that hold
a container's environment and probe output: real containers through the CLI (test_lifecycle's
fixtures: a module store, a tmp COMPOSER_RUN_ROOT, the residue check after the module).

Docker, for comparison: it refuses a container name outside ``[a-zA-Z0-9][a-zA-Z0-9_.-]+`` at
create ("Invalid container name"); its API socket is root's, 0660 root:docker; a container's
config.v2.json (its whole environment) is 0600 in /var/lib/docker/containers/<id>/, itself 0710
under a 0710 /var/lib/docker.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Project, eventually, nothing_left, one_line
from tests.integration.timeouts import scaled

env = test_lifecycle.env  # the fixtures: a module store with busybox, a project downed at the end
project = test_lifecycle.project
NOBODY = 65534


def test_a_container_name_that_is_a_path_is_refused_before_anything_is_made(project: Project) -> None:
    escape = project.env.root.parent / f"escape-{project.name}"  # where run/<project>/../../../ leads
    project.write(f"""
        bad:
          image: IMAGE
          command: sleep 5
          container_name: "../../../escape-{project.name}"
    """)
    try:
        assert project.run("config", check=False).returncode == 0  # as v2's config: its schema accepts it
        result = project.run("up", "-d", check=False)
        assert result.returncode == 1, result.stderr
        assert one_line(result) == (f'composer: services.bad.container_name: invalid container name '
                                    f'"../../../escape-{project.name}": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed')
        assert not escape.exists()
        nothing_left(project)
    finally:
        shutil.rmtree(escape, ignore_errors=True)


def up_under_umask_000(project: Project) -> None:
    command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "up", "-d"]
    result = subprocess.run(["sh", "-c", 'umask 000 && exec "$@"', "sh", *command], cwd=project.folder,
                            env=project.env.environ, capture_output=True, text=True, timeout=scaled(60), check=False)
    assert result.returncode == 0, result.stderr


def ask_supervisor(path: Path, request: dict[str, object], *, uid: int | None = None) -> bytes:
    """The supervisor's answer to ``request`` (b"" when it hangs up without one). With ``uid``,
    from a child process of that user: it reaches the socket through an O_PATH descriptor (its
    folders are not that user's to enter); SO_PEERCRED tells the supervisor who connected."""
    if uid is None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
            connection.settimeout(30)
            connection.connect(str(path))
            connection.sendall(json.dumps(request).encode() + b"\n")
            return receive_all(connection)
    handle = os.open(path, os.O_PATH)
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(reader)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
                connection.settimeout(30)
                connection.connect(f"/proc/self/fd/{handle}")
                os.write(writer, b"connected\n")
                try:
                    connection.sendall(json.dumps(request).encode() + b"\n")
                    os.write(writer, receive_all(connection))
                except (BrokenPipeError, ConnectionResetError):  # hung up on this request, unread
                    pass
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    os.close(handle)
    with os.fdopen(reader, "rb") as pipe:
        answer = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, answer
    assert answer.startswith(b"connected\n"), answer
    return answer.removeprefix(b"connected\n")


def receive_all(connection: socket.socket) -> bytes:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def test_the_supervisor_socket_is_0600_under_umask_000_and_refuses_other_users_and_path_names(
        project: Project) -> None:
    project.write("""
        app:
          image: IMAGE
          command: sleep 60
          restart: always
    """)
    up_under_umask_000(project)
    container = f"{project.name}-app-1"
    path = project.run_dir() / "supervisor.sock"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    # the mode keeps others out already: open it up, so that only SO_PEERCRED can refuse
    path.chmod(0o666)
    try:
        assert ask_supervisor(path, {"op": "stop", "name": container}, uid=NOBODY) == b""
    finally:
        path.chmod(0o600)
    assert "Up" in project.ps()  # it did not stop it

    outside = project.env.root.parent / f"outside-{project.name}"
    outside.mkdir()
    try:
        for op in ("stop", "start", "kill", "forget"):
            name = os.path.relpath(outside, project.run_dir())  # ../../outside-...
            answer = json.loads(ask_supervisor(path, {"op": op, "name": name, "signal": 9}))
            assert answer == {"ok": False, "error": f'invalid container name "{name}": '
                                                    "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"}, op
        assert list(outside.iterdir()) == []  # no supervise.json written through the name
    finally:
        shutil.rmtree(outside)
    assert json.loads(ask_supervisor(path, {"op": "ping"}))["ok"] is True  # root still may


def test_state_holding_the_environment_and_probe_output_is_root_s_alone(project: Project) -> None:
    secret = f"s3cr3t-{project.name}"
    project.write(f"""
        app:
          image: IMAGE
          environment:
            SECRET_TOKEN: {secret}
          command: sh -c 'echo log-$$SECRET_TOKEN; exec sleep 60'
          healthcheck:
            test: ["CMD-SHELL", "echo probe-$$SECRET_TOKEN"]
            interval: 0.2s
    """)
    up_under_umask_000(project)  # whatever the caller's umask
    container = f"{project.name}-app-1"
    eventually(lambda: any(secret in entry.get("output", "")
                           for entry in project.state(container, "health.json").get("log", ())))
    data_dir = Path(project.state(container, "config.json")["log_path"]).parent
    eventually(lambda: secret in (data_dir / "container.log").read_text())
    run_root = project.env.root / "run"
    closed = [run_root, project.run_dir(), project.run_dir() / container, data_dir]
    assert {str(path): oct(stat.S_IMODE(path.stat().st_mode) & 0o077) for path in closed} == \
        {str(path): "0o0" for path in closed}  # nothing below them is reachable by group or others
    holding = []
    for top in (run_root, data_dir):
        for folder, _, files in os.walk(top):
            for name in files:
                path = Path(folder, name)
                if path.is_file() and not path.is_symlink() and secret.encode() in path.read_bytes():
                    holding.append(path)
    assert {p.name for p in holding} >= {"config.json", "health.json", "container.log"}
    open_to_others = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in holding
                      if path.stat().st_mode & 0o077}
    assert open_to_others == {}
    # the files bound into the container keep Docker's modes there (0644), whatever the umask
    for name in ("hosts", "hostname", "resolv.conf"):
        assert stat.S_IMODE((project.run_dir() / container / name).stat().st_mode) == 0o644
    inside = project.run("exec", "-T", "app", "stat", "-c", "%a", "/etc/hosts", "/etc/resolv.conf").stdout.split()
    assert inside == ["644", "644"]
