"""Tests for composer.spec.interpolate: substitution over a whole document, and the casts after it."""

from __future__ import annotations

from typing import Any

import pytest

from composer.errors import InterpolationError
from composer.spec.interpolate import CastError, cast_for, interpolate_document, to_bool, to_float, to_int
from composer.spec.yamlio import parse_documents


def interpolate(text: str, env: dict[str, str] | None = None, filename: str = "compose.yaml") -> Any:
    document = parse_documents(text, filename)[0]
    return interpolate_document(document, (env or {}).get)


def service(body: str, env: dict[str, str] | None = None) -> Any:
    indented = "".join(f"    {line}\n" for line in body.splitlines())
    return interpolate(f"services:\n  web:\n{indented}", env)["services"]["web"]


CASTS: list[tuple[str, dict[str, str], dict[str, Any]]] = [
    ("ports:\n  - target: ${T}\n    published: ${T}", {"T": "80"}, {"ports": [{"target": 80, "published": "80"}]}),
    ("privileged: ${P}", {"P": "yes"}, {"privileged": True}),
    ("privileged: ${P}", {"P": "off"}, {"privileged": False}),
    ("read_only: ${P}", {"P": "TRUE"}, {"read_only": True}),
    ("tty: ${P}", {"P": "n"}, {"tty": False}),
    ("cpus: ${C}", {"C": "0.5"}, {"cpus": 0.5}),
    ('cpus: "1.5"', {}, {"cpus": 1.5}),
    ("scale: ${S}", {"S": "3"}, {"scale": 3}),
    ("deploy:\n  replicas: ${S}", {"S": "2"}, {"deploy": {"replicas": 2}}),
    ("healthcheck:\n  retries: ${R}\n  disable: ${D}", {"R": "5", "D": "no"},
     {"healthcheck": {"retries": 5, "disable": False}}),
    ("ulimits:\n  nproc: ${N}\n  nofile:\n    soft: ${N}\n    hard: '20'", {"N": "10"},
     {"ulimits": {"nproc": 10, "nofile": {"soft": 10, "hard": 20}}}),
    ("volumes:\n  - type: volume\n    target: /d\n    read_only: ${B}\n    volume:\n      nocopy: ${B}",
     {"B": "on"}, {"volumes": [{"type": "volume", "target": "/d", "read_only": True, "volume": {"nocopy": True}}]}),
    ("oom_score_adj: ${O}", {"O": "-500"}, {"oom_score_adj": -500}),
    # not in the table: stays a string
    ("image: ${I}", {"I": "123"}, {"image": "123"}),
    ("environment:\n  A: ${I}", {"I": "true"}, {"environment": {"A": "true"}}),
]


@pytest.mark.parametrize(("body", "env", "expected"), CASTS)
def test_casts_after_substitution(body: str, env: dict[str, str], expected: dict[str, Any]) -> None:
    assert service(body, env) == expected


def test_resource_casts() -> None:
    text = "networks:\n  n:\n    external: ${E}\n    internal: 'false'\nvolumes:\n  v:\n    external: 'yes'\n"
    tree = interpolate(text, {"E": "true"})
    assert tree == {"networks": {"n": {"external": True, "internal": False}}, "volumes": {"v": {"external": True}}}


def test_keys_are_not_interpolated() -> None:
    assert service("labels:\n  ${K}: ${V}", {"K": "k", "V": "v"}) == {"labels": {"${K}": "v"}}


def test_non_string_values_untouched() -> None:
    assert service("init: true\ncpus: 2\nscale: 1", {}) == {"init": True, "cpus": 2, "scale": 1}


def test_defaults_and_escapes() -> None:
    body = 'image: "${IMG:-nginx}:${TAG-latest}"\ncommand: echo $$HOME ${E:+set}'
    assert service(body, {"E": "1"}) == {"image": "nginx:latest", "command": "echo $HOME set"}


@pytest.mark.parametrize(
    ("path", "cast"),
    [
        (("services", "web", "cpus"), to_float),
        (("services", "web", "ports", 3, "target"), to_int),
        (("services", "web", "ulimits", "nofile", "soft"), to_int),
        (("services", "web", "ulimits", "nofile"), to_int),
        (("networks", "n", "external"), to_bool),
        (("services", "web", "image"), None),
        (("services", "web"), None),
        (("x-foo", "a", "cpus"), None),
    ],
)
def test_cast_for(path: tuple[str | int, ...], cast: Any) -> None:
    assert cast_for(path) is cast


def test_cast_functions_reject_garbage() -> None:
    with pytest.raises(CastError, match=r'strconv\.Atoi: parsing "1\.5"'):
        to_int("1.5")
    with pytest.raises(CastError, match=r"strconv\.ParseFloat"):
        to_float("half")
    with pytest.raises(CastError, match="invalid boolean: maybe"):
        to_bool("maybe")


def test_required_variable_error_has_location_and_path() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate("services:\n  web:\n    image: ${X:?boom}\n", {}, "dir/compose.yaml")
    error = info.value
    assert error.path == "services.web.image"
    assert error.location is not None
    assert (error.location.file, error.location.line, error.location.column) == ("dir/compose.yaml", 3, 5)
    assert "boom" in error.message
    assert str(error) == f"dir/compose.yaml:3:5: services.web.image: {error.message}"


def test_required_variable_set_but_empty() -> None:
    with pytest.raises(InterpolationError, match="empty"):
        interpolate("services:\n  web:\n    image: ${X:?empty}\n", {"X": ""})
    assert interpolate("services:\n  web:\n    image: ${X?unset}\n", {"X": ""}) == {"services": {"web": {"image": ""}}}


def test_invalid_template_error() -> None:
    with pytest.raises(InterpolationError, match="invalid interpolation format") as info:
        interpolate('services:\n  web:\n    image: "${X"\n')
    assert info.value.path == "services.web.image"


def test_error_inside_a_list_names_the_index() -> None:
    with pytest.raises(InterpolationError) as info:
        interpolate("services:\n  web:\n    command:\n      - a\n      - ${Y:?no}\n")
    assert info.value.path == "services.web.command[1]"
    assert info.value.location is not None
    assert info.value.location.line == 5


def test_failed_cast_error() -> None:
    with pytest.raises(InterpolationError, match="failed to cast to expected type") as info:
        interpolate("services:\n  web:\n    cpus: ${C}\n", {"C": "lots"})
    assert info.value.path == "services.web.cpus"
    assert info.value.location is not None
    assert info.value.location.line == 3
