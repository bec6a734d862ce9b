"""``composer events`` on the native backend, through the real CLI and real containers: the events
the project's supervisor and the CLI record (runtime/eventlog.py), printed as v2 prints dockerd's.

What dockerd 20.10 records for the same project and commands, through v2's ``events --json``
(side by side on this machine): ``create`` and ``start`` for each container; ``die`` with
``exitCode``; ``exec_create: true `` / ``exec_start: true `` / ``exec_die`` (``execID``,
``exitCode``) for each healthcheck probe and ``health_status: healthy`` once, when the status
changes, and the same three for a ``docker exec`` (its action names the command: ``exec_create: sh
-c exit 4``); ``kill`` with ``signal`` (15, then 9 past the grace period), ``die`` and ``stop`` for a
stop; ``oom`` then ``die`` with ``exitCode`` 137 when the memory limit is hit; ``destroy`` at
``down``. The attributes are ``image`` (as the service names it), ``name`` and the container's
labels without com.docker.compose.*.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.native.test_lifecycle import Project, env, eventually, project
from tests.integration.timeouts import scaled

__all__ = ["env", "project"]  # the fixtures, shared with test_lifecycle (same store, same residue check)


class Events:
    """A ``composer events`` process following the project; stopped at the end, pass or fail."""

    def __init__(self, project: Project, *args: str) -> None:
        command = [sys.executable, "-m", "composer", "--backend", "native", "-p", project.name, "events", *args]
        environ = {**project.env.environ, "COMPOSER_SERVER": "0"}  # this process: its /proc/<pid>/fd
        self.process = subprocess.Popen(command, cwd=project.folder, env=environ,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.partial = ""

    def read_until(self, wanted: str, timeout: float = 30, count: int = 1) -> list[str]:
        """The lines read so far, once ``count`` of them contain ``wanted``."""
        import selectors

        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()  # read whole: a buffered readline would hide lines from select
        selector = selectors.DefaultSelector()
        selector.register(fd, selectors.EVENT_READ)
        deadline = time.monotonic() + scaled(timeout)
        while sum(wanted in line for line in self.lines) < count:
            if self.process.poll() is not None:  # not an AssertionError: a caller retrying on those stops here
                raise RuntimeError(f"events ended ({self.process.returncode}) before {wanted!r}; lines: "
                                   f"{self.lines}; stderr: {self.stop()}")
            if time.monotonic() > deadline:  # the process goes on: a caller may retry (the fixture stops it)
                raise AssertionError(f"no {wanted!r} in {self.lines}")
            if selector.select(0.2):
                self.partial += os.read(fd, 65536).decode()
                *complete, self.partial = self.partial.split("\n")
                self.lines += [line + "\n" for line in complete]
        return self.lines

    def stop(self) -> str:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            _, err = self.process.communicate(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, err = self.process.communicate()
        return err


@pytest.fixture
def events(project: Project) -> Iterator[list[Events]]:
    started: list[Events] = []
    try:
        yield started
    finally:
        for follower in started:
            follower.stop()


SENTINEL = """
    sentinel:
      image: IMAGE
      command: sleep 300
"""


def follow(project: Project, events: list[Events], *args: str) -> Events:
    """An ``events`` process that follows the project's events file (open: it reads what comes
    after). The project's ``sentinel`` service is up first, so that the file exists to be opened."""
    project.run("up", "-d", "sentinel")
    follower = Events(project, *args)
    events.append(follower)
    fds = Path(f"/proc/{follower.process.pid}/fd")

    def following() -> bool:
        for fd in fds.iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).endswith("/events.jsonl"):
                    return True
        return False

    eventually(following, timeout=60)
    return follower


def decoded(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines if line.strip()]


def actions(found: list[dict[str, Any]], service: str) -> list[str]:
    return [event["action"] for event in found if event["service"] == service]


def test_lifecycle_and_health_events_as_v2_shows_dockerds(project: Project, events: list[Events]) -> None:
    project.write(SENTINEL + """
    web:
      image: IMAGE
      command: sleep 300
      labels: {team: blue}
      healthcheck: {test: ["CMD", "true"], interval: 1s}
    once:
      image: IMAGE
      command: sh -c 'exit 3'
    """)
    follower = follow(project, events, "--json")
    project.run("up", "-d")
    follower.read_until('"health_status: healthy"')
    follower.read_until('"exitCode":"3"')
    project.run("stop", "-t", "1", "web")
    follower.read_until('"stop"')
    project.run("down")
    found = decoded(follower.read_until('"destroy","attributes":{"image":"' + project.env.image + '","name":"'
                                        + project.name + '-web-1"'))
    web = actions(found, "web")
    assert web[:2] == ["create", "start"], web
    probes = [action for action in web if action.startswith("exec_")]
    assert probes[:3] == ["exec_create: true ", "exec_start: true ", "exec_die"], web
    assert web.count("health_status: healthy") == 1, web
    # the stop: TERM, then KILL past the grace period (sleep as PID 1 ignores TERM), die, stop
    tail = [action for action in web if not action.startswith("exec_")][-5:]
    assert tail == ["kill", "kill", "die", "stop", "destroy"], web
    kills = [event["attributes"]["signal"] for event in found
             if event["action"] == "kill" and event["service"] == "web"]
    assert kills == ["15", "9"], kills
    die = next(event for event in found if event["action"] == "die" and event["service"] == "web")
    assert die["attributes"] == {"exitCode": "137", "image": project.env.image, "name": f"{project.name}-web-1",
                                 "team": "blue"}, die
    assert actions(found, "once") == ["create", "start", "die", "destroy"], found
    once_die = next(event for event in found if event["action"] == "die" and event["service"] == "once")
    assert once_die["attributes"]["exitCode"] == "3"
    for event in found:
        assert event["type"] == "container", event
        assert len(event["id"]) == 64, event
        assert sorted(event) == ["action", "attributes", "id", "service", "time", "type"], event
    exec_die = next(event for event in found if event["action"] == "exec_die")
    assert exec_die["attributes"]["exitCode"] == "0"
    assert len(exec_die["attributes"]["execID"]) == 64


def test_oom_then_die_137_plain_lines_and_a_service_filter(project: Project, events: list[Events]) -> None:
    project.write(SENTINEL + """
    hog:
      image: IMAGE
      command: tail /dev/zero
      mem_limit: 24m
      memswap_limit: 24m
    quiet:
      image: IMAGE
      command: sleep 300
    """)
    follower = follow(project, events, "hog")
    project.run("up", "-d")
    lines = follower.read_until(" container die ", timeout=scaled(60))
    shown = [line for line in lines if line.strip()]
    assert all(f"image={project.env.image}, name={project.name}-hog-1)\n" in line for line in shown), shown
    assert [line.split()[3] for line in shown] == ["create", "start", "oom", "die"], shown
    assert " (exitCode=137, image=" in shown[-1]  # attributes sorted (Go's map order is random)
    # v2 prints each event with Println, its text ending with a newline: an empty line follows each
    assert lines[1] == "\n", lines
    project.run("down", "-t", "1")


def test_events_follow_the_project_through_down_and_up(project: Project, events: list[Events]) -> None:
    """The events file goes with the project's folder at ``down`` and comes back with ``up``:
    an ``events`` started before both sees each."""
    project.write(SENTINEL + """
    one:
      image: IMAGE
      command: sleep 300
    """)
    follower = follow(project, events, "--json")
    project.run("up", "-d")
    follower.read_until('"start"')
    project.run("down", "-t", "0")
    follower.read_until('"destroy"', count=2)
    eventually(lambda: not project.run_dir().exists())  # the folder, and the file in it, gone
    project.run("up", "-d", "one")
    found = decoded(follower.read_until('"start"', count=2))
    assert actions(found, "one").count("create") == 2, found
    assert actions(found, "one")[-2:] == ["create", "start"], found


# --- side by side with v2 on dockerd -------------------------------------------------------------------

SIDE_BY_SIDE = """
services:
  sentinel:
    image: {image}
    command: sleep 300
  web:
    image: {image}
    command: sleep 300
    labels: {{team: blue}}
  once:
    image: {image}
    command: sh -c 'exit 3'
"""


def scenario(command: list[str], folder: Path, environ: dict[str, str]) -> list[tuple[str, str, tuple[str, ...]]]:
    """The same commands through ``command`` (composer on native, or v2 on dockerd): (service,
    action, the attributes without ``image`` and ``name``'s values) of web's and once's events."""

    def run(*args: str) -> None:
        subprocess.run([*command, *args], cwd=folder, env=environ, check=True, capture_output=True, timeout=scaled(120))

    run("up", "-d", "sentinel")
    process = subprocess.Popen([*command, "events", "--json"], cwd=folder, env=environ, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    follower = Events.__new__(Events)
    follower.process, follower.lines, follower.partial = process, [], ""
    try:
        # following once a signal to the sentinel shows (sleep as PID 1 ignores SIGWINCH: no die)
        deadline = time.monotonic() + 60
        while True:
            run("kill", "-s", "SIGWINCH", "sentinel")
            with contextlib.suppress(AssertionError):
                follower.read_until('"kill"', timeout=2)
                break
            assert time.monotonic() < deadline, "events never showed the sentinel's kill"
        run("up", "-d", "web", "once")
        follower.read_until('"exitCode":"3"')
        run("stop", "-t", "1", "web")
        run("down", "-t", "1")
        found = decoded(follower.read_until('"destroy"', count=3))
    finally:
        follower.stop()
    return [(event["service"], event["action"], tuple(sorted(f"{k}={v}" if k not in ("image", "name") else k
                                                               for k, v in event["attributes"].items())))
            for event in found if event["service"] in ("web", "once")]


def test_the_same_events_as_v2_on_dockerd(project: Project, busybox_image: str, docker_api: object,
                                          tmp_path: Path) -> None:
    v2 = Path(sys.executable).parent / "docker-compose"
    theirs_folder = tmp_path / "v2"
    theirs_folder.mkdir()
    (theirs_folder / "compose.yaml").write_text(SIDE_BY_SIDE.format(image=busybox_image))
    v2_project = f"{project.name}v2"
    try:
        theirs = scenario([str(v2), "-p", v2_project], theirs_folder, {**os.environ})
    finally:
        subprocess.run([str(v2), "-p", v2_project, "down", "-t", "0"], cwd=theirs_folder, capture_output=True,
                       timeout=scaled(120))
    (project.folder / "compose.yaml").write_text(SIDE_BY_SIDE.format(image=project.env.image))
    ours = scenario([sys.executable, "-m", "composer", "--backend", "native", "-p", project.name], project.folder,
                    {**project.env.environ, "COMPOSER_SERVER": "0"})

    def per_service(found: list[tuple[str, str, tuple[str, ...]]], service: str) -> list[tuple[str, ...]]:
        return [(action, *attributes) for name, action, attributes in found if name == service]

    for service in ("web", "once"):
        assert per_service(ours, service) == per_service(theirs, service), (service, ours, theirs)


def test_an_exec_is_recorded_as_dockerd_records_docker_exec(project: Project, events: list[Events]) -> None:
    project.write(SENTINEL)
    follower = follow(project, events, "--json")
    done = project.run("exec", "-T", "sentinel", "sh", "-c", "exit 4", check=False)
    assert done.returncode == 4, done.stderr
    found = decoded(follower.read_until('"exec_die"'))
    execs = [event for event in found if event["action"].startswith("exec_")]
    assert [event["action"] for event in execs] == ["exec_create: sh -c exit 4", "exec_start: sh -c exit 4",
                                                    "exec_die"], found
    assert len({event["attributes"]["execID"] for event in execs}) == 1, execs
    assert execs[-1]["attributes"]["exitCode"] == "4", execs
    assert all(event["service"] == "sentinel" for event in execs), execs
