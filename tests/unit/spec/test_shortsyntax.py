"""Tests for composer.spec.shortsyntax: the short forms of ports, volumes, devices and extra hosts.

Expected long forms follow the Compose Specification and what Docker Compose v2 prints for them.
"""

from __future__ import annotations

from typing import Any

import pytest

from composer.spec.shortsyntax import parse_device, parse_extra_host, parse_port, parse_volume


def port(target: int, published: str = "", protocol: str = "tcp", host_ip: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {"mode": "ingress"}
    if host_ip:
        result["host_ip"] = host_ip
    result["target"] = target
    if published:
        result["published"] = published
    result["protocol"] = protocol
    return result


PORTS: list[tuple[str, list[dict[str, Any]]]] = [
    ("80", [port(80)]),
    ("8080:80", [port(80, "8080")]),
    ("80/udp", [port(80, protocol="udp")]),
    ("80/UDP", [port(80, protocol="udp")]),
    ("53:53/sctp", [port(53, "53", "sctp")]),
    ("127.0.0.1:8080:80", [port(80, "8080", host_ip="127.0.0.1")]),
    ("127.0.0.1::80", [port(80, host_ip="127.0.0.1")]),
    ("[::1]:8080:80", [port(80, "8080", host_ip="::1")]),
    ("::1:8080:80", [port(80, "8080", host_ip="::1")]),
    ("3000-3002", [port(3000), port(3001), port(3002)]),
    ("8000-8001:9000-9001", [port(9000, "8000"), port(9001, "8001")]),
    # a host range for one container port stays a range
    ("8080-8081:80", [port(80, "8080-8081")]),
    # v2 sorts expanded ranges by their "<port>/<proto>" text: "10/udp" < "11/udp" < "9/udp"
    ("9-11:9-11/udp", [port(10, "10", "udp"), port(11, "11", "udp"), port(9, "9", "udp")]),
    ("98-101", [port(100), port(101), port(98), port(99)]),
]


@pytest.mark.parametrize(("spec", "expected"), PORTS)
def test_parse_port(spec: str, expected: list[dict[str, Any]]) -> None:
    assert parse_port(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("x:80", "invalid hostPort: x"),
        ("80:y", "invalid containerPort: y"),
        ("70000", "invalid containerPort: 70000"),
        ("81-80", "invalid containerPort: 81-80"),
        ("80/icmp", "invalid proto: icmp"),
        ("1.2.3:80:80", "invalid IP address: 1.2.3"),
        ("[::1:80:80", "invalid IP address"),
        ("8000-8002:9000-9001", "invalid ranges specified for container and host Ports"),
        ("8080:", "no port specified"),
    ],
)
def test_parse_port_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        parse_port(spec)


VOLUMES: list[tuple[str, dict[str, Any]]] = [
    ("/data", {"type": "volume", "target": "/data", "volume": {}}),
    ("named:/data", {"type": "volume", "source": "named", "target": "/data", "volume": {}}),
    ("named:/data:ro", {"type": "volume", "source": "named", "target": "/data", "read_only": True, "volume": {}}),
    ("named:/data:nocopy", {"type": "volume", "source": "named", "target": "/data", "volume": {"nocopy": True}}),
    ("named:/data:rw", {"type": "volume", "source": "named", "target": "/data", "volume": {}}),
    ("./src:/app", {"type": "bind", "source": "./src", "target": "/app", "bind": {"create_host_path": True}}),
    ("../up:/app:ro", {"type": "bind", "source": "../up", "target": "/app", "read_only": True,
                       "bind": {"create_host_path": True}}),
    ("/host:/c:z", {"type": "bind", "source": "/host", "target": "/c",
                    "bind": {"selinux": "z", "create_host_path": True}}),
    ("/host:/c:Z", {"type": "bind", "source": "/host", "target": "/c",
                    "bind": {"selinux": "Z", "create_host_path": True}}),
    ("/host:/c:rshared,ro", {"type": "bind", "source": "/host", "target": "/c", "read_only": True,
                             "bind": {"propagation": "rshared", "create_host_path": True}}),
    ("~/cfg:/cfg", {"type": "bind", "source": "~/cfg", "target": "/cfg", "bind": {"create_host_path": True}}),
    ("C:\\data:/data", {"type": "bind", "source": "C:\\data", "target": "/data", "bind": {"create_host_path": True}}),
    ("c:/data:/data:ro", {"type": "bind", "source": "c:/data", "target": "/data", "read_only": True,
                          "bind": {"create_host_path": True}}),
    # a one-letter name followed by ":" reads as a Windows drive, as in v2
    ("a:/b:rw", {"type": "bind", "source": "a:/b", "target": "rw", "bind": {"create_host_path": True}}),
    ("ab", {"type": "volume", "target": "ab", "volume": {}}),
]


@pytest.mark.parametrize(("spec", "expected"), VOLUMES)
def test_parse_volume(spec: str, expected: dict[str, Any]) -> None:
    assert parse_volume(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "invalid empty volume spec"),
        ("vol::/data", "empty section between colons"),
        ("/a:/b:ro:extra", "too many colons"),
    ],
)
def test_parse_volume_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_volume(spec)


DEVICES: list[tuple[str, dict[str, str]]] = [
    ("/dev/sda", {"source": "/dev/sda", "target": "/dev/sda", "permissions": "rwm"}),
    ("/dev/sda:/dev/xvda", {"source": "/dev/sda", "target": "/dev/xvda", "permissions": "rwm"}),
    ("/dev/sda:/dev/xvda:r", {"source": "/dev/sda", "target": "/dev/xvda", "permissions": "r"}),
    ("/dev/sda::r", {"source": "/dev/sda", "target": "/dev/sda", "permissions": "r"}),
    # v2 reads the second field as the target even when it looks like permissions
    ("/dev/sda:rw", {"source": "/dev/sda", "target": "rw", "permissions": "rwm"}),
]


@pytest.mark.parametrize(("spec", "expected"), DEVICES)
def test_parse_device(spec: str, expected: dict[str, str]) -> None:
    assert parse_device(spec) == expected


def test_parse_device_too_many_fields() -> None:
    with pytest.raises(ValueError, match="invalid device specification: a:b:c:d"):
        parse_device("a:b:c:d")


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("db=10.0.0.2", ("db", "10.0.0.2")),
        ("db:10.0.0.2", ("db", "10.0.0.2")),
        ("v6:::1", ("v6", "::1")),
        ("v6=[::1]", ("v6", "::1")),
        ("gw=host-gateway", ("gw", "host-gateway")),
    ],
)
def test_parse_extra_host(entry: str, expected: tuple[str, str]) -> None:
    assert parse_extra_host(entry) == expected


def test_parse_extra_host_without_ip() -> None:
    with pytest.raises(ValueError, match="missing IP: lonely"):
        parse_extra_host("lonely")
