"""Soak of the native backend under faults (issue 17): N randomized cycles on one small project,
each followed by a convergence check, and ``composer system check`` at the end.

The project: ``web`` (2 replicas at first, both networks, a published port on 127.0.0.1),
``db`` (one network), ``worker`` (``restart: always``), on two networks. Each cycle does one of:

- ``up``: ``up -d``; ``down``: ``down -t 0``; ``restart``: ``restart -t 0`` of the project or of a
  service; ``scale``: web's replicas (1-3) written to the file, ``up -d --scale web=N``;
  ``recreate``: a service's environment changed in the file (its config hash changes), ``up -d``;
- ``crash-point``: ``up -d`` (from down, or with a recreation) or ``down -t 0`` run with
  ``COMPOSER_FAULTS=<point>:kill[:p]`` (composer.faults: the CLI, the supervisor, a monitor or the
  forkserver's child dies there); every process still armed by that command is killed -9 after it;
- ``kill-cli``: ``up -d``/``down``/``restart`` killed -9 at a random moment (0-2 s);
- ``kill-container``: kill -9 of a random container's process;
- ``kill-supervisor``: kill -9 of the project's supervisor.

Converged means: a following ``up -d`` exits 0 and ``ps -a --format json`` shows, for each
service, exactly its replicas, each running, with the current environment generation. At the end
(``down -v``), ``composer system check`` must find nothing. Prints cycles done, faults injected
(by kind; a crash point counts when it was reached: COMPOSER_FAULTS_LOG), convergence failures
(with the cycle's action and the evidence) and residue; exits 1 on any failure or residue.

Everything is the soak's own: a temporary folder with the store (COMPOSER_ROOT), the run root
(COMPOSER_RUN_ROOT), the command server's folder, a cgroup parent ``composer-soak-<hex>`` and the
project ``soak<hex>``. It cleans up even when interrupted (Ctrl-C, SIGTERM): ``down -v``, the
project's processes, ``system check --fix``, the server, the folder.

The image is dockerd's ``composer-test/busybox`` (built when missing), loaded into the soak's store.

Usage: .venv/bin/python bench/soak.py [--cycles N] [--seed S] [--keep-going]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402

LOOP = "sh -c 'trap \"exit 0\" TERM; while true; do sleep 0.2; done'"
COMMAND_TIMEOUT = 180.0
SERVICES = ("web", "db", "worker")
# crash points by the command that reaches them (composer.faults.POINTS; the image store's points
# need a pull, which the soak does not do: its image is loaded once)
UP_POINTS = ("runtime.create.staged", "runtime.create.data-made", "runtime.create.config-written",
             "runtime.create.renamed", "supervisor.start.received", "forkserver.child.forked",
             "monitor.start.state-written", "network.attach.veth-made", "executor.operation.started",
             "executor.operation.done")
UP_FROM_DOWN_POINTS = (*UP_POINTS, "network.create.bridge-made", "network.dns.started")
DOWN_POINTS = ("runtime.remove.cgroup-removed", "runtime.remove.renamed", "runtime.remove.data-removed",
               "network.remove.bridge-removed", "executor.operation.started", "executor.operation.done")


class Interrupted(Exception):
    """SIGTERM (or SIGHUP): stop the cycles and clean up, as for Ctrl-C."""


class Soak:
    def __init__(self, folder: Path, image: str, rng: random.Random) -> None:
        tag = uuid.uuid4().hex[:8]
        self.folder = folder
        self.image = image
        self.rng = rng
        self.project = f"soak{tag}"
        self.parent = f"composer-soak-{tag}"
        self.workdir = folder / "project"
        self.workdir.mkdir()
        self.faults_log = folder / "faults.log"
        self.environ = {**{k: v for k, v in os.environ.items()
                           if not k.startswith(("COMPOSER_", "DOCKER_")) and k != "PYTHONDONTWRITEBYTECODE"},
                        "COMPOSER_ROOT": str(folder / "store"), "COMPOSER_RUN_ROOT": str(folder / "run"),
                        "COMPOSER_CGROUP_PARENT": self.parent, "COMPOSER_BACKEND": "native",
                        "COMPOSER_SERVER_DIR": str(folder / "servers"), "NO_COLOR": "1",
                        "COMPOSER_REGISTRY_CONFIG": str(folder / "no-registries.json"),
                        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
        self.replicas = 2
        self.generation = dict.fromkeys(SERVICES, 0)
        self.faults: Counter[str] = Counter()
        self.actions: Counter[str] = Counter()
        self.failures: list[str] = []

    # --- the project ------------------------------------------------------------------------

    def write(self) -> None:
        def env(service: str) -> str:
            return f"environment: {{SOAK_GENERATION: '{self.generation[service]}'}}"

        (self.workdir / "compose.yaml").write_text(textwrap.dedent(f"""\
            services:
              web:
                image: {self.image}
                command: {json.dumps(LOOP)}
                {env("web")}
                networks: [front, back]
                ports: ["127.0.0.1::8080"]
                deploy: {{replicas: {self.replicas}}}
              db:
                image: {self.image}
                command: {json.dumps(LOOP)}
                {env("db")}
                networks: [back]
              worker:
                image: {self.image}
                command: {json.dumps(LOOP)}
                {env("worker")}
                restart: always
                networks: [back]
            networks:
              front:
              back:
            """))

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "composer", "--progress", "quiet", "-p", self.project, *args]

    def run(self, *args: str, environ: dict[str, str] | None = None,
            timeout: float = COMMAND_TIMEOUT) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(self.command(*args), cwd=self.workdir, env={**self.environ, **(environ or {})},
                                  capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as expired:
            return subprocess.CompletedProcess(expired.cmd, -1, str(expired.stdout or ""),
                                               f"timed out after {timeout:.0f} s")

    # --- the project's processes ------------------------------------------------------------------

    def supervisor(self) -> int | None:
        try:
            data = json.loads((self.folder / "run" / self.project / "supervisor.pid").read_text())
            pid = int(data.get("pid") or 0)
        except (OSError, ValueError, AttributeError):
            return None
        return pid if pid and start_time(pid) == data.get("start") else None

    def container_pids(self) -> list[int]:
        """The processes in the containers' cgroups (v2 or v1's pids hierarchy)."""
        pids: set[int] = set()
        for base in (Path("/sys/fs/cgroup") / self.parent, Path("/sys/fs/cgroup/pids") / self.parent,
                     Path("/sys/fs/cgroup/unified") / self.parent):
            for procs in base.glob("*/cgroup.procs") if base.is_dir() else ():
                with contextlib.suppress(OSError, ValueError):
                    pids.update(int(line) for line in procs.read_text().split())
        return sorted(pids)

    def armed_processes(self, value: str) -> list[int]:
        """composer's processes that inherited this COMPOSER_FAULTS (supervisor, monitors,
        forkserver, DNS daemon): they would go on injecting faults into later cycles."""
        needle = f"COMPOSER_FAULTS={value}\0".encode()
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if needle in (proc / "environ").read_bytes():
                        found.append(int(proc.name))
        return found

    def project_processes(self) -> list[int]:
        """Every process whose command line names the soak's run root (supervisor, monitors, DNS)."""
        needle = str(self.folder).encode()
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit() and int(proc.name) != os.getpid():
                with contextlib.suppress(OSError):
                    if needle in (proc / "cmdline").read_bytes():
                        found.append(int(proc.name))
        return found

    # --- actions ----------------------------------------------------------------------------------

    def act(self) -> str:
        action = self.rng.choice(("up", "down", "restart", "scale", "recreate", "crash-point", "crash-point",
                                  "kill-cli", "kill-cli", "kill-container", "kill-supervisor"))
        self.actions[action] += 1
        detail = getattr(self, "_" + action.replace("-", "_"))()
        return f"{action} {detail}".strip()

    def _up(self) -> str:
        self.run("up", "-d")
        return ""

    def _down(self) -> str:
        self.run("down", "-t", "0")
        return ""

    def _restart(self) -> str:
        target = self.rng.choice(((), *((s,) for s in SERVICES)))
        self.run("restart", "-t", "0", *target)
        return " ".join(target)

    def _scale(self) -> str:
        self.replicas = self.rng.randint(1, 3)
        self.write()
        self.run("up", "-d", "--scale", f"web={self.replicas}")
        return f"web={self.replicas}"

    def _recreate(self) -> str:
        service = self.rng.choice(SERVICES)
        self.generation[service] += 1
        self.write()
        self.run("up", "-d")
        return service

    def _crash_point(self) -> str:
        kind = self.rng.choice(("up-from-down", "up-recreate", "down"))
        points: tuple[str, ...]
        args: tuple[str, ...]
        if kind == "up-from-down":
            self.run("down", "-t", "0")
            points, args = UP_FROM_DOWN_POINTS, ("up", "-d")
        elif kind == "up-recreate":
            service = self.rng.choice(SERVICES)
            self.generation[service] += 1
            self.write()
            points, args = UP_POINTS, ("up", "-d")
        else:
            self.run("up", "-d")
            points, args = DOWN_POINTS, ("down", "-t", "0")
        point = self.rng.choice(points)
        value = f"{point}:kill" + self.rng.choice(("", ":0.5"))
        before = self.faults_log.read_text().count("\n") if self.faults_log.exists() else 0
        self.run(*args, environ={"COMPOSER_FAULTS": value, "COMPOSER_FAULTS_LOG": str(self.faults_log)})
        reached = self.faults_log.read_text().splitlines()[before:] if self.faults_log.exists() else []
        if reached:
            self.faults[f"crash point {point}"] += 1
        for pid in self.armed_processes(value):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                self.faults["kill -9 of an armed helper"] += 1
        return f"{' '.join(args)} {value}{'' if reached else ' (not reached)'}"

    def _kill_cli(self) -> str:
        args = self.rng.choice((("up", "-d"), ("down", "-t", "0"), ("restart", "-t", "0")))
        if args[0] == "up" and self.rng.random() < 0.5:  # with work to interrupt: a recreation
            service = self.rng.choice(SERVICES)
            self.generation[service] += 1
            self.write()
        delay = self.rng.uniform(0.0, 2.0)
        process = subprocess.Popen(self.command(*args), cwd=self.workdir, env=self.environ,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(delay)
            finished = True
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            finished = False
            self.faults["kill -9 of the CLI"] += 1
        return f"{' '.join(args)} after {delay:.2f} s{' (had finished)' if finished else ''}"

    def _kill_container(self) -> str:
        pids = self.container_pids()
        if not pids:
            return "(no container process)"
        pid = self.rng.choice(pids)
        first = self.first_process_of(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            self.faults["kill -9 of a container process"] += 1
        if first is not None:  # its PID 1: the container ends once its monitor has written exit.json
            self.settle(first, pid)
        return f"{pid}{' (PID 1)' if first else ''}"

    def first_process_of(self, pid: int) -> Path | None:
        """The run folder of the container whose PID 1 ``pid`` is (None: another of its processes)."""
        for state in (self.folder / "run" / self.project).glob("*/state.json"):
            with contextlib.suppress(OSError, ValueError):
                if json.loads(state.read_text()).get("pid") == pid:
                    return state.parent
        return None

    def settle(self, run_dir: Path, pid: int, timeout: float = 10.0) -> None:
        """Wait (bounded) until the container's end is on record, or it runs again (a restart
        policy): until then it is "running" to any observer (Docker's too, until containerd's exit
        event), and a following ``up -d`` rightly leaves it alone."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (run_dir / "exit.json").exists():
                return
            with contextlib.suppress(OSError, ValueError):
                if json.loads((run_dir / "state.json").read_text()).get("pid") != pid:
                    return
            time.sleep(0.05)

    def _kill_supervisor(self) -> str:
        pid = self.supervisor()
        if pid is None:
            return "(no supervisor)"
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            self.faults["kill -9 of the supervisor"] += 1
        return str(pid)

    # --- convergence --------------------------------------------------------------------------------

    def converged(self) -> str | None:
        """None when ``up -d`` then ``ps`` show the desired state; else what is wrong."""
        up = self.run("up", "-d")
        if up.returncode != 0:
            return f"up -d exited {up.returncode}: {up.stderr.strip()[-600:]}"
        deadline = time.monotonic() + 10.0
        while True:
            ps = self.run("ps", "-a", "--format", "json")
            if ps.returncode != 0:
                return f"ps exited {ps.returncode}: {ps.stderr.strip()[-600:]}"
            rows = parse_rows(ps.stdout)
            # a restart policy's restart is due after its back-off (100 ms, doubling): it is not up's
            if not any(row.get("State") == "restarting" for row in rows) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expected = {"web": self.replicas, "db": 1, "worker": 1}
        seen = Counter(str(row.get("Service")) for row in rows)
        problems = []
        if dict(seen) != expected:
            problems.append(f"containers {dict(seen)}, expected {expected}")
        problems += [f"{row.get('Name')} is {row.get('State')} ({row.get('Status')})" for row in rows
                     if row.get("State") != "running"]
        return "; ".join(problems) or None

    def check(self) -> list[str]:
        result = self.run("system", "check")
        lines = [line for line in result.stdout.splitlines() if line.strip()]
        if result.returncode not in (0, 1) or (result.returncode == 1 and not lines):
            lines.append(f"system check exited {result.returncode}: {result.stderr.strip()[-400:]}")
        return lines

    def cleanup(self) -> list[str]:
        """down -v, the project's processes, system check --fix; what was left to fix."""
        for _ in range(2):
            self.run("down", "-v", "-t", "0", environ={"COMPOSER_SERVER": "0"})
        for pid in self.project_processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return self.run("system", "check", "--fix", environ={"COMPOSER_SERVER": "0"}).stdout.splitlines()


def start_time(pid: int) -> int | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


def parse_rows(text: str) -> list[dict[str, Any]]:
    text = text.strip()
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [row for row in rows if isinstance(row, dict)]


def load_image(environ: dict[str, str], image: str) -> None:
    if image == TEST_IMAGE:  # a fresh machine has not built it yet (the test suite builds it too)
        from composer.backends.docker.client import connect, resolve_endpoint

        api = connect(resolve_endpoint(os.environ), timeout=120)
        ensure_busybox_image(api)
        api.close()
    save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "image", "load"], stdin=save.stdout,
                   env=environ, check=True, stdout=subprocess.DEVNULL)
    save.wait()


def unmount_under(folder: Path) -> None:
    """Anything still mounted under the soak's folder (deepest first), before it is removed."""
    with contextlib.suppress(OSError):
        points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
        for point in sorted((p for p in points if p.startswith(str(folder) + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_cgroups(parent: str) -> None:
    for base in Path("/sys/fs/cgroup").glob(f"**/{parent}") if Path("/sys/fs/cgroup").is_dir() else ():
        for child in sorted(base.glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                child.rmdir()


def on_signal(signum: int, frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cycles", type=int, default=200, help="randomized cycles (default 200)")
    parser.add_argument("--seed", type=int, default=None, help="the random seed (default: from the clock)")
    parser.add_argument("--image", default=TEST_IMAGE, help="dockerd's image to load and run")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("soak: run as root (the native backend needs it)")
    seed = args.seed if args.seed is not None else int(time.time())
    folder = Path(tempfile.mkdtemp(prefix="composer-soak-"))
    soak = Soak(folder, args.image, random.Random(seed))
    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, on_signal)
    print(f"soak: {args.cycles} cycles, seed {seed}, project {soak.project}, folder {folder}", flush=True)
    started = time.monotonic()
    done = 0
    residue: list[str] = []
    interrupted = ""
    try:
        load_image(soak.environ, args.image)
        soak.write()
        if soak.run("up", "-d").returncode != 0 or soak.converged() is not None:
            raise SystemExit("soak: the project does not come up without faults")
        for cycle in range(1, args.cycles + 1):
            action = soak.act()
            problem = soak.converged()
            if problem is not None:
                soak.failures.append(f"cycle {cycle} ({action}): {problem}")
                print(f"  FAILED {soak.failures[-1]}", flush=True)
                again = soak.converged()  # does it converge on a second try?
                if again is not None:
                    soak.failures.append(f"cycle {cycle}, second up -d: {again}")
            done = cycle
            if cycle % 10 == 0 or cycle == args.cycles:
                print(f"  {cycle} cycles, {sum(soak.faults.values())} faults, {len(soak.failures)} failures, "
                      f"{time.monotonic() - started:.0f} s", flush=True)
        down = soak.run("down", "-v", "-t", "0")
        if down.returncode != 0:
            soak.failures.append(f"final down -v exited {down.returncode}: {down.stderr.strip()[-400:]}")
        time.sleep(0.5)  # the supervisor's and DNS daemon's own exit after down
        residue = soak.check()
    except (KeyboardInterrupt, Interrupted) as stop:
        interrupted = str(stop) or "SIGINT"
    finally:
        elapsed = time.monotonic() - started
        for number in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(number, signal.SIG_IGN)  # the cleanup runs to its end
        fixed = soak.cleanup()
        from composer.cli.server import stop_servers

        stop_servers(str(folder / "servers"))
        unmount_under(folder)
        remove_cgroups(soak.parent)
        shutil.rmtree(folder, ignore_errors=True)
    per_cycle = elapsed / done if done else 0.0
    print(f"cycles done: {done} of {args.cycles} (seed {seed})" + (f", interrupted by {interrupted}" if interrupted
                                                                    else ""))
    print(f"actions: {', '.join(f'{k} {v}' for k, v in sorted(soak.actions.items()))}")
    print(f"faults injected: {sum(soak.faults.values())} "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(soak.faults.items()))})")
    print(f"convergence failures: {len(soak.failures)}")
    for failure in soak.failures:
        print(f"  {failure}")
    print(f"residue (system check after down -v): {len(residue)}")
    for line in residue:
        print(f"  {line}")
    if fixed:
        print(f"left for the cleanup's system check --fix: {len(fixed)}")
    print(f"wall time: {elapsed:.0f} s ({per_cycle:.1f} s a cycle; 1,000 cycles: ~{per_cycle * 1000 / 60:.0f} min)")
    return 1 if soak.failures or residue or interrupted or done < args.cycles else 0


if __name__ == "__main__":
    sys.exit(main())
