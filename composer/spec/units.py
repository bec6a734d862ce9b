"""Durations and byte sizes, parsed and printed the way Compose v2 (Go) does.

Durations print in Go's ``time.Duration`` form (``1m30s``, ``500ms``); byte sizes accept
``512m``, ``1.5g``, ``20G``, ``1024`` and print as a count of bytes.
"""

from __future__ import annotations

import math
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
    "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000,
}
_BYTES = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(i?b?)\s*$", re.IGNORECASE)
_BYTE_POWERS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}
# Go stores sizes and durations (nanoseconds) in an int64; beyond it v2 wraps around silently.
INT64_LIMIT = 1 << 63


class UnitError(ValueError):
    """A duration or byte size cannot be parsed."""


def parse_duration(text: str) -> int:
    """Go's time.ParseDuration, returning nanoseconds.

    :raises UnitError: not a duration.
    """
    value = text.strip()
    if not value:
        raise UnitError(f'time: invalid duration "{value}"')
    if value in ("0", "+0", "-0"):
        return 0
    sign = 1
    if value[:1] in "+-":
        sign = -1 if value[0] == "-" else 1
        value = value[1:]
    if not value:
        raise UnitError(f'time: invalid duration "{text}"')
    position = 0
    total = 0.0
    while position < len(value):
        match = _DURATION_PART.match(value, position)
        if match is None:
            if re.match(r"(\d+(?:\.\d*)?|\.\d+)$", value[position:]):
                raise UnitError(f'time: missing unit in duration "{text}"')
            raise UnitError(f'time: invalid duration "{text}"')
        total += float(match.group(1)) * _UNIT_NANOS[match.group(2)]
        position = match.end()
    if not total < INT64_LIMIT:  # Go: an overflowing duration is invalid
        raise UnitError(f'time: invalid duration "{_short(text)}"')
    return sign * round(total)


def seconds_to_nanos(seconds: float) -> int:
    """A number of seconds (YAML ``interval: 1.5``) as nanoseconds that fit a Go time.Duration.

    :raises UnitError: infinite, NaN, or beyond ±292 years.
    """
    if isinstance(seconds, float) and not math.isfinite(seconds):
        raise UnitError(f"invalid duration {seconds!r}: not a finite number")
    nanos = seconds * 1_000_000_000 if isinstance(seconds, int) else round(seconds * 1_000_000_000)
    if not -INT64_LIMIT <= nanos < INT64_LIMIT:
        raise UnitError(f"invalid duration {seconds!r}: out of range")
    return nanos


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:40] + "..."


def format_duration(nanos: int) -> str:
    """Go's time.Duration.String()."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    nanos = abs(nanos)
    if nanos < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if nanos >= size:
                return sign + _fraction(nanos, size) + unit
    hours, rest = divmod(nanos, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{str(rest).rjust(digits, '0').rstrip('0')}"


def normalize_duration(value: object) -> str:
    """A duration from YAML (string, or a number of seconds) in Go's printed form."""
    if isinstance(value, bool):
        raise UnitError(f"invalid duration {value!r}")
    if isinstance(value, int | float):
        return format_duration(seconds_to_nanos(value))
    if isinstance(value, str):
        return format_duration(parse_duration(value))
    raise UnitError(f"invalid duration {value!r}")


def parse_bytes(value: object) -> int:
    """A byte size: an integer, or ``<number><unit>`` with units b, k, m, g (powers of 1024).

    :raises UnitError: not a size, or not one an int64 holds (v2 wraps ``99999999999g`` around).
    """
    if isinstance(value, bool):
        raise UnitError(f"invalid size: {value!r}")
    if isinstance(value, int | float):
        return _bytes_in_range(value, value)
    if not isinstance(value, str):
        raise UnitError(f"invalid size: {value!r}")
    match = _BYTES.match(value)
    if match is None:
        raise UnitError(f"invalid size: '{_short(value)}'")
    number, prefix, _suffix = match.groups()
    return _bytes_in_range(float(number) * 1024 ** _BYTE_POWERS[prefix.lower()], value)


def _bytes_in_range(size: float, written: object) -> int:
    shown = _short(written) if isinstance(written, str) else written
    if isinstance(written, float) and not math.isfinite(written):
        raise UnitError(f"invalid size: '{shown}': not a finite number")
    if not -INT64_LIMIT <= size < INT64_LIMIT:  # also an infinity from too many digits
        raise UnitError(f"invalid size: '{shown}': value out of range")
    return int(size)
