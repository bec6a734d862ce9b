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
    from composer.contract.backend import Backend

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
