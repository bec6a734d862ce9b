"""composer as a library: a typed Python API over the engine, for scripts and test suites.

    import composer

    with composer.Project("tests/stack") as stack:          # up --wait; always down -v
        host, port = stack.port("web", 8080)
        result = stack.exec("web", ["cat", "/etc/hostname"])

``Project`` is synchronous (each call runs its own event loop, so it must not be used from
inside one); ``AsyncProject`` is its twin for anyio (asyncio or trio) code. Both load the
project once, with the CLI's options, and raise only composer.errors.ComposerError subclasses.
They never print and never exit.

Stacks brought up here carry an owner label (composer.owner.Owner: boot id, pid, start time),
so that ``remove_stale_stacks`` can find those whose process is gone (a run killed with -9).
"""

from __future__ import annotations

import io
import os
import shlex
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, NamedTuple, TypeVar

import anyio

from composer import labels
from composer.contract.backend import LogLine
from composer.errors import ComposerError, NotFoundError, WaitTimeoutError
from composer.owner import Owner

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.contract.observed import ObservedContainer
    from composer.spec.models import Project as ProjectModel

__all__ = [
    "AsyncProject",
    "Container",
    "ExecResult",
    "HostPort",
    "LogLine",
    "PortBinding",
    "Project",
    "aremove_stale_stacks",
    "remove_stale_stacks",
]

T = TypeVar("T")
PathLike = str | os.PathLike[str]


# --- records ---------------------------------------------------------------------------------------


class HostPort(NamedTuple):
    """Where a container port is published: ``host`` as the engine reports it (``0.0.0.0`` for
    every interface), and the port. ``str()`` gives what ``docker compose port`` prints."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def address(self) -> tuple[str, int]:
        """A (host, port) to connect to: the wildcard addresses become loopback ones."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(self.host, self.host)
        return host, self.port


@dataclass(frozen=True, slots=True)
class PortBinding:
    """A container port, and where it is published (``host_port`` None: exposed only)."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str | None = None
    host_port: int | None = None


@dataclass(frozen=True, slots=True)
class Container:
    """One container of the project, as ``ps`` lists it."""

    container_id: str
    name: str
    service: str
    number: int
    state: str
    """created, running, paused, restarting, exited or dead."""
    health: str | None = None
    """starting, healthy or unhealthy; None without a healthcheck."""
    exit_code: int | None = None
    image: str = ""
    ports: tuple[PortBinding, ...] = ()

    @property
    def running(self) -> bool:
        return self.state == "running"


@dataclass(frozen=True, slots=True)
class ExecResult:
    """What a command run with ``exec`` did: its exit code and output (decoded as UTF-8)."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def _container(found: ObservedContainer) -> Container:
    ports = tuple(PortBinding(p.private_port, p.protocol, p.host_ip, p.host_port) for p in found.ports)
    return Container(found.container_id, found.name, found.service_name, found.number, found.state, found.health,
                     found.exit_code, found.image, ports)


# --- the operations, shared by both twins --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stack:
    """What both twins hold: the loaded model, and whether up labels it with this process as owner."""

    model: ProjectModel
    owned: bool

    def owned_model(self) -> ProjectModel:
        """The model whose services carry the owner label (it is part of the config hash, so a
        stack taken over by another process is recreated under its new owner)."""
        if not self.owned:
            return self.model
        from composer.spec.models.scalars import FrozenDict

        value = Owner.current().label()
        services = {key: service.model_copy(update={"labels": FrozenDict({**service.labels, labels.OWNER: value})})
                    for key, service in self.model.services.items()}
        return self.model.model_copy(update={"services": FrozenDict(services)})


def _names(services: str | Sequence[str] | None) -> tuple[str, ...]:
    if services is None:
        return ()
    return (services,) if isinstance(services, str) else tuple(services)


def _pull_policy(pull: bool | str | None) -> str | None:
    if pull is True:
        return "always"
    if pull is False:
        return "never"
    return pull


async def _up(stack: _Stack, backend: Backend, services: tuple[str, ...], *, wait: bool, wait_seconds: float | None,
              build: bool | None, pull: bool | str | None, force_recreate: bool, remove_orphans: bool) -> None:
    from composer import engine
    from composer.contract.options import UpOptions

    options = UpOptions(services=services, wait=wait, wait_timeout=wait_seconds, build=build, pull=_pull_policy(pull),
                        force_recreate=force_recreate, remove_orphans=remove_orphans)
    try:
        await engine.up(stack.owned_model(), backend, options)
    except WaitTimeoutError as exc:
        if wait_seconds is None:
            raise
        raise WaitTimeoutError(f"application not healthy after {wait_seconds:g}s", failures=exc.failures) from exc


async def _down(stack: _Stack, backend: Backend, *, volumes: bool, grace: float | None,
                remove_orphans: bool) -> None:
    from composer import engine
    from composer.contract.options import DownOptions

    options = DownOptions(remove_orphans=remove_orphans, remove_volumes=volumes, timeout=grace)
    await engine.down(stack.model.name, stack.model, backend, options)


async def _stop(stack: _Stack, backend: Backend, services: tuple[str, ...], grace: float | None) -> None:
    from composer import engine
    from composer.contract.options import StopOptions

    await engine.stop(stack.model, backend, StopOptions(services, grace))


async def _start(stack: _Stack, backend: Backend, services: tuple[str, ...]) -> None:
    from composer import engine

    await engine.start(stack.model, backend, services)


async def _restart(stack: _Stack, backend: Backend, services: tuple[str, ...], grace: float | None) -> None:
    from composer import engine

    await engine.restart(stack.model, backend, services, stop_timeout=grace)


async def _ps(stack: _Stack, backend: Backend, services: tuple[str, ...], include_stopped: bool) -> list[Container]:
    from composer import engine

    found = await engine.containers(stack.model.name, backend, include_stopped=include_stopped)
    return [_container(c) for c in found if not services or c.service_name in services]


async def _port(stack: _Stack, backend: Backend, service: str, container_port: int, protocol: str,
                index: int) -> HostPort:
    from composer import engine

    container = await engine.service_container(stack.model.name, stack.model, backend, service, index)
    for port in container.ports:
        if port.private_port == container_port and port.protocol == protocol and port.host_port is not None:
            return HostPort(port.host_ip or "0.0.0.0", port.host_port)
    published = ", ".join(f"{p.host_port}/{p.protocol}" for p in container.ports if p.host_port is not None)
    message = f"no port {container_port}/{protocol} for container {container.name}"
    raise NotFoundError(f"{message}: {published}" if published else message, backend_name=backend.name,
                        operation="port")


async def _exec(stack: _Stack, backend: Backend, service: str, command: str | Sequence[str], *, user: str | None,
                workdir: str | None, environment: Mapping[str, str] | None, privileged: bool,
                index: int) -> ExecResult:
    from composer import engine
    from composer.contract.backend import ExecSpec, Streams

    argv = tuple(shlex.split(command)) if isinstance(command, str) else tuple(command)
    if not argv:
        raise ComposerError("exec needs a command")
    spec = ExecSpec(argv, user=user, workdir=workdir, environment=dict(environment or {}), privileged=privileged,
                    tty=False, interactive=False)
    stdout, stderr = io.BytesIO(), io.BytesIO()
    code = await engine.exec_(stack.model.name, stack.model, backend, service, spec, Streams(stdout, stderr),
                              index=index)
    return ExecResult(code or 0, stdout.getvalue().decode("utf-8", "replace"),
                      stderr.getvalue().decode("utf-8", "replace"))


async def _logs(stack: _Stack, backend: Backend, services: tuple[str, ...], *, follow: bool,
                tail: int | None) -> AsyncGenerator[LogLine, None]:
    from composer import engine
    from composer.contract.backend import ContainerRef

    for name in services:
        stack.model.service(name)
    found = await engine.containers(stack.model.name, backend, include_stopped=True)
    refs = [ContainerRef(c.container_id, c.name) for c in found if not services or c.service_name in services]
    if not refs:
        return
    async for line in backend.logs(refs, follow=follow, tail=tail):
        yield line


async def _collect(lines: AsyncIterator[LogLine]) -> list[LogLine]:
    return [line async for line in lines]


def _make_backend(name: str | None) -> Backend:
    from composer.backends.select import make_backend

    return make_backend(name)


async def aremove_stale_stacks(backend: Backend | str | None = None) -> list[str]:
    """Remove (containers, networks and volumes) every stack whose owner label names a process
    that is gone (see composer.owner); returns their project names. Stacks without the label
    (started by the CLI, or with ``owned=False``) are never touched.

    :raises ComposerError: stacks could not be removed (each is tried).
    """
    from composer import engine
    from composer.contract.options import DownOptions

    engine_backend = _make_backend(backend) if backend is None or isinstance(backend, str) else backend
    removed: list[str] = []
    errors: list[str] = []
    try:
        for summary in await engine.projects(engine_backend, include_stopped=True):
            owner = Owner.parse(summary.owner) if summary.owner else None
            if owner is None or not owner.is_gone():
                continue
            options = DownOptions(remove_orphans=True, remove_volumes=True, timeout=0)
            try:
                await engine.down(summary.name, None, engine_backend, options)
            except ComposerError as exc:
                errors.append(f"{summary.name}: {exc}")
            else:
                removed.append(summary.name)
    finally:
        if engine_backend is not backend:
            await engine_backend.aclose()
    if errors:
        raise ComposerError("could not remove stale stacks:\n" + "\n".join(errors))
    return removed


def remove_stale_stacks(backend: str | None = None) -> list[str]:
    """``aremove_stale_stacks`` for synchronous code."""
    return anyio.run(aremove_stale_stacks, backend)


def _load(path: PathLike | None, files: Sequence[PathLike], project_name: str | None, profiles: Sequence[str],
          env_files: Sequence[PathLike], environment: Mapping[str, str] | None) -> ProjectModel:
    from composer.spec import load_project
    from composer.spec.options import ProjectOptions

    working_directory = None
    file_names = [os.fspath(file) for file in files]
    if path is not None:
        if os.path.isdir(path):
            working_directory = os.path.abspath(path)
        else:
            file_names.insert(0, os.fspath(path))
    merged = {**os.environ, **environment} if environment is not None else None
    options = ProjectOptions(files=file_names, project_name=project_name, env_files=[os.fspath(f) for f in env_files],
                             profiles=list(profiles), environment=merged, working_directory=working_directory)
    return load_project(options)


# --- the twins -------------------------------------------------------------------------------------------


class _Base:
    def __init__(
        self, path: PathLike | None = None, *, files: Sequence[PathLike] = (), project_name: str | None = None,
        profiles: Sequence[str] = (), env_files: Sequence[PathLike] = (), environment: Mapping[str, str] | None = None,
        backend: str | Backend | None = None, owned: bool = True,
    ) -> None:
        self._stack = _Stack(_load(path, files, project_name, profiles, env_files, environment), owned)
        if backend is None or isinstance(backend, str):
            from composer.backends.select import choose_backend

            self._backend_name: str | None = choose_backend(backend).name
            self._given: Backend | None = None
        else:
            self._backend_name, self._given = None, backend

    @property
    def name(self) -> str:
        """The project name (containers are ``<name>-<service>-<n>``)."""
        return self._stack.model.name

    def config(self) -> ProjectModel:
        """The loaded project: the typed, frozen model (composer.spec.models.Project)."""
        return self._stack.model

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class Project(_Base):
    """A Compose project, loaded with the CLI's options, driven synchronously.

    ``path`` is a folder (searched for compose.yaml & co, as the CLI does from there) or a file;
    ``files`` adds more (``-f``). ``environment`` adds to the process environment for
    interpolation. ``backend`` is a backend name (``--backend``; default: the best available)
    or a Backend instance the caller owns. With ``owned`` (the default), ``up`` labels the
    containers with this process as their owner (see ``remove_stale_stacks``).

    Used as a context manager it brings the stack up (``up()``, waiting for health checks)
    and always takes it down with its volumes, even when ``up`` or the body fails.

    :raises SpecError: the project is invalid.
    :raises UsageError: an unknown backend.
    """

    def _run(self, work: Callable[[Backend], Awaitable[T]]) -> T:
        given, name = self._given, self._backend_name

        async def main() -> T:
            if given is not None:
                return await work(given)
            backend = _make_backend(name)
            try:
                return await work(backend)
            finally:
                with anyio.CancelScope(shield=True):
                    await backend.aclose()

        return anyio.run(main)

    def up(self, services: str | Sequence[str] | None = None, *, wait: bool = True, timeout: float | None = None,
           build: bool | None = None, pull: bool | str | None = None, force_recreate: bool = False,
           remove_orphans: bool = True) -> None:
        """Create and start the services (all by default, with their dependencies).

        :param wait: wait until every container runs, and is healthy when it has a healthcheck.
        :param timeout: seconds to wait for that (None: no limit).
        :param build: True builds every image that has ``build`` first; False never builds.
        :param pull: True (``always``), False (``never``) or a pull policy name.
        :raises WaitTimeoutError: not ready in time.
        :raises ExecutionError: containers failed to start (the message names each).
        """
        stack = self._stack
        self._run(lambda backend: _up(stack, backend, _names(services), wait=wait, wait_seconds=timeout, build=build,
                                      pull=pull, force_recreate=force_recreate, remove_orphans=remove_orphans))

    def down(self, *, volumes: bool = False, timeout: float | None = None, remove_orphans: bool = True) -> None:
        """Stop and remove the containers and networks (and with ``volumes`` the named and anonymous
        volumes); ``timeout``: seconds to let containers stop before they are killed."""
        self._run(lambda backend: _down(self._stack, backend, volumes=volumes, grace=timeout,
                                        remove_orphans=remove_orphans))

    def stop(self, services: str | Sequence[str] | None = None, *, timeout: float | None = None) -> None:
        """Stop the services' containers, dependents first."""
        self._run(lambda backend: _stop(self._stack, backend, _names(services), timeout))

    def start(self, services: str | Sequence[str] | None = None) -> None:
        """Start the services' existing, stopped containers in dependency order."""
        self._run(lambda backend: _start(self._stack, backend, _names(services)))

    def restart(self, services: str | Sequence[str] | None = None, *, timeout: float | None = None) -> None:
        """Stop the services' containers, then start them again."""
        self._run(lambda backend: _restart(self._stack, backend, _names(services), timeout))

    def ps(self, services: str | Sequence[str] | None = None, *, all: bool = False) -> list[Container]:
        """The containers (running ones unless ``all``), by service and number."""
        return self._run(lambda backend: _ps(self._stack, backend, _names(services), all))

    def port(self, service: str, container_port: int, protocol: str = "tcp", index: int = 1) -> HostPort:
        """Where ``container_port`` of container ``index`` of ``service`` is published.

        :raises NotFoundError: the port is not published.
        :raises ComposerError: the service has no running container ``index``.
        """
        return self._run(lambda backend: _port(self._stack, backend, service, container_port, protocol, index))

    def exec(self, service: str, command: str | Sequence[str], *, user: str | None = None,
             workdir: str | None = None, environment: Mapping[str, str] | None = None, privileged: bool = False,
             index: int = 1) -> ExecResult:
        """Run ``command`` (a string is split as a shell would) in a running container of the
        service; its exit code and output. A non-zero exit code is not an error."""
        return self._run(lambda backend: _exec(self._stack, backend, service, command, user=user, workdir=workdir,
                                               environment=environment, privileged=privileged, index=index))

    def logs(self, service: str | Sequence[str] | None = None, *, follow: bool = False,
             tail: int | None = None) -> Iterator[LogLine]:
        """The log lines of the services' containers (all by default), stopped ones included;
        with ``follow`` the iterator waits for new lines until the containers stop (close it
        to stop earlier). ``tail``: only the last lines of each container."""
        names = _names(service)
        if not follow:
            return iter(self._run(lambda backend: _collect(_logs(self._stack, backend, names, follow=False,
                                                                 tail=tail))))
        return self._follow(names, tail)

    def _follow(self, names: tuple[str, ...], tail: int | None) -> Iterator[LogLine]:
        from anyio.from_thread import start_blocking_portal

        with start_blocking_portal() as portal:
            backend = self._given or _make_backend(self._backend_name)
            lines = _logs(self._stack, backend, names, follow=True, tail=tail)
            try:
                while True:
                    try:
                        line = portal.call(lines.__anext__)
                    except StopAsyncIteration:
                        return
                    yield line
            finally:
                portal.call(lines.aclose)
                if self._given is None:
                    portal.call(backend.aclose)

    def __enter__(self) -> Project:
        try:
            self.up()
        except BaseException:
            self.down(volumes=True, timeout=0)
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.down(volumes=True, timeout=0)


class AsyncProject(_Base):
    """``Project``'s twin for async code (anyio: asyncio or trio). It keeps one backend
    connection; ``aclose()`` releases it (``async with`` does).

    ``timeout`` keeps the sync twin's meaning (how long the engine waits for health, or
    lets a container stop), not a cancellation deadline: wrap a call in ``anyio.fail_after``
    for that.
    """

    _backend: Backend | None = None

    async def _engine(self) -> Backend:
        if self._given is not None:
            return self._given
        if self._backend is None:
            self._backend = _make_backend(self._backend_name)
        return self._backend

    async def aclose(self) -> None:
        """Release the backend connection (the stack stays as it is)."""
        if self._backend is not None:
            backend, self._backend = self._backend, None
            await backend.aclose()

    async def up(self, services: str | Sequence[str] | None = None, *, wait: bool = True,
                 timeout: float | None = None,  # noqa: ASYNC109
                 build: bool | None = None, pull: bool | str | None = None,
                 force_recreate: bool = False, remove_orphans: bool = True) -> None:
        """See Project.up."""
        await _up(self._stack, await self._engine(), _names(services), wait=wait, wait_seconds=timeout, build=build,
                  pull=pull, force_recreate=force_recreate, remove_orphans=remove_orphans)

    async def down(self, *, volumes: bool = False, timeout: float | None = None,  # noqa: ASYNC109
                   remove_orphans: bool = True) -> None:
        """See Project.down."""
        await _down(self._stack, await self._engine(), volumes=volumes, grace=timeout, remove_orphans=remove_orphans)

    async def stop(self, services: str | Sequence[str] | None = None, *,
                   timeout: float | None = None) -> None:  # noqa: ASYNC109
        await _stop(self._stack, await self._engine(), _names(services), timeout)

    async def start(self, services: str | Sequence[str] | None = None) -> None:
        await _start(self._stack, await self._engine(), _names(services))

    async def restart(self, services: str | Sequence[str] | None = None, *,
                      timeout: float | None = None) -> None:  # noqa: ASYNC109
        await _restart(self._stack, await self._engine(), _names(services), timeout)

    async def ps(self, services: str | Sequence[str] | None = None, *, all: bool = False) -> list[Container]:
        return await _ps(self._stack, await self._engine(), _names(services), all)

    async def port(self, service: str, container_port: int, protocol: str = "tcp", index: int = 1) -> HostPort:
        return await _port(self._stack, await self._engine(), service, container_port, protocol, index)

    async def exec(self, service: str, command: str | Sequence[str], *, user: str | None = None,
                   workdir: str | None = None, environment: Mapping[str, str] | None = None,
                   privileged: bool = False, index: int = 1) -> ExecResult:
        return await _exec(self._stack, await self._engine(), service, command, user=user, workdir=workdir,
                           environment=environment, privileged=privileged, index=index)

    async def logs(self, service: str | Sequence[str] | None = None, *, follow: bool = False,
                   tail: int | None = None) -> AsyncIterator[LogLine]:
        """See Project.logs; an async iterator."""
        async for line in _logs(self._stack, await self._engine(), _names(service), follow=follow, tail=tail):
            yield line

    async def __aenter__(self) -> AsyncProject:
        try:
            await self.up()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.down(volumes=True, timeout=0)
                await self.aclose()
            raise
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        with anyio.CancelScope(shield=True):
            try:
                await self.down(volumes=True, timeout=0)
            finally:
                await self.aclose()
