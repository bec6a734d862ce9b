"""Lazy re-exports for package ``__init__`` modules (PEP 562).

``import composer`` and ``import composer.spec`` must stay cheap: ``composer config`` must not
import pydantic, docker-py or pyroute2. A package lists what it re-exports and from where; a
name is imported on first access and then cached in the package's namespace.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing's: ``import composer`` stays free of typing (~6 ms) for the CLI
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any


def lazy_exports(
    package: str, namespace: dict[str, Any], sources: Mapping[str, str], public: Iterable[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of ``package``, whose globals are ``namespace``."""
    names = tuple(public)

    def getattr_(name: str) -> Any:
        module = sources.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        import importlib  # here: the command line's client never needs it (~0.5 ms)

        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted({*namespace, *names})

    return getattr_, dir_
