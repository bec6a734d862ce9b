"""Progress events: the engine emits them, the CLI renders them; the library never prints.

A resource id names what an event is about (``network:default``, ``container:web-1``,
``image:nginx:1``); ``parent_id`` groups events (layers under an image pull).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class EventStatus(StrEnum):
    WORKING = "working"
    DONE = "done"
    WARNING = "warning"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Event:
    resource_id: str
    status: EventStatus
    text: str  # what happens, v2's words: "Creating", "Created", "Started", "Healthy"...
    details: str = ""
    parent_id: str | None = None
    current: int | None = None  # progress, in bytes or steps, when known (a layer's bytes downloaded or
    total: int | None = None    # extracted against its size: both backends report them the same way)
    units: str = ""  # what current/total count: "" is bytes (docker's jsonmessage Units), else e.g. "steps"

    @property
    def percent(self) -> int | None:
        """``current`` as a whole percentage of ``total`` (at most 100), when both are known."""
        if self.current is None or not self.total:
            return None
        return min(100, max(0, self.current * 100 // self.total))


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...


class NullSink:
    """Drops every event."""

    def emit(self, event: Event) -> None:
        return None


@dataclass
class ListSink:
    """Keeps every event, in order (tests, and the library's API)."""

    events: list[Event] = field(default_factory=list)

    def emit(self, event: Event) -> None:
        self.events.append(event)
