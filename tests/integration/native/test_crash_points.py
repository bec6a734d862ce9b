"""Crash safety of the native backend, end to end through the CLI (issue 17, sections 1, 3, 4).

Every crash point of composer.faults (the registry) is triggered with ``COMPOSER_FAULTS=<point>:kill``
in the command that reaches it (up, down or pull; the supervisor, a monitor or the forkserver's
child inherit the variable and die at their own points); then the supervisor armed by that run is
killed -9 too (so that the recovery runs unarmed), ``up -d`` must bring every service up and
``down`` must leave nothing: no network namespace, veth, bridge, iptables rule, mount, cgroup,
run folder, staging folder or process (supervisor, DNS daemon, proxy, monitor) of the project.

Besides: the concrete bugs of the issue (two DNS daemons for a project with two networks; the
supervisor left alive after up -d killed -9 and down), and concurrency (loops of up/down/restart
on one project at once, ups of different projects at once, stop of a crash-looping container).

Run as root with a local registry (tests/integration/registry.py); state goes to a tmp
COMPOSER_RUN_ROOT, cgroups under a unique parent, and the module's residue check (test_runtime)
runs at the end. The CLI runs without the command server (COMPOSER_SERVER=0): the process killed
is the one doing the work.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer import faults
from composer.backends.native.network.manager import NetworkManager
from composer.backends.native.runtime import cgroups
from tests.integration.native.test_lifecycle import Env
from tests.integration.native.test_lifecycle import env as env  # the module's image and roots (a fixture)
from tests.integration.timeouts import scaled

CRASHLOOP = "sh -c 'sleep 0.3; exit 3'"
LOOP = "sh -c 'while true; do sleep 0.2; done'"


class Stack:
    """A project of two services on two networks, with a published port; ``crashloop`` adds a
    ``restart: always`` service that exits 3 after 0.3 s."""

    def __init__(self, env: Env, tmp_path: Path, *, crashloop: bool = False, replicas: int = 1) -> None:
        self.env = env
        self.replicas = replicas
        self.name = f"cr{uuid.uuid4().hex[:8]}"
        self.folder = tmp_path / self.name
        self.folder.mkdir()
        self.environ = {**env.environ, "COMPOSER_SERVER": "0"}
        self.environ.pop("COMPOSER_FAULTS", None)
        self.services = ["web", "db"] + (["loop"] if crashloop else [])
        loop = textwrap.indent(textwrap.dedent(f"""
            loop:
              image: {env.image}
              command: {CRASHLOOP}
              restart: always
              networks: [back]
        """), "  ") if crashloop else ""
        (self.folder / "compose.yaml").write_text(textwrap.dedent(f"""
            services:
              web:
                image: {env.image}
                command: {LOOP}
                restart: always
                networks: [front, back]
                ports: ["127.0.0.1::8080"]
                deploy: {{replicas: {replicas}}}
              db:
                image: {env.image}
                command: {LOOP}
                networks: [back]
        """) + loop + textwrap.dedent("""
            networks:
              front:
              back:
        """))

    @property
    def run_root(self) -> Path:
        return self.env.root / "run"

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "composer", "--backend", "native", "-p", self.name, *args]

    def run(self, *args: str, check: bool = True, timeout: float = 120, fault: str | None = None,
            environ: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environment = {**self.environ, **(environ or {})}
        if fault is not None:
            environment["COMPOSER_FAULTS"] = fault
        result = subprocess.run(self.command(*args), cwd=self.folder, env=environment, capture_output=True, text=True,
                                timeout=timeout)
        if check:
            assert result.returncode == 0, (args, result.returncode, result.stdout, result.stderr)
        return result

    def rows(self) -> list[dict[str, Any]]:
        out = self.run("ps", "-a", "--format", "json").stdout.strip()
        rows = json.loads(out) if out.startswith("[") else [json.loads(line) for line in out.splitlines() if line]
        assert isinstance(rows, list)
        return rows

    def states(self) -> dict[str, str]:
        """service -> state of its (first) container (ps -a --format json)."""
        return {row["Service"]: row["State"] for row in self.rows()}

    def supervisor(self) -> int | None:
        try:
            data = json.loads((self.run_root / self.name / "supervisor.pid").read_text())
        except (OSError, ValueError):
            return None
        pid = int(data.get("pid") or 0)
        return pid if pid and _start_time(pid) == data.get("start") else None

    def kill_supervisor(self) -> None:
        pid = self.supervisor()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid)

    def bridges(self) -> list[str]:
        manager = NetworkManager(self.run_root)
        return [manager.bridge_name(f"{self.name}_{key}") for key in ("front", "back")]

    def veths(self) -> list[str]:
        manager = NetworkManager(self.run_root)
        return [manager.veth_name(f"{self.name}-{service}-{index}", f"{self.name}_{key}")
                for service in self.services for index in range(1, self.replicas + 1) for key in ("front", "back")]

    def converged(self) -> None:
        """Every service has its container, running (a crash-looping one may be restarting)."""
        rows = self.rows()
        states = [(row["Service"], row["State"]) for row in rows]
        assert sorted({service for service, _ in states}) == sorted(self.services), states
        assert len(states) == len(self.services) + self.replicas - 1, states
        for service, state in states:
            assert state == "running" or (service == "loop" and state in ("restarting", "exited")), states

    def processes(self) -> list[str]:
        """Processes of this project: its supervisor, DNS daemon, proxies, monitors, containers."""
        found = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit() or int(proc.name) == os.getpid():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                cgroup = (proc / "cgroup").read_text()
            except OSError:
                continue
            if not cmdline:
                continue  # a zombie, or a kernel thread
            if (str(self.run_root) in cmdline and self.name in cmdline) or (
                    self.env.environ["COMPOSER_CGROUP_PARENT"] in cgroup):
                found.append(f"{proc.name}: {cmdline[:200]}")
        return found

    def residue(self) -> list[str]:
        """What of this project is left on the host (after down)."""
        problems = []
        folder = self.run_root / self.name
        if folder.exists():
            problems.append(f"run folder: {sorted(p.name for p in folder.iterdir())}")
        for bridge in self.bridges():
            if Path(f"/sys/class/net/{bridge}").exists():
                problems.append(f"bridge {bridge}")
        for veth in self.veths():
            if Path(f"/sys/class/net/{veth}").exists():
                problems.append(f"veth {veth}")
        rules = subprocess.run(["iptables-save"], capture_output=True, text=True).stdout
        problems += [f"iptables: {line}" for line in rules.splitlines() if any(b in line for b in self.bridges())]
        networks = self.run_root / "networks"
        for state in networks.glob("*.json") if networks.is_dir() else ():
            with contextlib.suppress(OSError, ValueError):
                if json.loads(state.read_text()).get("project") == self.name:
                    problems.append(f"network state {state.name}")
        store = Path(self.environ["COMPOSER_ROOT"])
        roots = (str(self.run_root / self.name), str(store / "containers"))
        problems += [f"mount: {line}" for line in Path("/proc/self/mountinfo").read_text().splitlines()
                     if any(root in line for root in roots)]
        containers = store / "containers"
        problems += [f"writable layer {p.name}" for p in containers.iterdir()] if containers.is_dir() else []
        layout = cgroups.detect()
        for mountpoint in [*layout.v1.values(), *([layout.unified] if layout.unified else [])]:
            parent = Path(mountpoint) / self.env.environ["COMPOSER_CGROUP_PARENT"]
            if parent.is_dir():
                problems += [f"cgroup {p}" for p in parent.iterdir() if p.is_dir()]
        problems += [f"process {p}" for p in self.processes()]
        return problems

    def assert_clean(self) -> None:
        """No residue (processes may take a moment to exit after down: polled up to 10 s)."""
        deadline = time.monotonic() + 10
        while (problems := self.residue()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not problems, problems

    def cleanup(self) -> None:
        """Whatever a failed test left: down (twice: a first one may meet a dying supervisor)."""
        for _ in range(2):
            self.run("down", "-t", "0", check=False)
        self.kill_supervisor()


def report(line: str) -> None:
    """A figure for the log (pytest -s shows it; never asserted)."""
    sys.stdout.write(line + "\n")


def _start_time(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            return
        if state[state.rindex(b")") + 2:].split()[0] in (b"Z", b"X"):
            return
        time.sleep(0.05)


@pytest.fixture
def stack(env: Env, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(env, tmp_path)
    try:
        yield s
    finally:
        s.cleanup()


@pytest.fixture
def crashloop(env: Env, tmp_path: Path) -> Iterator[Stack]:
    s = Stack(env, tmp_path, crashloop=True)
    try:
        yield s
    finally:
        s.cleanup()


# --- every crash point ---------------------------------------------------------------------------

# point -> (the command armed with it, whether the stack must be up before). A point not listed
# here fails test_every_crash_point_has_a_scenario.
UP, DOWN, PULL = "up", "down", "pull"
SCENARIOS: dict[str, str] = {
    "runtime.create.staged": UP,
    "runtime.create.data-made": UP,
    "runtime.create.config-written": UP,
    "runtime.create.renamed": UP,
    "runtime.remove.cgroup-removed": DOWN,
    "runtime.remove.renamed": DOWN,
    "runtime.remove.data-removed": DOWN,
    "supervisor.start.received": UP,
    "supervisor.restart.decided": UP,
    "forkserver.child.forked": UP,
    "monitor.start.state-written": UP,
    "network.create.bridge-made": UP,
    "network.attach.veth-made": UP,
    "network.remove.bridge-removed": DOWN,
    "network.dns.started": UP,
    "store.layer.extracting": PULL,
    "store.layer.extracted": PULL,
    "store.index.writing": PULL,
    "executor.operation.started": UP,
    "executor.operation.done": UP,
}


def test_every_crash_point_has_a_scenario() -> None:
    assert sorted(SCENARIOS) == sorted(faults.POINTS)


@pytest.mark.parametrize("point", sorted(faults.POINTS))
def test_a_kill_at_each_crash_point_then_up_and_down_converge_and_leave_nothing(
        point: str, env: Env, tmp_path: Path) -> None:
    stack = Stack(env, tmp_path, crashloop=point == "supervisor.restart.decided")
    try:
        when = SCENARIOS[point]
        if when == PULL:  # a store of its own, empty: the up pulls from the local registry
            stack.environ["COMPOSER_ROOT"] = str(tmp_path / "store")
        if when == DOWN:
            stack.run("up", "-d")
        started = time.monotonic()
        # executor points: a random operation (probability), the others at their first pass
        spec = f"{point}:kill:0.5" if point.startswith("executor.") else f"{point}:kill"
        log = tmp_path / "faults.log"
        faulted = stack.run(*(["up", "-d"] if when in (UP, PULL) else ["down", "-t", "0"]), check=False,
                            fault=spec, environ={"COMPOSER_FAULTS_LOG": str(log)})
        deadline = time.monotonic() + 10  # a point in the supervisor or a monitor may come after the command
        while point not in (log.read_text() if log.exists() else "") and time.monotonic() < deadline:
            time.sleep(0.1)
        reached = log.read_text().split() if log.exists() else []
        assert reached[:2] == [point, "kill"], f"the point was not reached: {reached}"
        stack.kill_supervisor()  # armed by the faulted run: the recovery runs without faults
        stack.run("up", "-d")
        stack.converged()
        stack.run("up", "-d")  # converged: a second up changes nothing and still succeeds
        stack.converged()
        stack.run("down", "-t", "0")
        report(f"{point}: killed pid {reached[2]}, faulted command exit {faulted.returncode}, recovered in "
              f"{time.monotonic() - started:.1f}s")
        stack.assert_clean()
        if when == PULL:
            store = tmp_path / "store"
            assert json.loads((store / "images.json").read_text())["images"], "the image is in the index"
            for layer in (store / "layers").iterdir():
                assert (layer / "layer.json").is_file(), f"a half-made layer in layers/: {layer.name}"
            assert not list((store / "incoming").glob("layer-*")), "an unpacking left in incoming/"
    finally:
        stack.cleanup()


# --- the concrete bugs --------------------------------------------------------------------


def dns_daemons(stack: Stack) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"composer.backends.native.network.dns" in args and stack.name.encode() in args \
                    and str(stack.run_root).encode() in args:
                found.append(int(proc.name))
    return found


def test_up_of_a_project_with_two_networks_starts_one_dns_daemon_and_down_stops_it(stack: Stack) -> None:
    for _ in range(3):
        stack.run("up", "-d")
        daemons = dns_daemons(stack)
        assert len(daemons) == 1, daemons
        stack.run("down", "-t", "0")
        stack.assert_clean()
        assert dns_daemons(stack) == []


def test_two_networks_made_at_once_share_one_dns_daemon(stack: Stack) -> None:
    """The race under the issue's two daemons, made deterministic: the project's two networks
    created by two threads released together (as the executor does), five times."""
    from composer.spec.models import NetworkConfig

    manager = NetworkManager(stack.run_root)
    try:
        for _round in range(5):
            barrier = threading.Barrier(2)
            errors: list[BaseException] = []

            def create(key: str, barrier: threading.Barrier = barrier, errors: list[BaseException] = errors) -> None:
                barrier.wait()
                try:
                    manager.create_network(stack.name, key, f"{stack.name}_{key}", NetworkConfig())
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=create, args=(key,)) for key in ("front", "back")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not errors, errors
            daemons = dns_daemons(stack)
            recorded = manager.dns_pid(stack.name)
            manager.down(stack.name)
            assert daemons == [recorded], (daemons, recorded)
        assert dns_daemons(stack) == []
    finally:
        manager.down(stack.name)
        for pid in dns_daemons(stack):
            os.kill(pid, signal.SIGKILL)


def test_up_killed_at_random_moments_then_down_leaves_no_supervisor(env: Env, tmp_path: Path) -> None:
    """Issue 17: five cycles of up -d (eight replicas on two networks with published ports)
    killed -9 at a random moment, then down -t 0: the supervisor must not stay (past its idle
    exit) with its run folder and socket. (It did when down's forget crossed a start still
    running in the supervisor: that start's watcher kept the name and the supervisor busy.)"""
    stack = Stack(env, tmp_path, replicas=8)
    rng = random.Random(17)
    for cycle in range(5):
        process = subprocess.Popen(stack.command("up", "-d"), cwd=stack.folder, env=stack.environ,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.5, 4.0)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(delay)
        process.kill()
        process.wait()
        down = stack.run("down", "-t", "0", check=False)
        report(f"cycle {cycle}: up killed after {delay:.2f}s, down exit {down.returncode}")
        try:
            assert down.returncode == 0, down.stderr
            stack.assert_clean()
        except AssertionError:
            stack.cleanup()
            raise


# --- concurrency -----------------------------------------------------------------------------------


BUSY = "is busy"


def test_up_down_restart_loops_on_one_project_at_once_end_consistent(stack: Stack) -> None:
    """Three loops at once (up, down, restart): each command completes or says "busy" after a
    bounded wait; no deadlock; at the end one up and one down leave the stack whole, then nothing."""
    stack.environ["COMPOSER_LOCK_TIMEOUT"] = "60"
    outcomes: dict[str, list[int]] = {"up": [], "down": [], "restart": []}
    failures: list[str] = []

    def loop(command: list[str], key: str) -> None:
        for _ in range(4):
            result = stack.run(*command, check=False, timeout=180)
            outcomes[key].append(result.returncode)
            if result.returncode != 0 and BUSY not in result.stderr and "No such" not in result.stderr \
                    and "no container" not in result.stderr.lower():
                failures.append(f"{key}: {result.returncode}: {result.stderr.strip()[-400:]}")

    threads = [threading.Thread(target=loop, args=(["up", "-d"], "up")),
               threading.Thread(target=loop, args=(["down", "-t", "0"], "down")),
               threading.Thread(target=loop, args=(["restart", "-t", "0"], "restart"))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(600)
    assert not any(thread.is_alive() for thread in threads), "deadlock: a loop did not finish"
    report(f"three loops of 4 commands in {time.monotonic() - started:.1f}s; exit codes {outcomes}")
    assert not failures, failures
    stack.run("up", "-d")
    stack.converged()
    stack.run("down", "-t", "0")
    stack.assert_clean()


def test_ups_of_different_projects_at_once(env: Env, tmp_path: Path) -> None:
    stacks = [Stack(env, tmp_path) for _ in range(3)]
    try:
        results: list[subprocess.CompletedProcess[str]] = []
        started = time.monotonic()
        threads = [threading.Thread(target=lambda s=s: results.append(s.run("up", "-d", check=False)))
                   for s in stacks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        report(f"three projects up at once in {time.monotonic() - started:.1f}s")
        assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
        for s in stacks:
            s.converged()
        threads = [threading.Thread(target=s.run, args=("down", "-t", "0")) for s in stacks]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(600)
        for s in stacks:
            s.assert_clean()
    finally:
        for s in stacks:
            s.cleanup()


def test_a_crash_looping_restart_always_service_stays_stopped_after_stop(crashloop: Stack) -> None:
    """20 times: start the crash-looping service, stop it at a random moment of its loop; it must
    stay exited (no restart after the stop: a lost manual_stop would bring it back)."""
    stack = crashloop
    stack.run("up", "-d")
    rng = random.Random(20)
    container = f"{stack.name}-loop-1"
    for attempt in range(20):
        stack.run("start", "loop")
        time.sleep(rng.uniform(0.0, 0.8))
        stack.run("stop", "-t", "0", "loop")
        state_file = stack.run_root / stack.name / container / "state.json"
        before = state_file.read_bytes() if state_file.exists() else b""
        time.sleep(0.8)  # longer than the loop's first backoffs: a lost stop restarts within it
        after = state_file.read_bytes() if state_file.exists() else b""
        state = stack.states()["loop"]
        intent = json.loads((stack.run_root / stack.name / container / "supervise.json").read_text())
        assert state == "exited", (attempt, state, intent)
        assert before == after, (attempt, "restarted after the stop", intent)
        assert intent["manual_stop"] is True, (attempt, intent)
    stack.run("down", "-t", "0")
    stack.assert_clean()


# --- what the soak (bench/soak.py) found ------------------------------------------------------------


@pytest.mark.parametrize("point", ["executor.operation.done", "runtime.remove.data-removed"])
def test_an_up_killed_midway_through_a_recreate_converges_under_the_services_names(
        point: str, env: Env, tmp_path: Path) -> None:
    """A recreate creates the new container as ``<old id>_<name>``, removes the old one, renames the
    new one. Killed after the create (executor.operation.done: both left) or after the old one's
    removal (runtime.remove.data-removed: the new one alone under its temporary name), the next
    ``up -d`` failed with "name ... already in use" (it recreated the old one again under the same
    temporary name), or kept the temporary name. Now it converges with the services' own names."""
    stack = Stack(env, tmp_path)
    try:
        stack.run("up", "-d")
        compose = stack.folder / "compose.yaml"
        compose.write_text(compose.read_text().replace("restart: always", "restart: always\n    environment: {V: '2'}"))
        stack.run("up", "-d", check=False, fault=f"{point}:kill")
        stack.kill_supervisor()
        rows = stack.rows()
        assert any("_" in row["Name"] for row in rows), rows  # the interrupted recreate's leftover
        stack.run("up", "-d")
        stack.converged()
        assert sorted(row["Name"] for row in stack.rows()) == [f"{stack.name}-db-1", f"{stack.name}-web-1"]
        env_out = stack.run("exec", "web", "sh", "-c", "echo $V").stdout.strip()
        assert env_out == "2", env_out
        stack.run("down", "-t", "0")
        stack.assert_clean()
    finally:
        stack.cleanup()


SUBREAPER = """
import ctypes, json, os, signal, subprocess, sys
ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans become ours
command, pid_file, compose, extra = json.loads(sys.argv[1])
subprocess.run(command + ["up", "-d"], check=True, capture_output=True)
pid = json.load(open(pid_file))["pid"]
os.kill(pid, signal.SIGKILL)
os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # dead and not reaped: a zombie, as until a parent reaps it
open(compose, "w").write(extra)
result = subprocess.run(command + ["up", "-d"], capture_output=True, text=True)
print(json.dumps({"code": result.returncode, "stderr": result.stderr}))
"""


def test_a_dns_daemon_killed_and_not_yet_reaped_is_started_again(stack: Stack) -> None:
    """The project's DNS daemon killed -9 stays a zombie until its parent reaps it, with its pid
    and start time: it counted as alive, a new network's sync sent it SIGHUP, waited 5 s for an
    answer that never came and failed "DNS ... cannot listen on <gateway>". Made deterministic:
    the commands run under a subreaper that keeps the killed daemon a zombie."""
    compose = stack.folder / "compose.yaml"
    extra = compose.read_text().replace("networks: [back]\n", "networks: [back, third]\n", 1) + "  third:\n"
    script = json.dumps([stack.command(), str(stack.run_root / stack.name / "dns" / "pid.json"), str(compose),
                         extra])
    result = subprocess.run([sys.executable, "-c", SUBREAPER, script], cwd=stack.folder, env=stack.environ,
                            capture_output=True, text=True, timeout=scaled(300))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.splitlines()[-1])
    assert answer["code"] == 0, answer["stderr"]
    assert len(dns_daemons(stack)) == 1
    stack.run("down", "-t", "0")
    stack.assert_clean()


WAITING_CLIENT = """
import json, socket, sys
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(sys.argv[1])
sock.sendall(json.dumps({"op": "stop", "name": sys.argv[2], "grace": 0}).encode() + b"\\n")
print("sent", flush=True)
sock.recv(100)
"""


def test_a_stop_queued_by_a_command_killed_meanwhile_is_dropped(stack: Stack) -> None:
    """Found by the soak: ``down`` killed while its stops waited in the supervisor's queue; the next
    ``up -d`` saw the containers running, then the queued stops landed and left them exited. A
    request whose sender is gone when the supervisor reads it is dropped now. Made deterministic:
    the supervisor is held (SIGSTOP) while a client sends a stop and is killed -9."""
    stack.run("up", "-d")
    supervisor = stack.supervisor()
    assert supervisor is not None
    db = next(row["Name"] for row in stack.rows() if row["Service"] == "db")
    os.kill(supervisor, signal.SIGSTOP)
    try:
        with subprocess.Popen([sys.executable, "-c", WAITING_CLIENT, str(stack.run_root / stack.name /
                                                                         "supervisor.sock"), db],
                              stdout=subprocess.PIPE, text=True) as client:
            assert client.stdout is not None
            assert client.stdout.readline().strip() == "sent"
            client.kill()
    finally:
        os.kill(supervisor, signal.SIGCONT)
    stack.run("up", "-d")  # served after the dropped request (the supervisor reads its queue in order)
    deadline = time.monotonic() + 3  # a stop carried out would have ended the container by then
    while time.monotonic() < deadline:
        assert stack.states()["db"] == "running", stack.rows()
        time.sleep(0.3)
    stack.run("down", "-t", "0")
    stack.assert_clean()


STOPPING_DOWN = """
import json, socket, sys
from pathlib import Path
from composer.backends.native.runtime import locks
folder, name = Path(sys.argv[1]), sys.argv[2]
locks.acquire(folder / "lock", timeout=30)  # as down: the project's lock, held until it is killed
sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
sock.connect(str(folder / "supervisor.sock"))
sock.sendall(json.dumps({"op": "stop", "name": name, "grace": 3}).encode() + b"\\n")
print("sent", flush=True)
sock.recv(100)
"""


def test_a_stop_begun_for_a_command_killed_meanwhile_ends_before_the_next_up_looks(stack: Stack) -> None:
    """Found by the soak (``down -t 0`` killed at runtime.remove.renamed): a stop the supervisor had
    begun for the killed ``down`` ended after the next ``up -d`` had seen the container running and
    planned nothing, which left it exited (137). The next holder of the project's lock now waits
    for the requests the supervisor took before it. Made deterministic: a ``down`` stand-in holds
    the lock, asks for a stop with a grace period the container outlasts (its shell is pid 1 and
    ignores SIGTERM, as in Docker) and is killed -9 once the supervisor has sent SIGTERM."""
    stack.run("up", "-d")
    db = next(row["Name"] for row in stack.rows() if row["Service"] == "db")
    folder = stack.run_root / stack.name
    events = folder / "events.jsonl"
    with subprocess.Popen([sys.executable, "-c", STOPPING_DOWN, str(folder), db], stdout=subprocess.PIPE,
                          env=stack.environ, text=True) as down:
        assert down.stdout is not None
        assert down.stdout.readline().strip() == "sent"
        deadline = time.monotonic() + 30
        while not any(json.loads(line)["action"] == "kill" and json.loads(line)["attributes"].get("name") == db
                      for line in events.read_text().splitlines()):
            assert time.monotonic() < deadline, "the supervisor did not begin the stop"
            time.sleep(0.02)
        down.kill()
    stack.run("up", "-d")
    deadline = time.monotonic() + 4  # the begun stop's SIGKILL comes 3 s after its SIGTERM
    while time.monotonic() < deadline:
        assert stack.states()["db"] == "running", stack.rows()
        time.sleep(0.3)
    stack.run("down", "-t", "0")
    stack.assert_clean()
