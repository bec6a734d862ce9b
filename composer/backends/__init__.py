"""Backends carry a plan to an engine; each is imported lazily, by name.

Built-in backends register under the entry-point group ``composer.backends`` like any
plugin would; ``load_backend`` imports only the one asked for, so ``composer config``
never imports docker-py or pyroute2.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from composer.errors import UsageError

if TYPE_CHECKING:
    from types import ModuleType

    from composer.backends.base import Backend, ImageStoreCommands

BUILTIN = {
    "docker": "composer.backends.docker:DockerBackend",
    "memory": "composer.backends.memory:MemoryBackend",
    "native": "composer.backends.native.backend:NativeBackend",
}


def backend_class(name: str) -> type[Backend]:
    """The class of the named backend, imported on first use.

    :raises UsageError: no backend has that name.
    """
    target = BUILTIN.get(name)
    if target is None:
        from importlib.metadata import entry_points

        found = [entry.value for entry in entry_points(group="composer.backends") if entry.name == name]
        if not found:
            raise UsageError(f"unknown backend {name!r}; known: {', '.join(sorted(BUILTIN))}")
        target = found[0]
    module_name, _, attribute = target.partition(":")
    backend: type[Backend] = getattr(importlib.import_module(module_name), attribute)
    return backend


def make_backend(requested: str | None) -> Backend:
    """A new backend: the one ``requested`` (``--backend``), else COMPOSER_BACKEND's, else the
    best available (composer.backends.select); only its module is imported. The CLI's and the
    library's one way of making one.

    :raises UsageError: an unknown backend name.
    """
    from composer.backends.select import choose_backend

    return backend_class(choose_backend(requested).name)()


# The backends that keep an image store of their own, whose commands (``composer image``:
# base.ImageStoreCommands) are imported on first use without the rest of the backend. The first
# is the default: ``composer image`` works on its store whatever backend runs the containers.
IMAGE_STORES = {
    "native": "composer.backends.native.image.store_commands:NativeImageStore",
}


def image_store(requested: str | None) -> ImageStoreCommands | None:
    """The image store commands of the backend ``requested`` (default: the first of IMAGE_STORES);
    None when that backend keeps no image store of its own (an engine that has its own CLI).

    :raises UsageError: an unknown backend name.
    """
    if requested:
        from composer.backends.select import choose_backend

        requested = choose_backend(requested).name
    target = IMAGE_STORES.get(requested or next(iter(IMAGE_STORES)))
    if target is None:
        return None
    module_name, _, attribute = target.partition(":")
    store: ImageStoreCommands = getattr(importlib.import_module(module_name), attribute)()
    return store


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
