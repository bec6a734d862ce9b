"""The project supervisor: one long-lived process per project that owns its containers.

Files, under ``<run root>/<project>/`` (next to the containers' own directories)::

    supervisor.pid    {"pid", "start"}: the supervisor (start time tells pid reuse apart)
    supervisor.sock   its unix socket: one JSON request line, one JSON answer line
    supervisor.log    its stderr (tracebacks only)
    lock              fcntl lock serialising the commands that change the project (runtime.locks)
    supervisor.lock   fcntl lock serialising the supervisor's launchers
    <container>/supervise.json   {"manual_stop", "restart_count", "restarting"}: restart intent,
                      read-modify-written under <container>/intent.lock (``intent_locked``)
    <container>/health.json      {"status", "failing_streak", "log"}: the healthcheck's results
    events.jsonl      the project's container events (runtime.eventlog): what the supervisor does
                      and sees (start, kill, die, oom, stop, health_status, the probes' exec_*),
                      beside what the CLI does (create, destroy, rename, pause, unpause)

``Client.ensure`` starts it when no live one answers: a fresh interpreter that double-forks,
calls setsid and PR_SET_CHILD_SUBREAPER, binds the socket, writes the pid file and answers
"ready" on a pipe, so the CLI can exit while everything keeps running. The supervisor starts
every container itself (``start``), so each container's monitor (composer.backends.native.
runtime.init: logs as JSON lines, exit code with 128+signal, OOM) is reparented to it; it
watches each monitor through a pidfd, applies the restart policy (no, always, on-failure[:N],
unless-stopped; Docker's backoff: 100 ms doubling to 1 min, reset after 10 s of running), runs
the healthchecks in the container's namespaces and cgroup (nsexec) and records them in
health.json, and reaps whatever is reparented to it. It exits when it has nothing left to
watch. Stop and kill also go through it (they set ``manual_stop`` first, so no restart follows).
A request read after its sender died is dropped; one begun before is finished, and a command that
takes the project's lock from a holder killed holding it waits for those first (``settle``).

If it dies, even by kill -9, the containers keep running (their monitors are reparented to init
and still write logs and exit files); the next command notices the dead pid file, reports what
is still running (``on_lost``) and starts a new supervisor, which adopts the running containers
by watching their monitors' pidfds. Nothing here needs the supervisor to be alive to read state,
and ``down`` works without it.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from composer import faults
from composer.backends.native.runtime import bootstrap, eventlog, locks
from composer.backends.native.runtime.api import checked_name, private_project_dir, project_dir
from composer.backends.native.runtime.init import process_start_time, state_json
from composer.backends.native.runtime.spawn import Forkserver
from composer.owner import alive

PID_FILE = "supervisor.pid"
SOCKET = "supervisor.sock"
LOG = "supervisor.log"
LOCK = "lock"
START_LOCK = "supervisor.lock"
INTENT_LOCK = "intent.lock"
IDLE_EXIT = 2.0
BACKOFF_START, BACKOFF_MAX, BACKOFF_RESET = 0.1, 60.0, 10.0


class SupervisorError(Exception):
    """The supervisor could not be started or did not answer (one line)."""


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def supervise_state(run_dir: Path) -> dict[str, Any]:
    return read_json(run_dir / "supervise.json") or {"manual_stop": False, "restart_count": 0, "restarting": False}


@contextlib.contextmanager
def intent_locked(run_dir: Path) -> Iterator[None]:
    """Hold the container's restart-intent lock (``<run dir>/intent.lock``): every read-modify-write
    of supervise.json happens under it, and so do the decisions that read it and act (restart
    after a check of ``manual_stop``; stop after setting it), so that a stop is never lost
    between a restart's check and its start. Not re-entrant (flock on a new fd each time).
    Raises FileNotFoundError when the container's folder is gone."""
    with locks.held(run_dir / INTENT_LOCK):
        yield


def write_intent(run_dir: Path, state: dict[str, Any]) -> None:
    """Write supervise.json (under ``intent_locked``)."""
    state_json(str(run_dir / "supervise.json"), state)


def update_intent(run_dir: Path, **values: Any) -> dict[str, Any]:
    """supervise.json with ``values`` changed, under its lock; the new state. Nothing is written
    for a container whose folder is gone."""
    try:
        with intent_locked(run_dir):
            state = {**supervise_state(run_dir), **values}
            write_intent(run_dir, state)
    except FileNotFoundError:
        return {**supervise_state(run_dir), **values}
    return state


def restart_wanted(policy: dict[str, Any] | None, exit_code: int, restart_count: int, manual_stop: bool) -> bool:
    """Docker's restart decision after the container's process ended with ``exit_code``."""
    if manual_stop or not policy:
        return False
    name = policy.get("name") or "no"
    if name in ("always", "unless-stopped"):
        return True
    if name == "on-failure" and exit_code != 0:
        maximum = int(policy.get("max_attempts") or 0)
        return maximum <= 0 or restart_count < maximum
    return False


def health_probe_args(test: list[str]) -> list[str]:
    kind, rest = test[0], list(test[1:])
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", " ".join(rest)]
    return rest


# --- the client side (the CLI) --------------------------------------------------------------------


class Client:
    """Finds (or starts) the supervisor of ``project`` and sends it requests."""

    def __init__(self, run_root: Path, project: str, store_root: Path, cgroup_parent: str, *,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.run_root = run_root
        self.project = project
        self.store_root = store_root
        self.cgroup_parent = cgroup_parent
        self.folder = project_dir(run_root, project)
        self.on_lost = on_lost

    def pid(self) -> int | None:
        """The live supervisor's pid, or None."""
        data = read_json(self.folder / PID_FILE)
        if data is None:
            return None
        pid = int(data.get("pid") or 0)
        if pid and alive(pid, data.get("start")):
            return pid
        return None

    def _lost(self) -> None:
        """A pid file without its process: the supervisor died. Report, clean its files."""
        data = read_json(self.folder / PID_FILE)
        if data is None:
            return
        running = []
        for child in sorted(self.folder.iterdir()) if self.folder.is_dir() else ():
            state = read_json(child / "state.json") if child.is_dir() else None
            if state and not (child / "exit.json").exists() and process_start_time(int(state.get("pid") or 0)) == \
                    state.get("pid_start"):
                running.append(child.name)
        for name in (PID_FILE, SOCKET):
            with contextlib.suppress(FileNotFoundError):
                (self.folder / name).unlink()
        if self.on_lost is not None:
            still = ", ".join(running) if running else "nothing"
            self.on_lost(f"the supervisor of project {self.project} (pid {data.get('pid')}) died; "
                         f"still running: {still}")

    def ensure(self) -> int:
        """The live supervisor's pid, starting one if needed.

        :raises SupervisorError: it could not be started.
        """
        pid = self.pid()
        if pid is not None:
            return pid
        private_project_dir(self.run_root, self.project)
        # one launcher at a time (threads and processes); the file is removed by an exiting
        # supervisor, so through runtime.locks (a waiter on a removed file starts over)
        with locks.held(self.folder / START_LOCK):
            pid = self.pid()
            if pid is not None:
                return pid
            self._lost()
            return self._launch()

    def _launch(self) -> int:
        ready_r, ready_w = os.pipe()
        args = json.dumps({"run_root": str(self.run_root), "project": self.project,
                           "store_root": str(self.store_root), "cgroup_parent": self.cgroup_parent})
        log_fd = os.open(self.folder / LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        with open(log_fd, "ab") as log:
            try:
                process = subprocess.Popen(bootstrap.command("supervisor", args, str(ready_w), site=True),
                                           pass_fds=(ready_w,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                           stderr=log, start_new_session=True, cwd="/")
            finally:
                os.close(ready_w)
        process.wait()
        answer = b""
        with os.fdopen(ready_r, "rb") as pipe:
            answer = pipe.read()
        message = read_message(answer)
        if not message.get("ok"):
            raise SupervisorError(f"cannot start the supervisor of project {self.project}: "
                                  f"{message.get('error') or 'it exited without answering'}")
        return int(message["pid"])

    def call(self, op: str, **arguments: Any) -> dict[str, Any]:
        """Send one request (starting the supervisor if needed); its answer.

        :raises SupervisorError: no answer (twice), or an error answer.
        """
        last: Exception | None = None
        for _attempt in range(3):
            self.ensure()
            try:
                data = self._exchange(op, arguments)
            except OSError as exc:
                last = exc
                time.sleep(0.05)
                continue
            if not data:
                last = ConnectionResetError("no answer")
                time.sleep(0.05)
                continue
            message = read_message(data)
            if not message.get("ok"):
                raise SupervisorError(str(message.get("error") or "unknown error"))
            return message
        raise SupervisorError(f"the supervisor of project {self.project} does not answer: {last}")

    def notify(self, op: str, **arguments: Any) -> dict[str, Any] | None:
        """Like call, but only to a live supervisor (None when there is none)."""
        if self.pid() is None:
            return None
        try:
            data = self._exchange(op, arguments)
        except OSError:
            return None
        return read_message(data) if data else None

    def _exchange(self, op: str, arguments: dict[str, Any]) -> bytes:
        """One request line out, the answer line back (empty when the supervisor hung up).

        :raises OSError: no supervisor listens.
        """
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(self.folder / SOCKET))
            sock.sendall(json.dumps({"op": op, **arguments}).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        return data


def read_message(data: bytes) -> dict[str, Any]:
    try:
        message = json.loads(data.decode(errors="replace").strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "error": data.decode(errors="replace").strip()[-200:] or None}
    return message if isinstance(message, dict) else {"ok": False}


# --- the supervisor process ---------------------------------------------------------------------


class Supervisor:
    def __init__(self, run_root: Path, project: str, store_root: Path, cgroup_parent: str) -> None:
        from composer.backends.native.image.store import ImageStore
        from composer.backends.native.runtime.api import Runtime

        self.runtime = Runtime(ImageStore(store_root), run_root=run_root, cgroup_parent=cgroup_parent)
        self.runtime.forkserver = Forkserver()  # starts cost a fork, not an interpreter
        self.project = project
        self.folder = project_dir(run_root, project)
        self.lock = threading.RLock()
        self.epoch: dict[str, int] = {}
        self.wakeups: dict[str, threading.Event] = {}
        # name -> epochs of its live watcher threads (a start's follow and a forget can cross:
        # each watcher removes only its own epoch, so none is left behind to keep us alive)
        self.watchers: dict[str, set[int]] = {}
        self.protected: set[int] = set()
        self.popen_lock = threading.Lock()
        self.exit_lock = threading.Lock()  # record_exit's check and its events, together
        self.last_busy = time.monotonic()
        self.connections = 0
        # the requests being served, by the order they were accepted in (``op_settle`` waits for
        # those before its own); ``served`` is told each time one ends
        self.accepted = 0
        self.serving: set[int] = set()
        self.served = threading.Condition(self.lock)
        self.exit_now = False
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)  # wakes serve() at once
        self.died: dict[str, tuple[Any, Any]] = {}  # name -> the run (pid, start) whose die is recorded

    # files ------------------------------------------------------------------------------------

    def run_dir(self, name: str) -> Path:
        return self.runtime.run_dir(self.project, name)

    def update(self, name: str, **values: Any) -> dict[str, Any]:
        return update_intent(self.run_dir(name), **values)

    def event(self, name: str, action: str, **attributes: str) -> None:
        """Record one event about container ``name`` (runtime.eventlog); best effort."""
        try:
            config = self.runtime.config(self.project, name)
        except Exception:
            return  # removed meanwhile
        eventlog.record(self.folder, action, config, **attributes)

    def record_exit(self, name: str) -> None:
        """The ``oom`` (when the kernel's OOM killer ended it) and ``die`` events of the container's
        last run, once per run: the watcher and a stop both get here."""
        run_dir = self.run_dir(name)
        state = read_json(run_dir / "state.json") or {}
        ended = read_json(run_dir / "exit.json")
        if ended is None:
            return
        run = (state.get("pid"), state.get("pid_start"))
        # held until the events are written: a stop that finds the watcher recording this run's die
        # waits for it, so its own "stop" comes after "die", as dockerd's (CI once saw them swapped)
        with self.exit_lock:
            with self.lock:
                if self.died.get(name) == run:
                    return
                self.died[name] = run
            if ended.get("oom_killed"):
                self.event(name, "oom")
            self.event(name, "die", exitCode=str(int(ended.get("exit_code") or 0)))

    # operations ---------------------------------------------------------------------------------

    def bump(self, name: str) -> int:
        with self.lock:
            self.epoch[name] = self.epoch.get(name, 0) + 1
            old = self.wakeups.get(name)
            if old is not None:
                old.set()
            self.wakeups[name] = threading.Event()
            return self.epoch[name]

    def current(self, name: str, epoch: int) -> bool:
        with self.lock:
            return self.epoch.get(name) == epoch

    def op_start(self, name: str) -> dict[str, Any]:
        epoch = self.bump(name)
        self.update(name, manual_stop=False, restarting=False)
        faults.point("supervisor.start.received")
        pid = self._start(name)
        self.event(name, "start")
        self._follow(name, epoch)
        return {"pid": pid}

    def _start(self, name: str) -> int:
        config = self.runtime.config(self.project, name, "start")
        if config.get("healthcheck"):
            state_json(str(self.run_dir(name) / "health.json"), {"status": "starting", "failing_streak": 0, "log": []})
        from composer.backends.native import namespaces
        from composer.backends.native.network import settings as networking

        # the namespaces first: a container X that is not running fails before any network is set up
        return self.runtime.start(self.project, name, **namespaces.start_options(config),
                                  **networking.start_options(config))

    @property
    def watched(self) -> list[str]:
        """The names some watcher thread follows (call it holding ``self.lock``)."""
        return sorted(name for name, epochs in self.watchers.items() if epochs)

    def _follow(self, name: str, epoch: int) -> None:
        with self.lock:
            if self.epoch.get(name) != epoch:
                return  # forgotten (down) while this start ran: nothing to follow
            self.watchers.setdefault(name, set()).add(epoch)
        threading.Thread(target=self._watch, args=(name, epoch), daemon=True).start()
        config = self.runtime.config(self.project, name)
        if config.get("healthcheck"):
            threading.Thread(target=self._health, args=(name, epoch, config["healthcheck"]), daemon=True).start()

    def op_stop(self, name: str, signal_number: int | None = None, grace: float | None = None) -> dict[str, Any]:
        # under the intent lock from manual_stop to the signal: a restart that checked manual_stop
        # before has started by now (and is stopped here), one that checks after sees it
        with intent_locked(self.run_dir(name)):
            write_intent(self.run_dir(name), {**supervise_state(self.run_dir(name)),
                                              "manual_stop": True, "restarting": False})
            with self.lock:
                event = self.wakeups.get(name)
            if event is not None:
                event.set()  # a pending restart is abandoned
            was_running = self.runtime.state(self.project, name).status == "running"
            state = self.runtime.stop(self.project, name, sig=signal_number, grace=grace,
                                      on_signal=lambda number: self.event(name, "kill", signal=str(number)))
        if was_running:  # Docker's stop of a stopped container records nothing
            self.record_exit(name)
            self.event(name, "stop")
        return {"status": state.status, "exit_code": state.exit_code}

    def op_kill(self, name: str, signal_number: int) -> dict[str, Any]:
        with intent_locked(self.run_dir(name)):
            write_intent(self.run_dir(name), {**supervise_state(self.run_dir(name)),
                                              "manual_stop": True, "restarting": False})
            with self.lock:
                event = self.wakeups.get(name)
            if event is not None:
                event.set()
            self.event(name, "kill", signal=str(signal_number))
            self.runtime.kill(self.project, name, signal_number)
        return {}

    def op_forget(self, name: str) -> dict[str, Any]:
        self.bump(name)
        with self.lock:
            self.watchers.pop(name, None)
        return {}

    def op_settle(self, number: int) -> dict[str, Any]:
        """Answer once every request accepted before this one (the ``number``-th) has been served.
        Asked by a command that takes the project's lock from one killed holding it: a stop that
        killed command had begun (its sender alive when it was read, so not dropped) ends before
        the new command looks, instead of stopping a container it has just seen running (found
        by the soak: ``down -t 0`` killed midway, the next ``up -d`` left containers exited).
        The requests still queued then are read after their sender died, and dropped."""
        with self.served:
            self.served.wait_for(lambda: not any(other < number for other in self.serving))
        return {}

    def handle(self, request: dict[str, Any], number: int = 0) -> dict[str, Any]:
        """One request's answer (``number``: its place in the order of acceptance). A name is
        checked before anything uses it (it becomes a path).

        :raises BackendError: an invalid container name (``../x``).
        """
        op = request.get("op")
        if op == "ping":
            return {"pid": os.getpid()}
        name = checked_name("container", str(request["name"])) if op in ("start", "stop", "kill", "forget") else ""
        if op == "start":
            return self.op_start(name)
        if op == "stop":
            return self.op_stop(name, request.get("signal"), request.get("grace"))
        if op == "kill":
            return self.op_kill(name, int(request["signal"]))
        if op == "forget":
            return self.op_forget(name)
        if op == "settle":
            return self.op_settle(number)
        if op == "exit-if-empty":
            with self.lock:
                self.exit_now = not self.runtime.containers(self.project)
            return {"exiting": self.exit_now}
        if op == "status":
            with self.lock:
                return {"watched": self.watched}
        raise ValueError(f"unknown request {op!r}")

    # watching -----------------------------------------------------------------------------------

    def _watch(self, name: str, epoch: int) -> None:
        from composer.backends.native.runtime.api import open_pidfd, wait_pidfd

        try:
            backoff = BACKOFF_START
            while self.current(name, epoch):
                state = read_json(self.run_dir(name) / "state.json") or {}
                started = time.monotonic()
                fd = open_pidfd(state.get("monitor"), state.get("monitor_start"))
                if fd is not None:
                    try:
                        wait_pidfd(fd, None)
                    finally:
                        os.close(fd)
                if not self.current(name, epoch):
                    return
                try:
                    final = self.runtime.state(self.project, name)
                    if final.status == "dead":
                        self.runtime._reap_lost(self.project, name, self.runtime.config(self.project, name))
                        final = self.runtime.state(self.project, name)
                    config = self.runtime.config(self.project, name)
                except Exception:
                    return  # removed meanwhile
                if final.status == "running":
                    continue
                self.record_exit(name)
                run_dir = self.run_dir(name)
                with intent_locked(run_dir):
                    intent = supervise_state(run_dir)
                    count = int(intent.get("restart_count", 0))
                    if not restart_wanted(config.get("restart"), final.exit_code or 0, count,
                                          bool(intent.get("manual_stop"))):
                        return
                    write_intent(run_dir, {**intent, "restarting": True, "restart_count": count + 1})
                faults.point("supervisor.restart.decided")
                if time.monotonic() - started >= BACKOFF_RESET:
                    backoff = BACKOFF_START
                delay = max(backoff, float((config.get("restart") or {}).get("delay") or 0))
                backoff = min(backoff * 2, BACKOFF_MAX)
                with self.lock:
                    event = self.wakeups.get(name)
                if event is not None and event.wait(delay):
                    pass
                # the check of manual_stop and the start under one lock (a stop takes it too)
                with intent_locked(run_dir):
                    intent = supervise_state(run_dir)
                    if not self.current(name, epoch) or intent.get("manual_stop"):
                        write_intent(run_dir, {**intent, "restarting": False})
                        return
                    try:
                        self._start(name)
                        self.event(name, "start")
                    except Exception as exc:
                        sys.stderr.write(f"restart of {name} failed: {exc}\n")
                        write_intent(run_dir, {**supervise_state(run_dir), "restarting": False})
                        return
                    write_intent(run_dir, {**supervise_state(run_dir), "restarting": False})
                config = self.runtime.config(self.project, name)
                if config.get("healthcheck"):
                    threading.Thread(target=self._health, args=(name, epoch, config["healthcheck"]),
                                     daemon=True).start()
        except FileNotFoundError:
            return  # removed meanwhile (its folder, and the intent lock in it, went)
        finally:
            with self.lock:
                self.watchers.get(name, set()).discard(epoch)
                if not self.watchers.get(name, True):
                    del self.watchers[name]
                self.last_busy = time.monotonic()

    # healthchecks -------------------------------------------------------------------------------

    def _health(self, name: str, epoch: int, check: dict[str, Any]) -> None:
        from composer.backends.native.runtime import nsexec

        run_dir = self.run_dir(name)
        state = read_json(run_dir / "state.json") or {}
        pid, pid_start = state.get("pid"), state.get("pid_start")
        began = time.monotonic()
        interval = float(check.get("interval") or 30.0)
        # Docker 25+ probes every start_interval (5 s by default) during the start period, even when
        # the interval is shorter; earlier engines used the interval. The shorter of the two is the
        # soonest a starting service can be seen healthy, which is what depends_on and --wait want.
        start_interval = float(check.get("start_interval") or min(interval, 5.0))
        start_period = float(check.get("start_period") or 0.0)
        timeout = float(check.get("timeout") or 30.0)
        retries = int(check.get("retries") or 3)
        streak = 0
        status = "starting"
        log: list[dict[str, Any]] = []
        with self.lock:
            wakeup = self.wakeups.get(name) or threading.Event()
        while True:
            in_start = time.monotonic() - began < start_period and status == "starting"
            if wakeup.wait(start_interval if in_start else interval):
                return
            if not self.current(name, epoch) or not pid or process_start_time(int(pid)) != pid_start:
                return
            if self._paused(state):
                continue
            config = self.runtime.config(self.project, name)
            probe = health_probe_args(list(check["test"]))
            exec_cfg = nsexec.exec_config(config, state, probe)
            # Docker runs a probe as an exec, and records it so (exec_create, exec_start, exec_die)
            exec_id, command = eventlog.new_exec_id(), eventlog.exec_command(probe)
            eventlog.record(self.folder, f"exec_create: {command}", config, execID=exec_id)
            eventlog.record(self.folder, f"exec_start: {command}", config, execID=exec_id)
            begun = time.time()
            with self.popen_lock:
                process = nsexec.run(exec_cfg, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                self.protected.add(process.pid)
            try:
                try:
                    output, _ = process.communicate(timeout=timeout)
                    code = process.returncode
                except subprocess.TimeoutExpired:
                    process.terminate()
                    try:
                        process.wait(1.0)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()
                    output = f"Health check exceeded timeout ({timeout:g}s)".encode()
                    code = -1
            finally:
                with self.popen_lock:
                    self.protected.discard(process.pid)
            eventlog.record(self.folder, "exec_die", config, execID=exec_id, exitCode=str(code))
            in_start = time.monotonic() - began < start_period
            before = status
            if code == 0:
                streak, status = 0, "healthy"
            elif not in_start:
                streak += 1
                if streak >= retries:
                    status = "unhealthy"
            log = [*log, {"start": begun, "end": time.time(), "exit_code": code,
                          "output": output.decode(errors="replace")[-4096:]}][-5:]
            if not self.current(name, epoch):
                return
            state_json(str(run_dir / "health.json"), {"status": status, "failing_streak": streak, "log": log})
            if status != before:  # as moby's handleProbeResult: on a change only
                eventlog.record(self.folder, f"health_status: {status}", config)

    @staticmethod
    def _paused(state: dict[str, Any]) -> bool:
        from composer.backends.native.runtime import cgroups

        return bool(state.get("cgroup")) and cgroups.is_frozen(cgroups.Cgroup.from_json(state["cgroup"]))

    # the process ----------------------------------------------------------------------------------

    def _reaper(self) -> None:
        """Reap whatever is reparented to us (monitors, orphans), leaving our own subprocesses
        (healthcheck helpers, whose exit codes matter) to their Popen objects."""
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOWAIT)
            except ChildProcessError:
                time.sleep(0.2)
                continue
            except InterruptedError:
                continue
            if info is None:
                continue
            with self.popen_lock:
                mine = info.si_pid in self.protected
            if mine:
                time.sleep(0.02)
                continue
            with contextlib.suppress(ChildProcessError):
                os.waitpid(info.si_pid, 0)

    def _serve_one(self, conn: socket.socket, number: int) -> None:
        try:
            with conn:
                data = b""
                while not data.endswith(b"\n"):
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    data += chunk
                if not peer_alive(conn):
                    return  # its command was killed while the request waited (found by the soak): it never came
                try:
                    answer = {"ok": True, **self.handle(json.loads(data), number)}
                except Exception as exc:
                    text = " ".join(str(exc).split()) or type(exc).__name__
                    answer = {"ok": False, "error": text}
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(answer).encode() + b"\n")
        finally:
            with self.lock:
                self.connections -= 1
                self.serving.discard(number)
                self.served.notify_all()
                self.last_busy = time.monotonic()
                if self.exit_now and not self.connections:
                    self.wake()

    def wake(self) -> None:
        """Let serve() look at once (exit-if-empty: the client waits for the exit)."""
        with contextlib.suppress(BlockingIOError):
            os.write(self.wake_w, b"x")

    def _clean_up(self) -> None:
        """Our files go (unless a newer supervisor owns them); with the project's last container
        gone, its directory too."""
        if (read_json(self.folder / PID_FILE) or {}).get("pid") != os.getpid():
            return
        with contextlib.suppress(FileNotFoundError):
            (self.folder / SOCKET).unlink()
        # a lock file goes only by its holder (runtime.locks); the project's own lock (LOCK) is left
        # to the command that holds it (Projects.release removes it with the last container)
        with contextlib.suppress(OSError, locks.LockBusyError):
            locks.release(locks.acquire(self.folder / START_LOCK, timeout=1.0), self.folder / START_LOCK, unlink=True)
        # the pid file last: a release waiting for it to go then finds nothing else of ours
        with contextlib.suppress(FileNotFoundError):
            (self.folder / PID_FILE).unlink()
        if not self.runtime.containers(self.project):
            # the project is empty and no command holds its lock (a release that gave up waiting
            # for us left it): its lock file goes, by us as its holder (runtime.locks), and the log
            with contextlib.suppress(OSError, locks.LockBusyError):
                fd = locks.acquire(self.folder / LOCK, timeout=0)
                empty = not self.runtime.containers(self.project)
                if empty:
                    for leftover in (LOG, eventlog.FILE, eventlog.ROTATED):
                        with contextlib.suppress(FileNotFoundError):
                            (self.folder / leftover).unlink()
                locks.release(fd, self.folder / LOCK, unlink=empty)
        with contextlib.suppress(OSError):
            self.folder.rmdir()  # only when empty: no container, no lock (its command released it)

    def adopt(self) -> None:
        """Watch the project's running containers (after a supervisor before us died)."""
        for name in self.runtime.containers(self.project):
            try:
                if self.runtime.state(self.project, name).status == "running":
                    self._follow(name, self.bump(name))
            except Exception:
                continue

    def serve(self, ready_fd: int) -> None:
        path = self.folder / SOCKET
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        os.fchmod(listener.fileno(), 0o600)  # bind creates the file with this mode, whatever the umask
        listener.bind(str(path))
        os.chmod(path, 0o600)
        listener.listen(64)
        listener.setblocking(False)
        state_json(str(self.folder / PID_FILE), {"pid": os.getpid(), "start": process_start_time(os.getpid())})
        threading.Thread(target=self._reaper, daemon=True).start()
        self.adopt()
        os.write(ready_fd, json.dumps({"ok": True, "pid": os.getpid()}).encode() + b"\n")
        os.close(ready_fd)
        while True:
            ready, _, _ = select.select([listener.fileno(), self.wake_r], [], [], 0.25)
            if self.wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self.wake_r, 64)
            conn: socket.socket | None = None
            if listener.fileno() in ready:
                with contextlib.suppress(BlockingIOError):
                    conn, _ = listener.accept()
            if conn is None:
                with self.lock:
                    idle = not self.watched and not self.connections and (
                        self.exit_now or time.monotonic() - self.last_busy > IDLE_EXIT)
                    if idle or not self.folder.is_dir():
                        # Stop answering first: a client that connects now retries with a new one.
                        listener.close()
                        if self.runtime.forkserver is not None:
                            self.runtime.forkserver.close()
                        self._clean_up()
                        return
                continue
            if not trusted_peer(conn):
                conn.close()
                continue
            conn.settimeout(None)
            with self.lock:
                self.connections += 1
                self.accepted += 1
                number = self.accepted
                self.serving.add(number)
                self.last_busy = time.monotonic()
            threading.Thread(target=self._serve_one, args=(conn, number), daemon=True).start()


def trusted_peer(conn: socket.socket) -> bool:
    """Whether the process at the other end of ``conn`` may give orders: root, or the user the
    supervisor runs as (SO_PEERCRED; the socket is 0600 besides)."""
    credentials = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)  # pid, uid, gid
    return int.from_bytes(credentials[4:8], sys.byteorder) in (0, os.getuid())


def peer_alive(conn: socket.socket) -> bool:
    """Whether the process that connected (SO_PEERCRED) still runs, not a zombie. A stop a killed
    ``down`` had queued, carried out after the next ``up`` looked, stopped what that ``up`` had
    just seen running: as a request its client never got to send, it is dropped. (One that has
    begun is finished: a stop is not undone half-way.)"""
    pid = int.from_bytes(conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)[:4], sys.byteorder)
    if pid <= 0:
        return True  # not known (another pid namespace): served
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2:data.rindex(b")") + 3] not in (b"Z", b"X")


def _prctl_subreaper() -> None:
    from composer.backends.native.runtime import linux

    linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)


def main(argv: list[str]) -> int:
    args = json.loads(argv[1])
    ready_fd = int(argv[2])
    if os.fork() != 0:
        os._exit(0)  # the launcher reaps this one at once
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    try:
        _prctl_subreaper()
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.close(devnull)
        supervisor = Supervisor(Path(args["run_root"]), args["project"], Path(args["store_root"]),
                                args["cgroup_parent"])
    except BaseException as exc:
        os.write(ready_fd, json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
        os._exit(1)
    try:
        supervisor.serve(ready_fd)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(ready_fd, json.dumps({"ok": False, "error": str(exc)}).encode() + b"\n")
        import traceback

        traceback.print_exc()
        os._exit(1)
    os._exit(0)
