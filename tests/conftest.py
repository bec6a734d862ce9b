"""Suite-wide set-up: the markers that say what a test needs, and the CLI's warm command servers.

Markers (declared in pyproject.toml): ``docker`` needs a Docker Engine, ``root`` needs euid 0,
``native`` runs containers on the Linux-namespace backend, ``slow`` takes seconds by itself. They
are given here by where a test lives and what it uses, so that ``-m "not native and not docker and
not root"`` selects exactly the tests that need neither root nor an engine, and ``make unit`` runs
those that are not slow either; a test that needs one otherwise marks itself (each backend's
column of tests/integration/test_backend_contract.py, a few tests of tests/unit).

The command servers: every ``composer`` the tests start goes through the command server
(composer/cli/server.py), as a user's would. The session gives the servers a folder of its own
(COMPOSER_SERVER_DIR, set before any test module builds its environment) and stops them at the end,
so that the suite leaves no process behind. Commands run with a bare environment fall back to the user's default
folder: its servers are stopped too.

The native state: the session's own run root (COMPOSER_RUN_ROOT) and cgroup parent
(COMPOSER_CGROUP_PARENT), set likewise (tests/support/host_state.py; a bare environment gets
them from ``cli_environment``), so that a CLI a test runs as root, on the native backend by
default, never writes into the host's /run/composer or ``composer`` cgroups. Removed at the end.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

from tests.support import host_state

_ORIGINAL_SERVER_DIR = os.environ.get("COMPOSER_SERVER_DIR")
_ORIGINAL_PRIVATE = {key: os.environ.get(key) for key in ("COMPOSER_RUN_ROOT", "COMPOSER_CGROUP_PARENT")}

# Folder or file (relative to the repository, "/"-separated) -> the markers of every test in it.
MARKS_BY_PATH: dict[str, tuple[str, ...]] = {
    "tests/integration/docker/": ("docker",),
    "tests/integration/native/": ("native", "root"),
    "tests/integration/isolation/": ("native", "root"),  # the probe on both backends
    "tests/integration/swarm/": ("docker",),  # a one-node swarm on the local dockerd
    "tests/e2e/": ("docker", "root"),  # the stand-in images: debootstrap, dockerd, the native roots
    "examples/": ("docker", "root"),  # the same stand-ins; the native backend by default
    "tests/vm/": ("root",),  # qemu guests: a network namespace and taps
    "tests/unit/cli/test_server.py": ("slow",),  # real command servers and clients, ~50 s
    "tests/unit/spec/test_loader_fuzz.py": ("slow",),
    "tests/unit/contract/test_coverage.py": ("slow",),  # a CLI process per refused key and backend  # Hypothesis, ~30 s
    "tests/unit/spec/test_loader_hostile_input.py": ("slow",),  # ~50 CLI processes and 10,000-level files, ~45 s
    "tests/unit/backends/native/image/test_layers_fuzz.py": ("slow",),  # Hypothesis, ~12 s
}
# Fixture -> the markers of every test that uses it, directly or through another fixture.
MARKS_BY_FIXTURE: dict[str, tuple[str, ...]] = {
    "docker_api": ("docker",),  # tests/integration/conftest.py; local_registry's image comes from dockerd
    "e2e_docker_api": ("docker",),
    "root_only": ("root",),  # tests/unit/backends/native: mknod, trusted.* xattrs, chown
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    repository = config.rootpath
    for item in items:
        try:
            where = item.path.relative_to(repository).as_posix()
        except ValueError:
            continue
        names = {name for path, marks in MARKS_BY_PATH.items() if where.startswith(path) for name in marks}
        fixtures = getattr(item, "fixturenames", ())  # a pytest.Function's: the whole closure
        names.update(name for fixture, marks in MARKS_BY_FIXTURE.items() if fixture in fixtures for name in marks)
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("backend") == "native":  # e2e's parametrized stacks
            names.update(("native", "root"))
        for name in sorted(names - {mark.name for mark in item.iter_markers()}):
            item.add_marker(name)


def pytest_configure(config: pytest.Config) -> None:
    folder = tempfile.mkdtemp(prefix="composer-servers-")
    config.stash[_FOLDER] = folder
    os.environ["COMPOSER_SERVER_DIR"] = folder
    private = host_state.make_private(tempfile.mkdtemp(prefix="composer-state-"))
    config.stash[_PRIVATE] = private
    os.environ.update(private)


def pytest_unconfigure(config: pytest.Config) -> None:
    from composer.cli import server

    folder = config.stash.get(_FOLDER, None)
    if folder is None:
        return
    if _ORIGINAL_SERVER_DIR is None:
        os.environ.pop("COMPOSER_SERVER_DIR", None)
    else:
        os.environ["COMPOSER_SERVER_DIR"] = _ORIGINAL_SERVER_DIR
    server.stop_servers(folder)
    server.stop_servers()  # the default folder's: commands run with a bare environment
    shutil.rmtree(folder, ignore_errors=True)
    private = config.stash.get(_PRIVATE, None)
    if private is not None:
        host_state.remove_private(private)
        shutil.rmtree(os.path.dirname(private["COMPOSER_RUN_ROOT"]), ignore_errors=True)
        for key, value in _ORIGINAL_PRIVATE.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_FOLDER = pytest.StashKey[str]()
_PRIVATE = pytest.StashKey[dict[str, str]]()
