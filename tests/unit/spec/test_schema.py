"""Tests for composer.spec.schema: the Compose JSON schema, reporting the first violation's path."""

from __future__ import annotations

from typing import Any

import pytest

from composer.spec.schema import SchemaViolation, compose_schema, validate

VALID: list[dict[str, Any]] = [
    {"services": {"web": {"image": "nginx"}}},
    {"services": {"web": {"image": "nginx", "x-anything": [1, {"a": None}]}}, "x-top": 1},
    {"services": {"web": {"build": "."}}},
    {"services": {"web": {"build": {"context": ".", "args": ["A=1"]}}}},
    {"services": {"web": {"ports": ["80:80", 443, {"target": 80}]}}},
    {"services": {"web": {"environment": {"A": None, "B": 1, "C": True}}}},
    {"services": {"web": {"depends_on": ["db"]}}, "volumes": {"v": None}, "networks": {"n": {}}},
    {"name": "proj", "services": {}},
    {"services": {"web": {"cpus": 0.5, "restart": "anything"}}},
]


@pytest.mark.parametrize("tree", VALID)
def test_valid_trees(tree: dict[str, Any]) -> None:
    validate(tree)


INVALID: list[tuple[dict[str, Any], tuple[str | int, ...], str]] = [
    # type errors
    ({"services": {"web": {"image": 1}}}, ("services", "web", "image"), "must be a string, not integer 1"),
    ({"services": {"web": {"privileged": 3}}}, ("services", "web", "privileged"), "must be a boolean or string"),
    ({"services": []}, ("services",), "must be an object"),
    ({"networks": {"n": {"driver": 1}}}, ("networks", "n", "driver"), "must be a string"),
    ({"services": {"web": {"environment": 3}}}, ("services", "web", "environment"), "must be an object or array"),
    # additional properties
    ({"foo": 1}, ("foo",), "additional property 'foo' is not allowed"),
    ({"services": {"web": {"imagen": "x"}}}, ("services", "web", "imagen"), "additional property 'imagen'"),
    ({"services": {"web b": {}}}, ("services", "web b"), "additional property 'web b'"),
    ({"volumes": {"v": {"drivr": "local"}}}, ("volumes", "v", "drivr"), "additional property 'drivr'"),
    # enum
    ({"services": {"web": {"depends_on": {"db": {"condition": "started"}}}}},
     ("services", "web", "depends_on", "db", "condition"), 'must be one of "service_started"'),
    # oneOf / anyOf: the deepest failure, or the list of accepted types
    ({"services": {"web": {"build": 1}}}, ("services", "web", "build"), "must be a string or object"),
    ({"services": {"web": {"ports": [True]}}}, ("services", "web", "ports", 0), "must be a"),
    ({"services": {"web": {"build": {"context": 1}}}}, ("services", "web", "build", "context"), "must be a string"),
    # uniqueItems, pattern, required
    ({"services": {"web": {"cap_add": ["NET_ADMIN", "NET_ADMIN"]}}}, ("services", "web", "cap_add", 1),
     'duplicate item "NET_ADMIN"'),
    ({"services": {"web": {"pull_policy": "sometimes"}}}, ("services", "web", "pull_policy"), "does not match pattern"),
    ({"services": {"web": {"extends": {"file": "x.yml"}}}}, ("services", "web", "extends"),
     "missing property 'service'"),
]


@pytest.mark.parametrize(("tree", "path", "message"), INVALID)
def test_violations_name_the_path(tree: dict[str, Any], path: tuple[str | int, ...], message: str) -> None:
    with pytest.raises(SchemaViolation) as info:
        validate(tree)
    assert info.value.path == path
    assert message in info.value.message


def test_one_of_matching_two_forms_is_refused() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "number"}]}
    with pytest.raises(SchemaViolation, match="more than one"):
        validate(3, schema)
    validate(2.5, schema)


def test_one_of_matching_none_lists_the_types() -> None:
    schema = {"oneOf": [{"type": "integer"}, {"type": "array"}]}
    with pytest.raises(SchemaViolation) as info:
        validate("x", schema)
    assert info.value.message == "must be an integer or array"
    assert info.value.path == ()


def test_bounds_and_integer_float() -> None:
    schema = {"type": "integer", "minimum": 1, "maximum": 10}
    validate(2.0, schema)
    with pytest.raises(SchemaViolation, match="must be >= 1"):
        validate(0, schema)
    with pytest.raises(SchemaViolation, match="must be <= 10"):
        validate(11, schema)
    with pytest.raises(SchemaViolation, match="must be an integer"):
        validate(2.5, schema)


def test_boolean_is_not_an_integer() -> None:
    with pytest.raises(SchemaViolation, match="not boolean"):
        validate(True, {"type": "integer"})


def test_schema_is_the_compose_specification() -> None:
    schema = compose_schema()
    assert "service" in schema["definitions"]
    assert schema["properties"]["services"]["additionalProperties"] is False
