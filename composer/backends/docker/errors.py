"""Translate docker-py and requests exceptions into composer.errors, at the backend's edge.

The choice is made from structured data (exception class, ``status_code``) and, only where
the engine offers nothing better, a fragment of its message ("port is already allocated").
Nothing here imports docker at module level, so the translator can be tested without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from composer.errors import (
    AlreadyExistsError,
    BackendError,
    BackendUnavailableError,
    ComposerError,
    ImageNotFoundError,
    ImagePullError,
    NotFoundError,
    PortInUseError,
)

BACKEND_NAME = "docker"
_PORT_IN_USE = ("port is already allocated", "address already in use")


def unavailable(host: str, operation: str = "connect") -> BackendUnavailableError:
    """The one-line error for an engine that does not answer at ``host``."""
    return BackendUnavailableError(
        f"Cannot connect to the Docker daemon at {host}. Is the docker daemon running?",
        backend_name=BACKEND_NAME,
        operation=operation,
    )


def explanation(exc: BaseException) -> str:
    """The engine's message in ``exc``, on one line."""
    detail = getattr(exc, "explanation", None)
    text = str(detail if detail else exc).strip()
    return " ".join(text.split())  # one line


def translate(exc: BaseException, operation: str, *, host: str = "the engine") -> ComposerError:
    """The composer error for ``exc``, raised by docker-py during ``operation``."""
    if isinstance(exc, ComposerError):
        return exc
    import docker.errors
    import requests.exceptions

    if isinstance(exc, requests.exceptions.ConnectionError):
        return unavailable(host, operation)
    message = explanation(exc)
    if isinstance(exc, docker.errors.APIError):
        return _translate_api_error(exc, message, operation)
    if isinstance(exc, docker.errors.DockerException) and "Error while fetching server API version" in message:
        return unavailable(host, operation)
    return BackendError(message or type(exc).__name__, backend_name=BACKEND_NAME, operation=operation)


def _translate_api_error(exc: Any, message: str, operation: str) -> BackendError:
    import docker.errors

    text = f"Error response from daemon: {message}"
    status = exc.status_code
    lowered = message.lower()
    cls: type[BackendError] = BackendError
    if isinstance(exc, docker.errors.ImageNotFound):
        cls = ImageNotFoundError
    elif isinstance(exc, docker.errors.NotFound) or status == 404:
        cls = ImageNotFoundError if operation == "pull" else NotFoundError
    elif any(fragment in lowered for fragment in _PORT_IN_USE):
        cls = PortInUseError
    elif status == 409 and ("already in use" in lowered or "already exists" in lowered or "in use" not in lowered):
        cls = AlreadyExistsError
    elif operation == "pull":
        cls = ImageNotFoundError if "pull access denied" in lowered else ImagePullError
    return cls(text, backend_name=BACKEND_NAME, operation=operation)


@contextmanager
def translated(operation: str, *, host: str = "the engine") -> Iterator[None]:
    """Re-raise any docker-py or requests exception inside the block as a composer error."""
    try:
        yield
    except ComposerError:
        raise
    except Exception as exc:
        raise translate(exc, operation, host=host) from exc
