"""Attached ``up``: multiplexed, prefixed logs, exit statuses, cascading stops and Ctrl-C.

Everything runs in one event loop. ``up`` itself (engine.up), the log followers, the discovery
of new containers and the signal handling (anyio.open_signal_receiver) are tasks of one task
group, so a Ctrl-C during ``up`` or while following is handled in one place:

* the first SIGINT/SIGTERM prints v2's "Gracefully Stopping..." line, cancels ``up`` and the
  followers and stops the project in reverse dependency order (reconcile_stop + execute), then
  exits 130;
* a second one, while that stop runs, kills (SIGKILL) the project's running containers.

The pure pieces, v2's prefix and colour rules (LogFormatter, colour_enabled), the choice of the
attached services (attached_services) and the exit-code rules of ``--abort-on-container-exit``,
``--abort-on-container-failure`` and ``--exit-code-from`` (ExitTracker), are unit-tested
without an engine.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, TextIO

import anyio
from anyio.abc import TaskGroup

from composer.errors import BackendError, ComposerError, UsageError
from composer.events import Event, EventSink, EventStatus

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ContainerState, LogLine
    from composer.contract.observed import ObservedContainer
    from composer.spec.models import Project

# v2's rainbow (cmd/formatter/colors.go): cyan, yellow, green, magenta, blue, then bold ones.
RAINBOW = ("36", "33", "32", "35", "34", "36;1", "33;1", "32;1", "35;1", "34;1")
RESET = "\x1b[0m"
RESET_LINE = "\r\x1b[K"  # v2 starts each status line with it, colour or not
INTERRUPTED = 130
GRACEFUL_STOP = "Gracefully Stopping... press Ctrl+C again to force"
ABORTING = "Aborting on container exit..."
_STOPPED = frozenset({"exited", "dead"})


class Cascade(Enum):
    """What an exiting container does to the others."""

    NONE = "none"
    STOP = "stop"  # --abort-on-container-exit, --exit-code-from
    FAIL = "fail"  # --abort-on-container-failure


# --- pure pieces -------------------------------------------------------------------------------


def colour_enabled(no_color: bool, stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """Whether log prefixes are coloured: not with ``--no-color``, COMPOSE_ANSI=never or NO_COLOR;
    always with COMPOSE_ANSI=always; else only on a terminal."""
    env = os.environ if environ is None else environ
    if no_color:
        return False
    ansi = env.get("COMPOSE_ANSI", "auto").lower()
    if ansi == "never":
        return False
    if ansi == "always":
        return True
    if env.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def display_name(container_name: str, project_name: str, service_name: str, number: int) -> str:
    """The name v2 prints: ``<service>-<n>`` for default names, a custom container_name as is."""
    if container_name == f"{project_name}-{service_name}-{number}":
        return f"{service_name}-{number}"
    return container_name


def unreadable_warning(container_name: str, reason: str) -> str:
    """v2's warning for a container whose logs the engine cannot read (the none driver)."""
    return f'WARN[0000] Can\'t retrieve logs for "{container_name}": {reason}\n'


class LogFormatter:
    """v2's log lines: ``<name padded> | text``, one colour per container in order of
    registration, the padding the longest name registered so far plus one."""

    def __init__(self, *, color: bool, prefix: bool = True, timestamps: bool = False) -> None:
        self.color = color
        self.prefix = prefix
        self.timestamps = timestamps
        self.width = 0
        self.colours: dict[str, str] = {}

    def register(self, name: str) -> None:
        if name not in self.colours:
            self.colours[name] = RAINBOW[len(self.colours) % len(RAINBOW)]
        self.width = max(self.width, len(name) + 1)

    def _paint(self, name: str, text: str) -> str:
        if not self.color:
            return text
        self.register(name)
        return f"\x1b[{self.colours[name]}m{text}{RESET}"

    def line(self, name: str, text: str, timestamp: str | None = None) -> str:
        self.register(name)
        body = f"{timestamp} {text}" if self.timestamps and timestamp else text
        if not self.prefix:
            return body + "\n"
        return self._paint(name, f"{name.ljust(self.width)} | ") + body + "\n"

    def status(self, name: str, message: str) -> str:
        """``<name> exited with code N``, in the container's colour."""
        return self._paint(name, f"{RESET_LINE}{name} {message}\n")


class ExitTracker:
    """v2's exit-code rules for attached ``up``.

    Without a cascade, ``up`` exits 0 whatever the containers exit with (Ctrl-C aside). With
    ``--abort-on-container-exit`` the first container to exit aborts the others, and its exit
    code is ``up``'s; with ``--abort-on-container-failure`` the first non-zero exit does. With
    ``--exit-code-from SERVICE``, that service's (last) exit code is ``up``'s.
    """

    def __init__(self, cascade: Cascade = Cascade.NONE, exit_code_from: str | None = None) -> None:
        self.cascade = cascade
        self.exit_code_from = exit_code_from
        self.exit_code = 0
        self.aborting = False

    def exited(self, service_name: str, exit_code: int) -> bool:
        """Record an exit; True when it starts the abort (stop everything)."""
        triggers = self.cascade is Cascade.STOP or (self.cascade is Cascade.FAIL and exit_code != 0)
        start_abort = triggers and not self.aborting
        if start_abort:
            self.aborting = True
        if triggers and self.exit_code_from is None:
            self.exit_code_from = service_name
        if self.exit_code_from == service_name:
            self.exit_code = exit_code
        return start_abort


def cascade_of(abort_on_exit: bool, abort_on_failure: bool, exit_code_from: str | None) -> Cascade:
    """The cascade the flags ask for (``--exit-code-from`` implies ``--abort-on-container-exit``).

    :raises UsageError: both abort flags, as v2 rejects them.
    """
    if abort_on_exit and abort_on_failure:
        raise UsageError("--abort-on-container-failure cannot be combined with --abort-on-container-exit")
    if abort_on_failure:
        return Cascade.FAIL
    if abort_on_exit or exit_code_from:
        return Cascade.STOP
    return Cascade.NONE


def attached_services(
    project: Project, requested: Sequence[str] = (), *, attach: Sequence[str] = (),
    no_attach: Sequence[str] = (), attach_dependencies: bool = False,
) -> list[str]:
    """The services whose logs ``up`` shows, as v2 picks them.

    ``--attach`` names them outright (they must be part of the ``up``); otherwise the services
    named on the command line (all when none), with their dependencies under
    ``--attach-dependencies``, less ``--no-attach`` and the services marked ``attach: false``.

    :raises UsageError: an ``--attach`` service is not part of the ``up``.
    """
    from composer.spec.graph import service_graph

    graph = service_graph(project)
    included = set(project.services)
    if requested:
        included = set()
        pending = list(requested)
        while pending:
            name = pending.pop()
            if name in included or name not in graph:
                continue
            included.add(name)
            pending.extend(graph.dependencies(name))
    if attach:
        missing = [name for name in attach if name not in included]
        if missing:
            raise UsageError(f"cannot attach to services not included in up: {', '.join(missing)}")
        chosen = set(attach)
    else:
        chosen = included if (attach_dependencies or not requested) else set(requested) & included
        chosen = {name for name in chosen if project.services[name].attach is not False}
    chosen -= set(no_attach)
    return [name for name in graph.topological_order() if name in chosen]


def epoch_key(seconds: float) -> tuple[str, int]:
    """timestamp_key of a Unix time."""
    whole = int(seconds)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)), int((seconds - whole) * 1e9)


def timestamp_key(timestamp: str | None) -> tuple[str, int] | None:
    """An orderable key for the engine's RFC 3339 timestamps, whose fraction drops trailing zeros."""
    if not timestamp:
        return None
    main, dot, rest = timestamp.partition(".")
    if not dot:
        return main.rstrip("Z"), 0
    digits = "".join(ch for ch in rest if ch.isdigit())
    return main, int((digits + "000000000")[:9])


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error inside nested task-group wrappers (one task fails at a time here)."""
    error: BaseException = group
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


# --- the session -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AttachOptions:
    services: tuple[str, ...]
    """The attached services (attached_services)."""
    cascade: Cascade = Cascade.NONE
    exit_code_from: str | None = None
    timeout: float | None = None
    """``-t``: grace seconds of the stop (Ctrl-C, cascade)."""
    color: bool = False
    prefix: bool = True
    timestamps: bool = False
    parallel: int | None = None
    poll_interval: float = 1.0
    """How often new containers (scale, restart) are looked for."""
    watching: bool = False
    """``up --watch``: follow until Ctrl-C, not until every container exited (a watch ``restart``
    stops a container for a moment; it is followed again once it runs)."""


class AttachedUp:
    """One attached ``up``: run ``start`` (engine.up), then follow the attached containers until
    they have all exited, handling cascades and signals. ``run`` returns the exit code."""

    def __init__(
        self, project: Project, backend: Backend, options: AttachOptions, sink: EventSink, *,
        start: Callable[[], Awaitable[object]] | None = None, out: TextIO | None = None, err: TextIO | None = None,
    ) -> None:
        self.project = project
        self.backend = backend
        self.options = options
        self.sink = sink
        self.start = start
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.formatter = LogFormatter(color=options.color, prefix=options.prefix, timestamps=options.timestamps)
        self.tracker = ExitTracker(options.cascade, options.exit_code_from)
        self.unreadable: set[str] = set()  # containers whose logs the engine cannot read: warned once
        self.followed: set[str] = set()
        self.live: set[str] = set()
        self.all_exited = anyio.Event()
        self.abort_done: anyio.Event | None = None
        self.interrupted = False
        self.forced = False
        self.kill_done = anyio.Event()
        self.main_scope = anyio.CancelScope()
        self.since = epoch_key(0)
        self._followers: TaskGroup | None = None

    async def run(self) -> int:
        # Lines older than this ``up`` are history: like v2, which attaches to a container's
        # output rather than replaying its logs, show only what comes from now on.
        self.since = epoch_key(time.time() - 0.5)
        try:
            with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._watch_signals, signals)
                    code = await self._main()
                    if self.interrupted:
                        await self._graceful_stop()
                        code = INTERRUPTED
                    group.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            raise _first(group) from None
        return code

    async def _main(self) -> int:
        with self.main_scope:
            if self.start is not None:
                await self.start()
            async with anyio.create_task_group() as followers:
                self._followers = followers
                found = await self._discover()
                names = sorted(display_name(c.name, self.project.name, c.service_name, c.number) for c in found)
                self._write(self.out, f"Attaching to {', '.join(names)}\n")
                for container in found:
                    self._follow_new(followers, container)
                followers.start_soon(self._discovery_loop, followers)
                await self.all_exited.wait()
                if self.abort_done is not None:
                    await self.abort_done.wait()
                followers.cancel_scope.cancel()
            return self.tracker.exit_code
        return INTERRUPTED

    # --- signals ---------------------------------------------------------------------------------

    async def _watch_signals(self, signals: AsyncIterator[signal.Signals]) -> None:
        async for _ in signals:
            if not self.interrupted:
                self.interrupted = True
                self._write(self.out, GRACEFUL_STOP + "\n")
                self.main_scope.cancel()
            elif not self.forced:
                self.forced = True
                await self._kill_all()
                self.kill_done.set()

    async def _graceful_stop(self) -> None:
        from composer import engine
        from composer.contract.options import StopOptions

        if not self.forced:
            await engine.stop(self.project, self.backend, StopOptions(timeout=self.options.timeout), self.sink,
                              parallel=self.options.parallel)
        if self.forced:
            await self.kill_done.wait()

    async def _kill_all(self) -> None:
        """SIGKILL every running container of the project, at once; errors are ignored (it may
        have stopped meanwhile)."""
        from composer import engine
        from composer.contract.backend import ContainerRef

        try:
            running = await engine.containers(self.project.name, self.backend)
        except ComposerError:
            return

        async def kill(container: ObservedContainer) -> None:
            resource_id = f"container:{container.name}"
            self.sink.emit(Event(resource_id, EventStatus.WORKING, "Killing"))
            try:
                await self.backend.kill_container(ContainerRef(container.container_id, container.name),
                                                  signal="SIGKILL")
            except BackendError:
                return
            self.sink.emit(Event(resource_id, EventStatus.DONE, "Killed"))

        async with anyio.create_task_group() as group:
            for container in running:
                if not container.oneoff:
                    group.start_soon(kill, container)

    # --- following -------------------------------------------------------------------------------

    async def _discover(self) -> list[ObservedContainer]:
        """The attached services' containers not followed yet (one-off ``run`` containers aside)."""
        from composer import engine

        found = await engine.containers(self.project.name, self.backend, include_stopped=True)
        wanted = set(self.options.services)
        found = [c for c in found if c.service_name in wanted and not c.oneoff and c.container_id not in self.followed]
        if self.options.watching:  # a stopped one is followed again once it runs
            found = [c for c in found if c.state not in _STOPPED]
        return found

    async def _discovery_loop(self, followers: TaskGroup) -> None:
        while True:
            await anyio.sleep(self.options.poll_interval)
            try:
                found = await self._discover()
            except ComposerError:
                continue
            for container in found:
                self._follow_new(followers, container)

    def _follow_new(self, followers: TaskGroup, container: ObservedContainer) -> None:
        self.followed.add(container.container_id)
        self.live.add(container.container_id)
        name = display_name(container.name, self.project.name, container.service_name, container.number)
        self.formatter.register(name)
        followers.start_soon(self._follow, container, name)

    async def _follow(self, container: ObservedContainer, name: str) -> None:
        from composer.contract.backend import ContainerRef

        ref = ContainerRef(container.container_id, container.name)
        last: tuple[str, int] | None = self.since
        state: ContainerState | None = None
        while True:
            try:
                async with aclosing(self.backend.logs([ref], follow=True)) as lines:  # type: ignore[type-var]
                    async for line in lines:
                        last = self._print_line(name, line, last)
                state = await self.backend.container_state(ref)
            except BackendError:
                state = None  # removed (down, recreate): it is gone
                break
            if state.status in _STOPPED:
                break
            await anyio.sleep(0.2)  # restarting, or not started yet: follow it again
        self._exited(container, name, 0 if state is None else state.exit_code or 0, announce=state is not None)

    def _print_line(self, name: str, line: LogLine, last: tuple[str, int] | None) -> tuple[str, int] | None:
        if line.stream == "warning":
            if line.container_name not in self.unreadable:
                self.unreadable.add(line.container_name)
                self._write(self.err, unreadable_warning(line.container_name, line.text))
            return last
        key = timestamp_key(line.timestamp)
        if key is not None and last is not None and key <= last:
            return last  # already shown before a restart
        stream = self.err if line.stream == "stderr" else self.out
        self._write(stream, self.formatter.line(name, line.text, line.timestamp))
        return key or last

    def _exited(self, container: ObservedContainer, name: str, exit_code: int, *, announce: bool) -> None:
        if announce:
            self._write(self.out, self.formatter.status(name, f"exited with code {exit_code}"))
        self.live.discard(container.container_id)
        if self.options.watching and self.options.cascade is Cascade.NONE:
            self.followed.discard(container.container_id)
            return
        if self.tracker.exited(container.service_name, exit_code):
            self.abort_done = anyio.Event()
            self._write(self.err, f"\x1b[31m\x1b[1m{ABORTING}{RESET}\n" if self.options.color else ABORTING + "\n")
            self._spawn_abort()
        if not self.live:
            self.all_exited.set()

    def _spawn_abort(self) -> None:
        """Stop the whole project (cascade), in the followers' group: _main cancels that group
        only once this stop has finished."""
        assert self.abort_done is not None
        assert self._followers is not None
        done = self.abort_done

        async def abort() -> None:
            from composer import engine
            from composer.contract.options import StopOptions

            try:
                await engine.stop(self.project, self.backend, StopOptions(timeout=self.options.timeout), self.sink,
                                  parallel=self.options.parallel)
            finally:
                done.set()

        self._followers.start_soon(abort)

    @staticmethod
    def _write(stream: TextIO, text: str) -> None:
        stream.write(text)
        stream.flush()
