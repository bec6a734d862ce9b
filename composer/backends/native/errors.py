"""The native backend's errors: one-line messages naming the backend and the operation."""

from __future__ import annotations

from composer.errors import BackendError, UnsupportedFeatureError

BACKEND = "native"


def error(message: str, operation: str, cls: type[BackendError] = BackendError) -> BackendError:
    return cls(" ".join(message.split()), backend_name=BACKEND, operation=operation)


def unsupported(message: str, operation: str = "create") -> UnsupportedFeatureError:
    return UnsupportedFeatureError(message, backend_name=BACKEND, operation=operation)
