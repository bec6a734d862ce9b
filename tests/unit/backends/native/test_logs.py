"""The time window of ``logs --since/--until`` on the native backend's lines."""

from __future__ import annotations

from composer.backends.native.logs import unix_time, within
from composer.contract.backend import LogLine


def test_unix_time_reads_the_monitors_stamps_to_the_nanosecond() -> None:
    assert unix_time("1970-01-01T00:00:10.500000000Z") == 10.5
    assert unix_time("2026-12-07T16:52:04Z") == 1796662324.0
    assert unix_time("1970-01-01T00:00:01.25Z") == 1.25
    assert unix_time(None) is None
    assert unix_time("yesterday") is None


def test_the_window_keeps_since_and_until_themselves() -> None:
    line = LogLine("c", "s", "text", "stdout", "1970-01-01T00:00:10.000000000Z")
    assert within(line, 10.0, 10.0)
    assert not within(line, 10.001, None)
    assert not within(line, None, 9.999)
    assert within(LogLine("c", "s", "no log kept", "warning"), 20.0, 30.0)  # the none driver's warning
