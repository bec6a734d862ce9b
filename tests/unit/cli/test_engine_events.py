"""``events``: plain and JSON lines as v2 prints them."""

from __future__ import annotations

from composer.cli.engine_events import json_event, plain_event, rfc3339_nano
from composer.contract.backend import EngineEvent


def test_events_as_v2_prints_them(utc: None) -> None:
    event = EngineEvent(1_795_000_000_123_456_789, "container", "start", "abc",
                        {"name": "p-web-1", "image": "busybox"}, service="web")
    assert plain_event(event) == "2026-11-18 11:06:40.123456 container start abc (image=busybox, name=p-web-1)\n"
    assert json_event(event) == ('{"action":"start","attributes":{"image":"busybox","name":"p-web-1"},"id":"abc",'
                                 '"service":"web","time":"2026-11-18T11:06:40.123456789Z","type":"container"}')
    assert rfc3339_nano(1_795_000_000_100_000_000) == "2026-11-18T11:06:40.1Z"
    assert rfc3339_nano(1_795_000_000_000_000_000) == "2026-11-18T11:06:40Z"
