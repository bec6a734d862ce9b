"""Pull-stream messages -> layer events, and pull_policy refresh intervals (no engine)."""

from __future__ import annotations

import pytest

from composer.backends.docker.backend import _pull_message, refresh_interval
from composer.errors import ImageNotFoundError, ImagePullError
from composer.events import Event, EventStatus


def test_layer_progress_events() -> None:
    events: list[Event] = []
    for message in (
        {"status": "Pulling from library/busybox", "id": "latest"},
        {"status": "Pulling fs layer", "id": "abc", "progressDetail": {}},
        {"status": "Downloading", "id": "abc", "progressDetail": {"current": 10, "total": 100}},
        {"status": "Pull complete", "id": "abc", "progressDetail": {}},
        {"status": "Digest: sha256:0"},
        {"status": "Status: Downloaded newer image for busybox:latest"},
    ):
        _pull_message(message, "image:busybox", events.append)
    assert [(e.resource_id, e.status, e.text, e.current, e.total) for e in events] == [
        ("layer:abc", EventStatus.WORKING, "Pulling fs layer", None, None),
        ("layer:abc", EventStatus.WORKING, "Downloading", 10, 100),
        ("layer:abc", EventStatus.DONE, "Pull complete", None, None),
    ]
    assert {e.parent_id for e in events} == {"image:busybox"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [("manifest for x:1 not found: manifest unknown", ImageNotFoundError),
     ("Get http://127.0.0.1:9/v2/: connection refused", ImagePullError)],
)
def test_error_message_raises(error: str, expected: type[Exception]) -> None:
    with pytest.raises(expected, match="Error response from daemon"):
        _pull_message({"error": error, "errorDetail": {"message": error}}, "image:x", lambda event: None)


def test_refresh_interval() -> None:
    assert refresh_interval("daily") == 86_400
    assert refresh_interval("weekly") == 7 * 86_400
    assert refresh_interval("every_1h30m") == 5_400
    assert refresh_interval("missing") is None
    assert refresh_interval("always") is None
