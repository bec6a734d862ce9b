"""Pure pieces of ``logs --since/--until``, ``events``, ``up --quiet-pull`` and ``down --rmi``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from composer.cli.engine_events import json_event, plain_event, rfc3339_nano
from composer.cli.progress import QuietPull
from composer.cli.timestamps import duration_seconds, parse_time
from composer.contract.backend import EngineEvent
from composer.contract.observed import ObservedState
from composer.errors import UsageError
from composer.events import Event, EventStatus
from composer.planner.teardown import images_to_remove
from composer.spec import load_project
from composer.spec.options import ProjectOptions


@pytest.fixture
def utc() -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if saved is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = saved
    time.tzset()


def test_go_durations() -> None:
    assert duration_seconds("10s") == 10
    assert duration_seconds("1m30s") == 90
    assert duration_seconds("1.5h") == 5400
    assert duration_seconds("300ms") == pytest.approx(0.3)
    assert duration_seconds("10") is None
    assert duration_seconds("2013-01-02") is None


def test_parse_time_as_docker(utc: None) -> None:
    now = 1_000_000.5
    assert parse_time("10s", now) == 999_990
    assert parse_time("2013-01-02T13:23:37Z", now) == 1357133017
    assert parse_time("2013-01-02T13:23:37.123456789Z", now) == pytest.approx(1357133017.123456789)
    assert parse_time("2013-01-02T14:23:37+01:00", now) == 1357133017
    assert parse_time("2013-01-02", now) == 1357084800  # local time (UTC here)
    assert parse_time("1357133017.5", now) == 1357133017.5
    with pytest.raises(UsageError, match='invalid value for "until": failed to parse value as time or duration'):
        parse_time("garbage", now, "until")


def test_a_copied_timestamp_keeps_its_own_line_in_the_log_window(utc: None) -> None:
    """A stamp whose nanoseconds end high (…789) must not round past its own microsecond: the
    since bound stays at or below the line, the until bound at or above it (found flaky, ~1 in 5)."""
    from composer.backends.docker.backend import _log_window

    for nanos in ("123456789", "999999999", "000000999", "5"):
        stamp = f"2026-11-28T01:50:12.{nanos}Z"
        line_micros = (1795830612 * 1_000_000_000 + int(nanos.ljust(9, "0"))) / 1000
        window = _log_window(parse_time(stamp, 0, "since"), parse_time(stamp, 0, "until"))
        assert window is not None
        assert float(window["since"]) * 1_000_000 <= line_micros <= float(window["until"]) * 1_000_000, (stamp, window)
        assert window["since"] == f"1795830612.{nanos.ljust(9, '0')[:6]}"


def test_events_as_v2_prints_them(utc: None) -> None:
    event = EngineEvent(1_795_000_000_123_456_789, "container", "start", "abc",
                        {"name": "p-web-1", "image": "busybox"}, service="web")
    assert plain_event(event) == "2026-11-18 11:06:40.123456 container start abc (image=busybox, name=p-web-1)\n"
    assert json_event(event) == ('{"action":"start","attributes":{"image":"busybox","name":"p-web-1"},"id":"abc",'
                                 '"service":"web","time":"2026-11-18T11:06:40.123456789Z","type":"container"}')
    assert rfc3339_nano(1_795_000_000_100_000_000) == "2026-11-18T11:06:40.1Z"
    assert rfc3339_nano(1_795_000_000_000_000_000) == "2026-11-18T11:06:40Z"


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


def test_images_down_rmi_removes(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    (folder / "compose.yaml").write_text("""
name: proj
services:
  built:
    build: {context: .}
  tagged:
    image: custom:1
    build: {context: .}
  pulled:
    image: busybox
""")
    project = load_project(ProjectOptions(files=(str(folder / "compose.yaml"),)))
    observed = ObservedState("proj", images=frozenset({"proj-built", "proj-built:latest", "custom:1", "busybox",
                                                        "busybox:latest", "old:2"}),
                             project_images=(("custom:1", "tagged"), ("old:2", "gone")))
    assert images_to_remove("proj", project, observed, "local") == ["custom:1", "proj-built:latest"]
    assert images_to_remove("proj", project, observed, "local", remove_orphans=True) == [
        "custom:1", "old:2", "proj-built:latest"]
    assert images_to_remove("proj", project, observed, "all") == ["busybox:latest", "custom:1", "proj-built:latest"]
