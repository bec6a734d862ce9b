"""Tests for composer.spec.yamlio: YAML text to plain trees, the way Compose v2's go-yaml v3 reads it."""

from __future__ import annotations

import math
from typing import Any

import pytest

from composer.errors import YamlSyntaxError
from composer.spec.yamlio import Document, parse_documents, resolve_plain_scalar


def parse(text: str, filename: str = "compose.yaml") -> Document:
    documents = parse_documents(text, filename)
    assert len(documents) == 1
    return documents[0]


def value_of(scalar: str) -> Any:
    return parse(f"v: {scalar}\n").tree["v"]


SCALARS: list[tuple[str, Any]] = [
    # YAML 1.2 core booleans only: YAML 1.1's yes/no/on/off stay strings.
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("FALSE", False),
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    # null forms
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("", None),
    ("nil", "nil"),
    # integers: decimal, YAML 1.1 octal (kept by go-yaml v3), 0o, hex, binary, underscores
    ("42", 42),
    ("-7", -7),
    ("+3", 3),
    ("0", 0),
    ("0777", 0o777),
    ("0o17", 0o17),
    ("0x1F", 31),
    ("0b101", 5),
    ("1_000", 1000),
    # floats
    ("0.5", 0.5),
    (".5", 0.5),
    ("1e3", 1000.0),
    ("-1.5E-2", -0.015),
    ("3.", 3.0),
    # go-yaml v3 (checked with v2's config): a leading-0 number that is not octal is a float;
    # past int64 an integer is a uint64, past that a float; past float64 it stays a string.
    ("09", 9.0),
    ("18446744073709551615", 18446744073709551615),
    ("99999999999999999999", 1e20),
    ("-9223372036854775809", -9.223372036854776e18),
    ("1e400", "1e400"),
    ("9" * 5000, "9" * 5000),
    ("0xFFFFFFFFFFFFFFFFF", "0xFFFFFFFFFFFFFFFFF"),
    # not numbers
    ("08:00", "08:00"),
    ("1.2.3", "1.2.3"),
    ("80:80", "80:80"),
    ("0x", "0x"),
    ("nginx:1.25", "nginx:1.25"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS)
def test_plain_scalar_resolution(text: str, expected: Any) -> None:
    value = value_of(text)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize("text", [".inf", ".Inf", "+.INF"])
def test_positive_infinity(text: str) -> None:
    assert value_of(text) == math.inf


def test_negative_infinity_and_nan() -> None:
    assert value_of("-.inf") == -math.inf
    assert math.isnan(value_of(".nan"))


@pytest.mark.parametrize("text", ['"true"', "'0777'", '"42"', "'null'", '"1.5"'])
def test_quoted_scalars_stay_strings(text: str) -> None:
    assert value_of(text) == text[1:-1]


def test_block_scalar_is_a_string() -> None:
    assert parse("v: |\n  42\n").tree["v"] == "42\n"


def test_unknown_tag_keeps_text() -> None:
    assert parse("v: !custom 42\n").tree["v"] == "42"


def test_resolve_plain_scalar_directly() -> None:
    assert resolve_plain_scalar("0777") == 511
    assert resolve_plain_scalar("yes") == "yes"
    assert resolve_plain_scalar("-0x10") == -16


def test_anchor_and_alias_copy_the_value() -> None:
    tree = parse("x-base: &base\n  image: nginx\nservices:\n  a: *base\n").tree
    assert tree["services"]["a"] == {"image": "nginx"}


def test_merge_key_single_map_explicit_keys_win() -> None:
    text = "x-b: &b\n  image: nginx\n  restart: always\nservices:\n  web:\n    <<: *b\n    image: httpd\n"
    assert parse(text).tree["services"]["web"] == {"image": "httpd", "restart": "always"}


def test_merge_key_explicit_key_before_merge_still_wins() -> None:
    text = "x-b: &b {image: nginx, tty: true}\nservices:\n  web:\n    image: httpd\n    <<: *b\n"
    assert parse(text).tree["services"]["web"] == {"image": "httpd", "tty": True}


def test_merge_key_list_first_map_wins() -> None:
    text = (
        "x-one: &one {image: one, init: true}\n"
        "x-two: &two {image: two, tty: true}\n"
        "services:\n  web:\n    <<: [*one, *two]\n    restart: always\n"
    )
    assert parse(text).tree["services"]["web"] == {"image": "one", "init": True, "tty": True, "restart": "always"}


def test_merge_key_requires_maps() -> None:
    with pytest.raises(YamlSyntaxError, match="map merge requires map"):
        parse("x: &s scalar\ny:\n  <<: *s\n")


def test_quoted_merge_key_is_an_ordinary_key() -> None:
    assert parse('a:\n  "<<": x\n').tree == {"a": {"<<": "x"}}


def test_duplicate_key_rejected_with_both_lines() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse("services:\n  web:\n    image: a\n    image: b\n")
    error = info.value
    assert error.location is not None
    assert (error.location.line, error.location.column) == (4, 5)
    assert "already defined at line 3" in str(error)
    assert str(error).startswith("compose.yaml:4:5: ")


@pytest.mark.parametrize(
    ("text", "shown"),
    [("1: x\n", "1"), ("true: x\n", "true"), ("null: x\n", "null"), ("1.5: x\n", "1.5"), ("~: x\n", "~")],
)
def test_non_string_keys_rejected(text: str, shown: str) -> None:
    with pytest.raises(YamlSyntaxError, match=f"non-string key at top level: {shown}"):
        parse(text)


def test_non_string_key_names_its_parent() -> None:
    with pytest.raises(YamlSyntaxError, match=r"non-string key in services\.web: 80") as info:
        parse("services:\n  web:\n    80: x\n")
    assert info.value.location is not None
    assert info.value.location.line == 3


def test_quoted_numeric_key_is_fine() -> None:
    assert parse('"80": x\n').tree == {"80": "x"}


def test_complex_key_rejected() -> None:
    with pytest.raises(YamlSyntaxError, match="mapping keys must be scalars"):
        parse("? [a]\n: b\n")


def test_reset_tag_removes_value_and_records_path() -> None:
    doc = parse("services:\n  web:\n    image: nginx\n    ports: !reset []\n    command: !reset null\n")
    assert doc.tree == {"services": {"web": {"image": "nginx"}}}
    assert doc.reset_paths == [("services", "web", "ports"), ("services", "web", "command")]


def test_reset_in_a_sequence_drops_the_item() -> None:
    doc = parse("a: [x, !reset y, z]\n")
    assert doc.tree == {"a": ["x", "z"]}
    assert doc.reset_paths == [("a", 1)]


def test_override_tag_keeps_value_and_records_path() -> None:
    doc = parse("services:\n  web:\n    ports: !override\n      - 80\n")
    assert doc.tree == {"services": {"web": {"ports": [80]}}}
    assert doc.reset_paths == [("services", "web", "ports")]


def test_override_on_scalar_still_resolves_it() -> None:
    doc = parse("a: !override 12\n")
    assert doc.tree == {"a": 12}
    assert doc.reset_paths == [("a",)]


def test_positions_are_one_based_line_and_column() -> None:
    doc = parse("services:\n  web:\n    image: nginx\n    ports:\n      - 80:80\n")
    assert doc.positions[()] == (1, 1)
    assert doc.positions[("services",)] == (1, 1)
    assert doc.positions[("services", "web")] == (2, 3)
    assert doc.positions[("services", "web", "image")] == (3, 5)
    assert doc.positions[("services", "web", "ports", 0)] == (5, 9)


def test_location_falls_back_to_nearest_ancestor() -> None:
    doc = parse("services:\n  web:\n    image: nginx\n", "x.yml")
    location = doc.location(("services", "web", "ports", 3))
    assert (location.file, location.line, location.column) == ("x.yml", 2, 3)


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n"])
def test_empty_file_rejected(text: str) -> None:
    with pytest.raises(YamlSyntaxError, match="empty compose file") as info:
        parse_documents(text, "empty.yaml")
    assert str(info.value) == "empty.yaml: empty compose file"


def test_explicit_empty_document_is_a_null_tree() -> None:
    # "---" with nothing after it is a null scalar, which the loader then refuses as not a mapping.
    assert parse("---\n...\n").tree is None


def test_several_documents() -> None:
    documents = parse_documents("a: 1\n---\nb: 2\n", "f.yaml")
    assert [document.tree for document in documents] == [{"a": 1}, {"b": 2}]


def test_syntax_error_has_line_and_column() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse("services:\n  web: [\n")
    assert info.value.location is not None
    assert info.value.location.file == "compose.yaml"
    assert info.value.location.line == 3


def test_tab_indentation_is_a_syntax_error() -> None:
    with pytest.raises(YamlSyntaxError) as info:
        parse("services:\n\tweb: {}\n")
    assert info.value.location is not None
    assert info.value.location.line == 2


def test_alias_bomb_refused() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        refs = ",".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    with pytest.raises(YamlSyntaxError, match="alias bomb") as info:
        parse("\n".join(lines) + "\n", "bomb.yaml")
    assert str(info.value).startswith("bomb.yaml:1:1: ")


def test_moderate_alias_reuse_is_accepted() -> None:
    text = "x: &x [1, 2, 3]\ny: &y [*x, *x, *x]\nz: [*y, *y]\n"
    assert parse(text).tree["z"] == [[[1, 2, 3]] * 3] * 2


def test_self_referencing_alias_is_a_cycle() -> None:
    with pytest.raises(YamlSyntaxError, match=r"cycle detected: node at path x-a\.y references node at path x-a$"):
        parse("services: {}\nx-a: &a\n  y: *a\n")


def test_alias_cycle_quirk_dotted_key_in_same_service() -> None:
    # v2 compares dotted paths: a label "a.b" using the alias also used by label "a" reads as a cycle.
    text = "x-v: &v value\nservices:\n  web:\n    labels:\n      a: *v\n      a.b: *v\n"
    with pytest.raises(YamlSyntaxError, match=r"node at path services\.web\.labels\.a\.b references"):
        parse(text)


def test_alias_cycle_quirk_not_across_services() -> None:
    text = "x-m: &m {k: v}\nservices:\n  web:\n    x-a: *m\n  db:\n    x-a.k: *m\n"
    tree = parse(text).tree
    assert tree["services"]["db"]["x-a.k"] == {"k": "v"}


def test_alias_reused_in_sibling_attributes_is_fine() -> None:
    text = "x-l: &l {a: b}\nservices:\n  web:\n    labels: *l\n    annotations: *l\n"
    assert parse(text).tree["services"]["web"]["annotations"] == {"a": "b"}
