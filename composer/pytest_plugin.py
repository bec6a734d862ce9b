"""composer's pytest plugin (registered through the ``pytest11`` entry point).

    @pytest.fixture(scope="session")
    def stack(composer_project):
        return composer_project("tests/stack", ready=[http_status("web", 8080, "/health")])

    def test_home(stack):
        host, port = stack.port("web", 8080).address

- ``composer_project(path_or_file, *, files, name, scope, ready, ...)`` brings a stack up
  (``up --wait``, then the readiness conditions of composer.readiness) and returns its
  composer.Project; the stack goes down (with its volumes) at the end of ``scope``: "session"
  (the default), "package", "module", "class" or "function" (of the test running when it is
  called). The same arguments in the same scope return the same, already running, stack.
- Project names are unique per session and per pytest-xdist worker
  (``<name>-<token>-<worker>-<n>``); ``name=`` overrides that.
- Before the first stack starts, stacks left by runs that are gone (killed with -9, a lost
  Ctrl-C: their owner label names a dead process) are removed.
- ``--composer-reuse`` keeps stacks up between runs under stable names: the next run's ``up``
  recreates nothing while the config hash is unchanged, and recreates what the file changed.
  ``--composer-keep`` leaves the stacks up at the end (the next run removes them).
- When a test fails, the logs of the session's running stacks are attached to its report.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import pytest

if TYPE_CHECKING:
    from composer.api import Project
    from composer.readiness import Condition

__all__ = ["ProjectFactory", "composer_project"]

Scope = Literal["session", "package", "module", "class", "function"]
_LOG_TAIL = 200


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("composer", "composer stacks (composer.pytest_plugin)")
    group.addoption("--composer-reuse", action="store_true", default=False,
                    help="keep stacks up between runs, under stable names; recreate only what the "
                         "compose files changed")
    group.addoption("--composer-keep", action="store_true", default=False,
                    help="leave stacks up at the end of the run, for debugging")
    group.addoption("--composer-backend", default=None, metavar="NAME",
                    help="the backend of the stacks (default: as the composer CLI chooses)")


class _Registry:
    """The session's stacks, and the test running now (to attach logs and scope finalizers)."""

    def __init__(self, config: pytest.Config) -> None:
        self.reuse = bool(config.getoption("composer_reuse"))
        self.keep = bool(config.getoption("composer_keep"))
        self.backend: str | None = config.getoption("composer_backend")
        self.worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.token = secrets.token_hex(3)
        self.root = str(config.rootpath)
        self.live: dict[tuple[Any, ...], Project] = {}
        self.kept: list[str] = []
        self.count = 0
        self.reaped = False
        self.reap_error: str | None = None
        self.current: pytest.Item | None = None

    def reap(self) -> None:
        """Remove the stacks of owners that are gone, once per session (best effort)."""
        if self.reaped:
            return
        self.reaped = True
        from composer.api import remove_stale_stacks
        from composer.errors import ComposerError

        try:
            remove_stale_stacks(self.backend)
        except ComposerError as exc:
            self.reap_error = str(exc)

    def project_name(self, base: str, key: tuple[Any, ...]) -> str:
        if self.reuse:
            digest = hashlib.sha256(repr((self.root, key[:6])).encode()).hexdigest()[:8]
            return f"{base}-reuse-{self.worker}-{digest}".lower()
        self.count += 1
        return f"{base}-{self.token}-{self.worker}-{self.count}".lower()

    def teardown(self, key: tuple[Any, ...]) -> None:
        project = self.live.pop(key, None)
        if project is None:
            return
        if self.keep or self.reuse:
            self.kept.append(project.name)
            return
        project.down(volumes=True, timeout=0)


_REGISTRY = pytest.StashKey[_Registry]()


def _registry(config: pytest.Config) -> _Registry:
    if _REGISTRY not in config.stash:
        config.stash[_REGISTRY] = _Registry(config)
    return config.stash[_REGISTRY]


_NODE_TYPES: Mapping[str, type[pytest.Collector]] = {
    "package": pytest.Package, "module": pytest.Module, "class": pytest.Class,
}


class ProjectFactory:
    """The ``composer_project`` fixture: call it to get a running stack (see the module docstring)."""

    def __init__(self, registry: _Registry, session: pytest.Session) -> None:
        self._registry = registry
        self._session = session

    def __call__(
        self, path: str | os.PathLike[str] | None = None, *, files: Sequence[str | os.PathLike[str]] = (),
        name: str | None = None, scope: Scope = "session", ready: Iterable[Condition] = (),
        services: Sequence[str] = (), profiles: Sequence[str] = (), env_files: Sequence[str | os.PathLike[str]] = (),
        environment: Mapping[str, str] | None = None, timeout: float = 120.0, build: bool | None = None,
        pull: bool | str | None = None, backend: str | None = None,
    ) -> Project:
        """Bring the stack up, wait until it is ready, and return it; it goes down at the end of ``scope``.

        :param ready: conditions of composer.readiness (or any callable taking the Project),
            checked in turn after ``up`` waited for the health checks.
        :param timeout: seconds for the health checks, then again for the conditions.
        :raises ComposerError: the project is invalid, or did not come up, or not ready in time.
        """
        from composer.api import Project
        from composer.errors import UsageError

        registry = self._registry
        node = self._scope_node(scope)
        conditions = tuple(ready)
        key = (os.path.abspath(path) if path is not None else None, tuple(os.path.abspath(f) for f in files), name,
               tuple(services), tuple(profiles), tuple(sorted((environment or {}).items())), node.nodeid, scope)
        if key in registry.live:
            return registry.live[key]
        if scope not in ("session", "function", *_NODE_TYPES):
            raise UsageError(f"unknown scope {scope!r}")
        registry.reap()
        options: dict[str, Any] = {"files": files, "profiles": profiles, "env_files": env_files,
                                   "environment": environment, "backend": backend or registry.backend}
        if name is None:
            base = Project(path, **options).name
            name = registry.project_name(base, key)
        project = Project(path, project_name=name, owned=not registry.reuse, **options)
        registry.live[key] = project
        if scope != "session":
            node.addfinalizer(lambda: registry.teardown(key))
        try:
            project.up(services or None, wait=True, timeout=timeout, build=build, pull=pull)
            if conditions:
                from composer.readiness import wait_until

                wait_until(project, conditions, timeout=timeout)
        except BaseException:
            if scope == "session":  # the others' finalizers run even when setup fails
                registry.teardown(key)
            raise
        return project

    def _scope_node(self, scope: Scope) -> pytest.Item | pytest.Collector:
        from composer.errors import UsageError

        if scope == "session":
            return self._session
        item = self._registry.current
        if item is None:
            raise UsageError(f"a {scope}-scoped stack must be started from a test or its fixtures")
        if scope == "function":
            return item
        found = item.getparent(_NODE_TYPES.get(scope, pytest.Module))
        if found is None:
            raise UsageError(f"the test {item.nodeid} has no enclosing {scope}")
        return found

    def close(self) -> None:
        """Take down the session-scoped stacks (at the end of the session)."""
        for key in list(self._registry.live):
            self._registry.teardown(key)


@pytest.fixture(scope="session")
def composer_project(request: pytest.FixtureRequest) -> Generator[ProjectFactory, None, None]:
    """A factory of running composer stacks: ``composer_project(path, ready=[...], scope=...)``."""
    factory = ProjectFactory(_registry(request.config), request.session)
    try:
        yield factory
    finally:
        factory.close()


# --- hooks ---------------------------------------------------------------------------------------------


def pytest_collection_finish(session: pytest.Session) -> None:
    """Remove stale stacks before the first test runs, when a test will start stacks."""
    if any("composer_project" in getattr(item, "fixturenames", ()) for item in session.items):
        _registry(session.config).reap()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    registry = _registry(item.config)
    registry.current = item
    try:
        return (yield)
    finally:
        registry.current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, pytest.TestReport, pytest.TestReport]:
    report = yield
    registry = _registry(item.config)
    if report.failed and registry.live:
        for project in list(registry.live.values()):
            report.sections.append((f"composer logs: {project.name}", _log_text(project)))
    return report


def _log_text(project: Project) -> str:
    from composer.errors import ComposerError

    try:
        lines = list(project.logs(tail=_LOG_TAIL))
    except ComposerError as exc:
        return f"(logs unavailable: {exc})"
    width = max((len(line.container_name) for line in lines), default=0)
    return "\n".join(f"{line.container_name.ljust(width)} | {line.text}" for line in lines) or "(no output)"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    registry = config.stash.get(_REGISTRY, None)
    if registry is None:
        return
    if registry.reap_error:
        terminalreporter.write_line(f"composer: could not remove stale stacks: {registry.reap_error}")
    for name in registry.kept:
        terminalreporter.write_line(f"composer: left stack {name} up (remove it: composer down -v -p {name})")

