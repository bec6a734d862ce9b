"""A native container's state as Docker reports it (paused from the cgroup freezer, restarting
from the supervisor, health from health.json), its status text and the ports ``ps`` lists."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.native.errors import error
from composer.backends.native.runtime import cgroups
from composer.backends.native.runtime.supervisor import read_json, restart_wanted, supervise_state
from composer.contract.backend import ContainerState
from composer.units import human_duration

if TYPE_CHECKING:
    from composer.backends.native.projects import Projects
    from composer.backends.native.runtime.api import Runtime
    from composer.contract.observed import PortMapping


NOTICE_SECONDS = 5.0  # an exit older than this that the supervisor did not act on is an exit (none watched it)


def container_state(runtime: Runtime, projects: Projects, project: str, name: str,
                    config: dict[str, Any] | None = None) -> ContainerState:
    """The state Docker would report (paused, restarting and health included)."""
    config = config or runtime.config(project, name)
    run_dir = runtime.run_dir(project, name)
    base = runtime.state(project, name)
    status = base.status
    if status == "running":
        state = read_json(run_dir / "state.json") or {}
        if state.get("cgroup") and cgroups.is_frozen(cgroups.Cgroup.from_json(state["cgroup"])):
            status = "paused"
    elif status in ("exited", "dead", "created") and projects.client(project).pid() is not None:
        # restarting: the supervisor is between the exit and the new start (restarting, set before
        # the backoff and cleared once started: "created" while it spawns), or it has not yet
        # noticed an exit its restart policy will restart. Either way a stop must be planned for
        # it (Docker decides at the exit, so a container is never "exited" on its way back).
        intent = supervise_state(run_dir)
        finished = float((read_json(run_dir / "exit.json") or {}).get("finished") or 0)
        noticing = status != "created" and time.time() - finished < NOTICE_SECONDS
        if intent.get("restarting") or (noticing and restart_wanted(
                config.get("restart"), base.exit_code or 0, int(intent.get("restart_count") or 0),
                bool(intent.get("manual_stop")))):
            status = "restarting"
    health = None
    if config.get("healthcheck") and status in ("running", "paused"):
        health = str((read_json(run_dir / "health.json") or {}).get("status") or "starting")
    exit_code = base.exit_code if status in ("exited", "dead", "restarting") else None
    if status == "restarting" and exit_code is None:  # respawning ("created"): Docker shows the last exit
        exit_code = last_exit_code(config)
    if status == "dead" and exit_code is None:
        exit_code = 137
    return ContainerState(status, health, exit_code, base.oom_killed)


def last_exit_code(config: Mapping[str, Any]) -> int | None:
    """The exit code the store keeps from the container's last run (None before any exit)."""
    from composer.backends.native.runtime.init import store_exit_path  # the monitor's module: only here

    path = store_exit_path(dict(config))
    found = read_json(Path(path)) if path else None
    return int(found["exit_code"]) if found and found.get("exit_code") is not None else None


def status_text(runtime: Runtime, project: str, name: str, state: ContainerState) -> str:
    run_dir = runtime.run_dir(project, name)
    now = time.time()
    if state.status in ("running", "paused"):
        started = float((read_json(run_dir / "state.json") or {}).get("started") or now)
        text = f"Up {human_duration(now - started)}"
        if state.status == "paused":
            return text + " (Paused)"
        if state.health:
            text += " (health: starting)" if state.health == "starting" else f" ({state.health})"
        return text
    if state.status in ("exited", "dead", "restarting"):
        finished = float((read_json(run_dir / "exit.json") or {}).get("finished") or now)
        word = "Restarting" if state.status == "restarting" else "Exited"
        return f"{word} ({state.exit_code}) {human_duration(now - finished)} ago"
    return "Created"


def running_cgroup(runtime: Runtime, project: str, name: str, operation: str) -> cgroups.Cgroup:
    state = read_json(runtime.run_dir(project, name) / "state.json") or {}
    if runtime.state(project, name).status != "running" or not state.get("cgroup"):
        raise error(f"container {name} is not running", operation)
    return cgroups.Cgroup.from_json(state["cgroup"])


def listed_ports(config: Mapping[str, Any], published: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
    """What ``ps`` shows: the published ports, then exposed ones that are not published (as docker)."""
    from composer.contract.observed import PortMapping

    seen = {(port.private_port, port.protocol) for port in published}
    exposed = []
    for entry in config.get("exposed") or ():
        port, _, protocol = str(entry).partition("/")
        if port.isdigit() and (int(port), protocol or "tcp") not in seen:
            exposed.append(PortMapping(int(port), protocol or "tcp"))
    return (*published, *exposed)
