"""Which backend runs a command, and where its class comes from: the backends' registry.

The choice: ``--backend``, then COMPOSER_BACKEND, then the best available. The native backend
is the default where it can run (Linux, root, namespaces); elsewhere the docker backend is
used. The choice comes with the reason, which ``composer version`` prints.

The classes: the built-in backends are named here by module path and imported only when
chosen, so ``composer config`` never imports docker-py or pyroute2. Any other name is looked
up in the entry-point group ``composer.backends``, where a third-party package registers its
class (``[project.entry-points."composer.backends"] swarm = "composer_swarm:SwarmBackend"``);
the class must satisfy composer.contract.backend.Backend. The group is read only for a name
that is not built in, which keeps it off every ordinary command's start-up.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.errors import BackendUnavailableError, UsageError

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint
    from types import ModuleType

    from composer.contract.backend import Backend, ImageStoreCommands
    from composer.contract.coverage import Table
    from composer.contract.system import SystemCommands

ENTRY_POINT_GROUP = "composer.backends"

BUILTIN = {
    "docker": "composer.backends.docker:DockerBackend",
    "memory": "composer.backends.memory:MemoryBackend",
    "native": "composer.backends.native.backend:NativeBackend",
    "swarm": "composer.backends.swarm.backend:SwarmBackend",
}
"""Every built-in backend, by name: ``module:class``."""

KNOWN = ("docker", "native", "swarm")
"""The built-in backends a user may choose (memory is the tests' engine, not a user's)."""

REQUIRES = {
    "docker": ("docker",),
    "native": ("pyroute2",),
}
"""The top-level modules each built-in backend imports (lazily, inside its functions): checked
when the backend is chosen, so that a missing one is a one-line error before anything is done
rather than a failure half-way through ``up``. All are default dependencies (pyproject.toml)."""

PACKAGES = {"docker": "docker", "pyroute2": "pyroute2", "zstandard": "zstandard", "ruamel": "ruamel.yaml",
            "pydantic": "pydantic", "pydantic_core": "pydantic", "anyio": "anyio", "requests": "requests",
            "urllib3": "urllib3", "yaml": "PyYAML"}
"""The PyPI package that provides a top-level module, where the names differ or are worth stating."""


@dataclass(frozen=True, slots=True)
class BackendChoice:
    name: str
    reason: str


def _native_unavailable() -> str | None:
    """Why the native backend cannot run here, or None when it can."""
    if not sys.platform.startswith("linux"):
        return "the native backend needs Linux"
    if os.geteuid() != 0:
        return "the native backend needs root (rootless mode is not built yet)"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no namespaces"
    return None


def _plugin(name: str) -> EntryPoint | None:
    """The installed entry point of the third-party backend ``name``, if there is one."""
    from importlib.metadata import entry_points

    return next(iter(entry_points(group=ENTRY_POINT_GROUP, name=name)), None)


def choose_backend(requested: str | None, environment: Mapping[str, str] | None = None) -> BackendChoice:
    """:raises UsageError: an unknown backend name was asked for."""
    env = os.environ if environment is None else environment
    if requested:
        name, reason = requested, "chosen with --backend"
    elif env.get("COMPOSER_BACKEND"):
        name, reason = env["COMPOSER_BACKEND"], "chosen with COMPOSER_BACKEND"
    else:
        why_not = _native_unavailable()
        if why_not is None:
            return BackendChoice("native", "default on Linux as root with namespaces")
        return BackendChoice("docker", f"default: {why_not}")
    if name not in KNOWN and (name in BUILTIN or _plugin(name) is None):
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(KNOWN)}")
    if name == "native" and not sys.platform.startswith("linux"):
        raise UsageError("the native backend needs Linux; use --backend docker")
    return BackendChoice(name, reason)


def backend_class(name: str) -> type[Backend]:
    """The class of the named backend (built in, or registered under ``composer.backends``),
    imported on first use.

    :raises UsageError: no backend has that name.
    """
    target = BUILTIN.get(name)
    if target is None:
        plugin = _plugin(name)
        if plugin is None:
            raise UsageError(f"unknown backend {name!r}; known: {', '.join(sorted(BUILTIN))}")
        target = plugin.value
    from importlib.util import find_spec

    for module in REQUIRES.get(name, ()):
        if find_spec(module) is None:
            raise missing_module(module, name)
    module_name, _, attribute = target.partition(":")
    try:
        backend: type[Backend] = getattr(importlib.import_module(module_name), attribute)
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] == "composer":
            raise
        raise missing_module(error.name, name) from None
    return backend


def missing_module(module: str, backend: str | None = None) -> BackendUnavailableError:
    """The one-line error for a Python module that is not installed, naming the package to install."""
    top = module.partition(".")[0]
    package = PACKAGES.get(top, top)
    who = f"the {backend} backend needs" if backend else "composer needs"
    return BackendUnavailableError(f"{who} the Python package {package!r}, which is not installed",
                                   backend_name=backend or "", operation="load", hint=f"pip install {package}")


def make_backend(requested: str | None) -> Backend:
    """A new backend for a command: the one ``choose_backend`` picks, constructed with no arguments.

    :raises UsageError: an unknown backend name was asked for, or COMPOSER_FAULTS does not parse
        (composer.faults.check: the library refuses it as the CLI does, before anything changes).
    """
    from composer import faults

    faults.check()
    return backend_class(choose_backend(requested).name)()


# The backends that keep an image store of their own, whose commands (``composer image``:
# composer.contract.backend.ImageStoreCommands) are imported on first use without the rest of
# the backend. The first is the default: ``composer image`` works on its store whatever backend
# runs the containers.
IMAGE_STORES = {
    "native": "composer.backends.native.image.store_commands:NativeImageStore",
}


def image_store(requested: str | None) -> ImageStoreCommands | None:
    """The image store commands of the backend ``requested`` (default: the first of IMAGE_STORES);
    None when that backend keeps no image store of its own (an engine that has its own CLI).

    :raises UsageError: an unknown backend name.
    """
    if requested:
        requested = choose_backend(requested).name
    target = IMAGE_STORES.get(requested or next(iter(IMAGE_STORES)))
    if target is None:
        return None
    module_name, _, attribute = target.partition(":")
    store: ImageStoreCommands = getattr(importlib.import_module(module_name), attribute)()
    return store


# Each backend's ``composer system`` commands (check, df, prune: composer.contract.system's
# SystemCommands), imported on first use without the rest of the backend.
SYSTEM = {
    "docker": "composer.backends.docker.system:DockerSystem",
    "native": "composer.backends.native.system:NativeSystem",
}


def system_commands(requested: str | None) -> SystemCommands | None:
    """The ``composer system`` commands of the backend ``choose_backend`` picks; None when that
    backend offers none (a third-party one).

    :raises UsageError: an unknown backend name.
    """
    target = SYSTEM.get(choose_backend(requested).name)
    if target is None:
        return None
    module_name, _, attribute = target.partition(":")
    commands: SystemCommands = getattr(importlib.import_module(module_name), attribute)()
    return commands


# Each backend's hooks for the CLI's command server (composer/cli/server.py), in a module of its
# own that only the server imports: ``MODULES``, what the backend imports inside functions
# (imported once, before the server forks its workers); optionally ``warm_up()``, first requests
# built ahead; optionally ``start_helpers(socket_path)``, a helper process the workers inherit
# (an object with ``close()``, or None).
WARM_UP = {
    "docker": "composer.backends.docker.warm_up",
    "native": "composer.backends.native.warm_up",
}


def warm_up_hooks() -> list[ModuleType]:
    """The backends' warm-up hook modules (WARM_UP); one that fails to import is left out."""
    found = []
    for module_name in WARM_UP.values():
        try:
            found.append(importlib.import_module(module_name))
        except Exception:
            continue
    return found


# Each built-in backend's coverage table (composer.contract.coverage): what it does with each key.
COVERAGE = {
    "docker": "composer.backends.docker.coverage:COVERAGE",
    "native": "composer.backends.native.coverage:COVERAGE",
}


def coverage_tables() -> dict[str, Table]:
    """The built-in backends' coverage tables, by backend name (imports only the tables)."""
    found = {}
    for name, target in COVERAGE.items():
        module_name, _, attribute = target.partition(":")
        found[name] = getattr(importlib.import_module(module_name), attribute)
    return found
