"""Stage 2: interpolation of ``${VAR}`` expressions in every string value of a document.

Keys are never interpolated, as in Compose v2. After substitution, values at a few model
paths are cast from strings to the type the schema expects (``cpus: ${CPUS}`` becomes a
number), through the table ``CASTS``; this runs before schema validation so that the
schema sees the cast values.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from composer.errors import InterpolationError
from composer.spec.modelpath import ANY, PathKey, format_path
from composer.spec.template import InvalidTemplateError, Lookup, TemplateError, substitute
from composer.spec.units import INT64_LIMIT
from composer.spec.yamlio import Document


class CastError(ValueError):
    """A value cannot be converted to the type its path requires."""


def to_int(value: str) -> int:
    """strconv.ParseInt(value, 10, 64), as v2 casts: a number out of 64 bits is out of range."""
    try:
        number = int(value, 10)
    except ValueError:
        if value.strip().lstrip("+-").isdigit():  # more digits than int() converts
            raise CastError(f'strconv.ParseInt: parsing "{_short(value)}": value out of range') from None
        raise CastError(f'strconv.Atoi: parsing "{_short(value)}": invalid syntax') from None
    if not -INT64_LIMIT <= number < INT64_LIMIT:
        raise CastError(f'strconv.ParseInt: parsing "{_short(value)}": value out of range')
    return number


def to_float(value: str) -> float:
    """strconv.ParseFloat(value, 64), but infinities and NaN are refused (v2 takes ``cpus: inf``)."""
    try:
        number = float(value)
    except ValueError:
        raise CastError(f'strconv.ParseFloat: parsing "{_short(value)}": invalid syntax') from None
    if not math.isfinite(number):
        literal = value.strip().lstrip("+-").lower() in ("inf", "infinity", "nan")
        reason = "not a finite number" if literal else "value out of range"
        raise CastError(f'strconv.ParseFloat: parsing "{_short(value)}": {reason}')
    return number


def _short(value: str) -> str:
    """A value quoted in a one-line message: a 5,000-digit number is cut."""
    return value if len(value) <= 40 else value[:40] + "..."


def to_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("y", "yes", "true", "on"):
        return True
    if lowered in ("n", "no", "false", "off"):
        return False
    raise CastError(f"invalid boolean: {value}")


Cast = Callable[[str], Any]

_SERVICE_CASTS: dict[PathKey, Cast] = {
    ("cpu_count",): to_int,
    ("cpu_percent",): to_float,
    ("cpu_period",): to_int,
    ("cpu_quota",): to_int,
    ("cpu_rt_period",): to_int,
    ("cpu_rt_runtime",): to_int,
    ("cpus",): to_float,
    ("cpu_shares",): to_int,
    ("init",): to_bool,
    ("deploy", "replicas"): to_int,
    ("deploy", "update_config", "parallelism"): to_int,
    ("deploy", "update_config", "max_failure_ratio"): to_float,
    ("deploy", "rollback_config", "parallelism"): to_int,
    ("deploy", "rollback_config", "max_failure_ratio"): to_float,
    ("deploy", "restart_policy", "max_attempts"): to_int,
    ("deploy", "placement", "max_replicas_per_node"): to_int,
    ("healthcheck", "retries"): to_int,
    ("healthcheck", "disable"): to_bool,
    ("oom_kill_disable",): to_bool,
    ("oom_score_adj",): to_int,
    ("pids_limit",): to_int,
    ("ports", ANY, "target"): to_int,
    ("privileged",): to_bool,
    ("read_only",): to_bool,
    ("scale",): to_int,
    ("stdin_open",): to_bool,
    ("tty",): to_bool,
    ("ulimits", ANY): to_int,
    ("ulimits", ANY, "hard"): to_int,
    ("ulimits", ANY, "soft"): to_int,
    ("volumes", ANY, "read_only"): to_bool,
    ("volumes", ANY, "volume", "nocopy"): to_bool,
    ("volumes", ANY, "bind", "create_host_path"): to_bool,
    ("gpus", ANY, "count"): to_int,
    ("attach",): to_bool,
}
_RESOURCE_CASTS: dict[str, dict[PathKey, Cast]] = {
    "networks": {("external",): to_bool, ("internal",): to_bool, ("attachable",): to_bool,
                 ("enable_ipv6",): to_bool, ("enable_ipv4",): to_bool},
    "volumes": {("external",): to_bool},
    "secrets": {("external",): to_bool},
    "configs": {("external",): to_bool},
}


def cast_for(path: PathKey) -> Cast | None:
    """The cast that applies at ``path``, if any (``services.<name>.<rest>`` or ``<kind>.<name>.<rest>``)."""
    if len(path) < 3 or not isinstance(path[0], str):
        return None
    table = _SERVICE_CASTS if path[0] == "services" else _RESOURCE_CASTS.get(path[0])
    if table is None:
        return None
    rest = tuple(ANY if isinstance(part, int) else part for part in path[2:])
    cast = table.get(rest)
    if cast is None and len(rest) >= 2:
        # ulimits.<name> and ulimits.<name>.soft: the second element is any key.
        cast = table.get((rest[0], ANY, *rest[2:]))
    return cast


def interpolate_document(document: Document, lookup: Lookup) -> Any:
    """Return the document's tree with every string substituted and cast.

    :raises InterpolationError: an expression is malformed, a required variable is unset,
        or a substituted value cannot be cast.
    """
    return _walk(document.tree, (), lookup, document)


def _walk(value: Any, path: PathKey, lookup: Lookup, document: Document) -> Any:
    if isinstance(value, str):
        return _interpolate_string(value, path, lookup, document)
    if isinstance(value, dict):
        return {key: _walk(item, (*path, key), lookup, document) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, (*path, index), lookup, document) for index, item in enumerate(value)]
    return value


def _interpolate_string(value: str, path: PathKey, lookup: Lookup, document: Document) -> Any:
    if "$" in value:
        try:
            value = substitute(value, lookup)
        except InvalidTemplateError as exc:
            raise InterpolationError(
                f"invalid interpolation format in {exc.template!r} (write a literal $ as $$)",
                location=document.location(path), path=format_path(path),
            ) from None
        except TemplateError as exc:
            raise InterpolationError(exc.message, location=document.location(path), path=format_path(path)) from None
    cast = cast_for(path)
    if cast is None:
        return value
    try:
        return cast(value)
    except CastError as exc:
        raise InterpolationError(
            f"failed to cast to expected type: {exc}",
            location=document.location(path), path=format_path(path),
        ) from None
