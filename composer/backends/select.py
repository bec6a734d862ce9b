"""Which backend runs a command: ``--backend``, then COMPOSER_BACKEND, then the best available.

The native backend is the default where it can run (Linux, root, namespaces); elsewhere the
docker backend is used. The choice comes with the reason, which
``composer version`` prints.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

from composer.errors import UsageError

KNOWN = ("docker", "native")


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
    if name not in KNOWN:
        raise UsageError(f"unknown backend {name!r}; choose one of: {', '.join(KNOWN)}")
    if name == "native" and not sys.platform.startswith("linux"):
        raise UsageError("the native backend needs Linux; use --backend docker")
    return BackendChoice(name, reason)
