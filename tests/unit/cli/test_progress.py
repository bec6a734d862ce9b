"""``up --quiet-pull``: only the pull's progress is dropped."""

from __future__ import annotations

from composer.cli.progress import QuietPull
from composer.events import Event, EventStatus


def test_quiet_pull_drops_pull_progress_only() -> None:
    shown: list[Event] = []

    class Sink:
        def emit(self, event: Event) -> None:
            shown.append(event)

    sink = QuietPull(Sink())
    sink.emit(Event("image:busybox", EventStatus.WORKING, "Pulling"))
    sink.emit(Event("layer:abc", EventStatus.WORKING, "Downloading", parent_id="image:busybox"))
    sink.emit(Event("image:busybox", EventStatus.DONE, "Pulled"))
    sink.emit(Event("image:busybox", EventStatus.ERROR, "Error", "manifest unknown"))
    sink.emit(Event("container:p-web-1", EventStatus.DONE, "Started"))
    assert [event.text for event in shown] == ["Error", "Started"]
