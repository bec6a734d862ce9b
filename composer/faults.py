"""Fault injection: named crash points in the steps that change state, off unless asked for.

``COMPOSER_FAULTS`` (read once, when this module is first imported, or by ``arm``) lists the points to trigger,
comma-separated, each ``<point>:kill`` (SIGKILL of the process that reaches it), or
``<point>:error`` (an OSError(EIO) raised there, as a failing disk or kernel call would), with an
optional probability: ``runtime.create.data-made:kill:0.5``. Every process of composer that
inherits the variable arms its points: the CLI (or library), the project supervisor, the
containers' monitors, the forkserver's children and the DNS daemon; a point is only reached by
the process that runs its step (the registry says which).

Unset, ``point`` is one module-level constant check: nothing else happens, nothing is read.

``COMPOSER_FAULTS_LOG=<file>`` (tests) has each triggered point append ``<point> <action> <pid>``
to that file before it acts, so a test can tell the point was reached and by which process.

``POINTS`` is the registry, the one list of every point with what it interrupts; the tests
enumerate it (tests/integration/native/test_crash_points.py) so that each point has a test, and
``point`` refuses a name that is not in it.
"""

from __future__ import annotations

import errno
import os

__all__ = ["ENABLED", "POINTS", "FaultSpec", "arm", "armed", "check", "environment", "parse", "point"]

# name -> what a crash there interrupts, and in which process it runs
POINTS: dict[str, str] = {
    # the runtime (composer/backends/native/runtime/api.py): create and remove, in the CLI
    "runtime.create.staged":
        "CLI, create: the staging folder (.creating-<pid>-...) is made, nothing in it yet.",
    "runtime.create.data-made":
        "CLI, create: the container's writable layer (store containers/<id>) is made, its config.json "
        "not written: the folder made / config written gap.",
    "runtime.create.config-written":
        "CLI, create: config.json is written in the staging folder, not yet renamed into place.",
    "runtime.create.renamed":
        "CLI, create: the container's folder is in place; the planner has not recorded it.",
    "runtime.remove.cgroup-removed":
        "CLI, remove (mid-teardown): the container is killed and its cgroup gone; its folders remain.",
    "runtime.remove.renamed":
        "CLI, remove (mid-teardown): the folder is renamed to .removing-...; writable layer still there.",
    "runtime.remove.data-removed":
        "CLI, remove (mid-teardown): the writable layer is removed, the .removing- folder is not.",
    # the supervisor (composer/backends/native/runtime/supervisor.py)
    "supervisor.start.received":
        "supervisor, start: the request arrived, manual_stop cleared, nothing spawned.",
    "supervisor.restart.decided":
        "supervisor, restart policy: restarting=true and the count are written, the start not made.",
    # the forkserver's child and the monitor (runtime/spawn.py, runtime/init.py)
    "forkserver.child.forked":
        "forkserver's child (the future monitor), before it runs the container's helper.",
    "monitor.start.state-written":
        "monitor: the container's process runs and state.json is written; the monitor dies, its "
        "container lives on without it.",
    # networks (composer/backends/native/network/manager.py)
    "network.create.bridge-made":
        "CLI, create network: bridge, addresses and iptables rules are made (under the journal "
        ".<bridge>.json.creating), the state file not written.",
    "network.attach.veth-made":
        "supervisor, start: the veth pair is made with its end moved into the container's namespace; "
        "no address, no route yet.",
    "network.remove.bridge-removed":
        "CLI, remove network (mid-teardown): the state is renamed to its journal (.<bridge>.json.removing), "
        "bridge, rules, veths and proxies are gone, the journal is not yet removed.",
    "network.dns.started":
        "CLI, create network: the project's DNS daemon is started; the caller has not checked it.",
    # the image store (composer/backends/native/image/store.py)
    "store.layer.extracting":
        "CLI, pull: mid-layer-extraction (a layer's first entries are unpacked in incoming/).",
    "store.layer.extracted":
        "CLI, pull: a layer is unpacked, its layer.json not written, not renamed into layers/.",
    "store.index.writing":
        "CLI, pull: mid-index-write (images.json's temporary is written and fsynced, not renamed).",
    # the planner's executor (composer/planner/execute.py)
    "executor.operation.started":
        "CLI, up/down: an operation of the plan is about to call the backend.",
    "executor.operation.done":
        "CLI, up/down: an operation of the plan returned; the next ones have not run.",
}


class FaultSpec:
    """One armed point: ``action`` (kill or error) taken with ``probability``."""

    __slots__ = ("action", "probability")

    def __init__(self, action: str, probability: float) -> None:
        self.action = action
        self.probability = probability

    def __repr__(self) -> str:
        return f"FaultSpec({self.action!r}, {self.probability!r})"


def parse(text: str) -> dict[str, FaultSpec]:
    """The points ``text`` (COMPOSER_FAULTS's syntax) arms.

    :raises ValueError: an unknown point or action, or a probability outside [0, 1].
    """
    armed_points: dict[str, FaultSpec] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, _, rest = item.partition(":")
        action, _, chance = rest.partition(":")
        if name not in POINTS:
            raise ValueError(f"COMPOSER_FAULTS: unknown point {name!r}")
        if action not in ("kill", "error"):
            raise ValueError(f"COMPOSER_FAULTS: {name}: the action is kill or error, not {action!r}")
        try:
            probability = float(chance) if chance else 1.0
        except ValueError:
            probability = -1.0
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"COMPOSER_FAULTS: {name}: the probability is a number in [0, 1], not {chance!r}")
        armed_points[name] = FaultSpec(action, probability)
    return armed_points


_TEXT = ""
ENABLED = False
_ARMED: dict[str, FaultSpec] = {}
_LOG = ""
_PROBLEM = ""  # why COMPOSER_FAULTS was refused (then nothing is armed): check() raises it


def arm() -> None:
    """Read COMPOSER_FAULTS (and COMPOSER_FAULTS_LOG) from this process's environment: at import,
    and again in a command server's worker once it has taken its client's environment (the
    server imported this module with its own). A value that does not parse arms nothing and
    is kept for ``check``: importing this module never raises."""
    global _TEXT, ENABLED, _ARMED, _LOG, _PROBLEM
    text = os.environ.get("COMPOSER_FAULTS", "")
    if not text.strip():
        if ENABLED or _PROBLEM:
            _TEXT, ENABLED, _ARMED, _LOG, _PROBLEM = "", False, {}, "", ""
        return
    try:
        armed_points = parse(text)
    except ValueError as error:
        _TEXT, ENABLED, _ARMED, _LOG, _PROBLEM = "", False, {}, "", str(error)
        return
    _TEXT, ENABLED, _ARMED, _PROBLEM = text, True, armed_points, ""
    _LOG = os.environ.get("COMPOSER_FAULTS_LOG", "")


def check() -> None:
    """Refuse a COMPOSER_FAULTS that did not parse (the CLI and the backends' start call this, so
    a bad value stops the command before it changes anything, instead of being ignored).

    :raises composer.errors.UsageError: naming the variable and the part that is wrong.
    """
    if _PROBLEM:
        from composer.errors import UsageError

        raise UsageError(_PROBLEM)


arm()


def environment() -> dict[str, str]:
    """What a helper started with an empty environment (the forkserver, a container's monitor)
    inherits of the faults: nothing unless they are armed."""
    if not ENABLED:
        return {}
    return {"COMPOSER_FAULTS": _TEXT, **({"COMPOSER_FAULTS_LOG": _LOG} if _LOG else {})}


def armed() -> dict[str, FaultSpec]:
    """The points this process armed at start."""
    return dict(_ARMED)


def point(name: str) -> None:
    """A crash point: nothing unless COMPOSER_FAULTS armed it (then SIGKILL, or OSError(EIO)).

    :raises OSError: the point is armed with ``error``.
    """
    if not ENABLED:
        return
    _reached(name)


def _reached(name: str) -> None:
    if name not in POINTS:
        raise ValueError(f"fault point {name!r} is not in composer.faults.POINTS")
    spec = _ARMED.get(name)
    if spec is None:
        return
    if spec.probability < 1.0:
        import random

        if random.random() >= spec.probability:
            return
    if _LOG:
        fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, f"{name} {spec.action} {os.getpid()}\n".encode())
        finally:
            os.close(fd)
    if spec.action == "kill":
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    raise OSError(errno.EIO, f"injected fault at {name}")
