"""``logs --since/--until`` and ``events --since``: Go durations and Docker's time formats."""

from __future__ import annotations

import pytest

from composer.cli.timestamps import duration_seconds, parse_time
from composer.errors import UsageError


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
