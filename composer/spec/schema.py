"""Schema validation against the Compose Specification's JSON schema (compose-spec.json).

A small validator for the keywords that schema uses (type, properties, patternProperties,
additionalProperties, required, enum, oneOf, anyOf, $ref, items, uniqueItems, minimum,
maximum, pattern). We carry our own rather than a general JSON-schema library because it
imports in a millisecond, walks the tree once, and reports the model path of the first
offending value, which the loader turns into file:line:column.
"""

from __future__ import annotations

import json
import math
import os
import re
from functools import cache
from typing import Any

from composer.spec.modelpath import PathKey
from composer.spec.units import INT64_LIMIT

Schema = dict[str, Any]


class SchemaViolation(Exception):
    """The first place where a tree breaks the schema; ``expected`` lists the types wanted when
    the value had the wrong type."""

    def __init__(self, path: PathKey, message: str, expected: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.path = path
        self.message = message
        self.expected = expected


def _must_be(kinds: tuple[str, ...]) -> str:
    """``must be an object or array``: the types in words, with the right article."""
    article = "an" if kinds[0][0] in "aeiou" else "a"
    return f"must be {article} {' or '.join(kinds)}"


@cache
def compose_schema() -> Schema:
    # A plain open() rather than importlib.resources, whose import alone costs 5 ms.
    path = os.path.join(os.path.dirname(__file__), "data", "compose-spec.json")
    with open(path, encoding="utf-8") as handle:
        schema: Schema = json.load(handle)
    return schema


@cache
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _type_matches(value: Any, wanted: str) -> bool:
    actual = _type_name(value)
    if wanted == "number":
        return actual in ("integer", "number")
    if wanted == "integer" and actual == "number":
        return float(value).is_integer()
    return actual == wanted


def validate(instance: Any, schema: Schema | None = None) -> None:
    """Validate a whole Compose tree.

    :raises SchemaViolation: at the first violation found, with its path.
    """
    root = compose_schema()
    _Validator(root).check(instance, schema or root, ())


class _Validator:
    def __init__(self, root: Schema) -> None:
        self.root = root

    def resolve(self, schema: Schema) -> Schema:
        while "$ref" in schema:
            ref: str = schema["$ref"]
            node: Any = self.root
            for part in ref.lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def check(self, value: Any, schema: Schema, path: PathKey) -> None:
        schema = self.resolve(schema)
        wanted = schema.get("type")
        if wanted is not None:
            self.check_type(value, wanted, path)
        if "enum" in schema and value not in schema["enum"]:
            choices = ", ".join(json.dumps(choice) for choice in schema["enum"])
            raise SchemaViolation(path, f"must be one of {choices}")
        if "oneOf" in schema:
            self.check_one_of(value, schema["oneOf"], path)
        if "anyOf" in schema:
            self.check_any_of(value, schema["anyOf"], path)
        if isinstance(value, dict):
            self.check_object(value, schema, path)
        elif isinstance(value, list):
            self.check_array(value, schema, path)
        elif isinstance(value, str):
            pattern = schema.get("pattern")
            if pattern is not None and not _regex(pattern).search(value):
                raise SchemaViolation(path, f"{json.dumps(value)} does not match pattern {pattern!r}")
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.check_bounds(value, schema, path)

    def check_type(self, value: Any, wanted: str | list[str], path: PathKey) -> None:
        names = [wanted] if isinstance(wanted, str) else wanted
        if not any(_type_matches(value, name) for name in names):
            raise SchemaViolation(path, f"{_must_be(tuple(names))}, not {_type_name(value)} {_short(value)}",
                                  tuple(names))

    def check_bounds(self, value: float, schema: Schema, path: PathKey) -> None:
        wanted = schema.get("type")
        if wanted == "number" or wanted == "integer" or (
                isinstance(wanted, list) and ("number" in wanted or "integer" in wanted)):
            # Every number of the model is a Go int64 or float: v2 turns .inf, .nan and 1e300 into
            # nonsense (pids_limit: -9223372036854775808) or panics; they are refused here.
            if isinstance(value, float) and not math.isfinite(value):
                raise SchemaViolation(path, f"must be a finite number, not {_short(value)}")
            if not -INT64_LIMIT <= value < INT64_LIMIT:
                raise SchemaViolation(path, f"value out of range: {_short(value)} does not fit in 64 bits")
        if "minimum" in schema and value < schema["minimum"]:
            raise SchemaViolation(path, f"must be >= {schema['minimum']}, not {value}")
        if "maximum" in schema and value > schema["maximum"]:
            raise SchemaViolation(path, f"must be <= {schema['maximum']}, not {value}")

    def check_one_of(self, value: Any, options: list[Schema], path: PathKey) -> None:
        failures: list[SchemaViolation] = []
        passed = 0
        for option in options:
            try:
                self.check(value, option, path)
            except SchemaViolation as exc:
                failures.append(exc)
            else:
                passed += 1
        if passed == 1:
            return
        if passed > 1:
            raise SchemaViolation(path, "matches more than one of the allowed forms")
        raise _best_failure(failures, path)

    def check_any_of(self, value: Any, options: list[Schema], path: PathKey) -> None:
        failures: list[SchemaViolation] = []
        for option in options:
            try:
                self.check(value, option, path)
            except SchemaViolation as exc:
                failures.append(exc)
            else:
                return
        raise _best_failure(failures, path)

    def check_object(self, value: dict[str, Any], schema: Schema, path: PathKey) -> None:
        for key in schema.get("required", ()):
            if key not in value:
                raise SchemaViolation(path, f"missing property {key!r}")
        properties: Schema = schema.get("properties", {})
        patterns: Schema = schema.get("patternProperties", {})
        additional = schema.get("additionalProperties", True)
        for key, item in value.items():
            matched = False
            if key in properties:
                matched = True
                self.check(item, properties[key], (*path, key))
            for pattern, subschema in patterns.items():
                if _regex(pattern).search(key):
                    matched = True
                    self.check(item, subschema, (*path, key))
            if matched:
                continue
            if additional is False:
                raise SchemaViolation((*path, key), _not_allowed(key, properties))
            if isinstance(additional, dict):
                self.check(item, additional, (*path, key))

    def check_array(self, value: list[Any], schema: Schema, path: PathKey) -> None:
        items = schema.get("items")
        if isinstance(items, dict):
            for index, item in enumerate(value):
                self.check(item, items, (*path, index))
        if schema.get("uniqueItems"):
            seen: list[str] = []
            for index, item in enumerate(value):
                marker = json.dumps(item, sort_keys=True)
                if marker in seen:
                    raise SchemaViolation((*path, index), f"duplicate item {_short(item)}")
                seen.append(marker)


def _not_allowed(key: str, properties: Schema) -> str:
    """Name the unknown key, and the known one it most resembles (``imag``: did you mean image?)."""
    import difflib

    message = f"additional property {key!r} is not allowed"
    close = difflib.get_close_matches(key, list(properties), n=1, cutoff=0.75)
    return f"{message} (did you mean {close[0]!r}?)" if close else message


def _best_failure(failures: list[SchemaViolation], path: PathKey) -> SchemaViolation:
    """The most telling error of a failed oneOf/anyOf: the one that got deepest."""
    deepest = max(failures, key=lambda failure: len(failure.path))
    if len(deepest.path) > len(path):
        return deepest
    # A form whose type matched but whose content did not (a missing property...) says more.
    for failure in failures:
        if not failure.expected:
            return failure
    kinds = tuple(dict.fromkeys(kind for failure in failures for kind in failure.expected))
    return SchemaViolation(path, _must_be(kinds), kinds)


def _short(value: Any, limit: int = 40) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= limit else text[:limit] + "..."
