"""Readiness conditions: when is a stack ready for tests?

``up()`` already waits for health checks. These conditions say more, from the host's side::

    from composer.readiness import http_status, log_line, tcp_port, wait_until

    wait_until(stack, [tcp_port("db", 5432), http_status("web", 8080, "/health"), log_line("worker", "ready")])

A condition is any callable taking the Project: it holds when it returns a true value. A false
value or an exception (connection refused, service not running yet...) means "not yet"; the
last reason is in the WaitTimeoutError raised when time runs out.
"""

from __future__ import annotations

import http.client
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from composer.errors import WaitTimeoutError

if TYPE_CHECKING:
    from composer.api import Project

__all__ = ["Condition", "healthy", "http_status", "log_line", "tcp_port", "wait_until"]

Condition = Callable[["Project"], object]
"""Holds when it returns a true value; a false value or an exception means not yet."""


@dataclass(frozen=True, slots=True)
class healthy:  # used like a function: healthy("db")
    """Every container of the services (all by default) runs, and is healthy when it has a healthcheck."""

    services: tuple[str, ...] = ()

    def __init__(self, *services: str) -> None:
        object.__setattr__(self, "services", services)

    def __call__(self, project: Project) -> bool:
        containers = project.ps(self.services or None, all=True)
        wanted = set(self.services or project.config().services)
        if {c.service for c in containers} < wanted:
            raise AssertionError(f"no container for {', '.join(sorted(wanted - {c.service for c in containers}))}")
        for container in containers:
            if not container.running or container.health not in (None, "healthy"):
                status = container.state + (f" ({container.health})" if container.health else "")
                raise AssertionError(f"{container.name} is {status}")
        return True

    def __str__(self) -> str:
        return f"healthy({', '.join(self.services) or 'all services'})"


@dataclass(frozen=True, slots=True)
class tcp_port:
    """The published ``port`` of the service accepts TCP connections (from the host)."""

    service: str
    port: int
    index: int = 1
    timeout: float = 1.0

    def __call__(self, project: Project) -> bool:
        address = project.port(self.service, self.port, index=self.index).address
        with socket.create_connection(address, timeout=self.timeout):
            return True

    def __str__(self) -> str:
        return f"tcp_port({self.service}:{self.port})"


@dataclass(frozen=True, slots=True)
class http_status:
    """``GET path`` on the published ``port`` of the service answers ``status``."""

    service: str
    port: int
    path: str = "/"
    status: int = 200
    index: int = 1
    timeout: float = 2.0
    https: bool = False

    def __call__(self, project: Project) -> bool:
        host, port = project.port(self.service, self.port, index=self.index).address
        kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
        connection = kind(host, port, timeout=self.timeout)
        try:
            connection.request("GET", self.path)
            got = connection.getresponse().status
        finally:
            connection.close()
        if got != self.status:
            raise AssertionError(f"GET {self.path} answered {got}")
        return True

    def __str__(self) -> str:
        return f"http_status({self.service}:{self.port}{self.path} -> {self.status})"


@dataclass(frozen=True, slots=True)
class log_line:
    """A line of the service's logs matches ``pattern`` (a regular expression, searched)."""

    service: str
    pattern: str

    def __call__(self, project: Project) -> bool:
        expression = re.compile(self.pattern)
        return any(expression.search(line.text) for line in project.logs(self.service))

    def __str__(self) -> str:
        return f"log_line({self.service}: {self.pattern!r})"


def _describe(condition: Condition) -> str:
    if type(condition).__dict__.get("__str__") is not None:
        return str(condition)
    return getattr(condition, "__qualname__", None) or repr(condition)


def wait_until(project: Project, conditions: Iterable[Condition], *, timeout: float = 60.0,
               interval: float = 0.25) -> None:
    """Poll each condition in turn until it holds (each is checked until it does, then the next).

    :raises WaitTimeoutError: a condition did not hold within ``timeout`` seconds; the message
        names it and the last reason it gave.
    """
    deadline = time.monotonic() + timeout
    for condition in conditions:
        reason = "not checked"
        while True:
            try:
                if condition(project):
                    break
                reason = "returned false"
            except Exception as exc:  # any failure of a probe means "not ready yet"
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            if time.monotonic() >= deadline:
                raise WaitTimeoutError(f"{project.name} not ready after {timeout:g}s: {_describe(condition)}: "
                                       f"{reason}")
            time.sleep(interval)
