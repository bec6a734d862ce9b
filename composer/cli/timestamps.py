"""Docker's time arguments (``logs --since/--until``): a Go duration back from now (``10s``,
``1m30s``, ``1.5h``), an RFC 3339 timestamp or date (local time without a zone), or a Unix
time. Pure: unit-tested without an engine."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from composer.errors import UsageError

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"([+-]?)((?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:T(\d{2})(?::(\d{2}))?(?::(\d{2}))?(?:\.(\d+))?)?(Z|z|[+-]\d{2}:\d{2})?")
_UNIX = re.compile(r"\d+(?:\.\d+)?")


def duration_seconds(value: str) -> float | None:
    """A Go duration (time.ParseDuration) in seconds; None when ``value`` is not one."""
    match = _DURATION.fullmatch(value)
    if match is None:
        return None
    total = sum(float(number) * _UNITS[unit] for number, unit in _PART.findall(match.group(2)))
    return -total if match.group(1) == "-" else total


def _micros(fraction: str, flag: str) -> int:
    """A second's fraction in whole microseconds, rounded outwards (down for since, up for until):
    a float of nanoseconds near 1.8e9 s is only good to ~0.2 us, and rounding it to the microsecond
    could move a bound copied from ``logs -t`` past its own line."""
    micros = int(fraction[:6].ljust(6, "0"))
    if flag == "until" and fraction[6:].strip("0"):
        micros += 1
    return micros


def parse_time(value: str, now: float, flag: str = "since") -> float:
    """The Unix time ``value`` names, as docker's GetTimestamp reads it; ``now`` for durations.

    :raises UsageError: not a duration, timestamp or Unix time (v2's words).
    """
    seconds = duration_seconds(value) if value != "0" else None
    if seconds is not None:
        return float(int(now - seconds))  # docker keeps whole seconds here
    match = _TIMESTAMP.fullmatch(value)
    if match is not None:
        year, month, day, hour, minute, second, fraction, zone = match.groups()
        tz: timezone | None = None
        if zone in ("Z", "z"):
            tz = UTC
        elif zone:
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        try:
            moment = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0),
                              tzinfo=tz)
        except ValueError as exc:
            raise UsageError(f'invalid value for "{flag}": {exc}') from None
        return moment.timestamp() + _micros(fraction or "", flag) / 1_000_000  # naive: local time
    if _UNIX.fullmatch(value):
        return float(value)
    raise UsageError(f'invalid value for "{flag}": failed to parse value as time or duration: "{value}"')
