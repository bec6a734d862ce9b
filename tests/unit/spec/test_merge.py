"""Tests for composer.spec.merge: (base, override, expected) triples over canonical trees."""

from __future__ import annotations

from typing import Any

import pytest

from composer.spec.merge import delete_paths, enforce_unicity, merge_values, unique


def merge_service(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = merge_values({"services": {"web": base}}, {"services": {"web": override}}, ())
    result: dict[str, Any] = enforce_unicity(merged)["services"]["web"]
    return result


def volume(target: str, source: str = "v") -> dict[str, Any]:
    return {"type": "volume", "source": source, "target": target}


def port(target: int, published: str = "", host_ip: str = "") -> dict[str, Any]:
    result: dict[str, Any] = {"target": target, "protocol": "tcp"}
    if published:
        result["published"] = published
    if host_ip:
        result["host_ip"] = host_ip
    return result


TRIPLES: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    # scalars: the override wins
    ({"image": "a", "init": True}, {"image": "b"}, {"image": "b", "init": True}),
    # mappings merge key by key
    ({"environment": {"A": "1", "B": "2"}}, {"environment": {"B": "3", "C": None}},
     {"environment": {"A": "1", "B": "3", "C": None}}),
    ({"labels": {"a": "1"}}, {"labels": {"b": "2"}}, {"labels": {"a": "1", "b": "2"}}),
    ({"deploy": {"resources": {"limits": {"cpus": 1.0}}}}, {"deploy": {"resources": {"limits": {"memory": 5}}}},
     {"deploy": {"resources": {"limits": {"cpus": 1.0, "memory": 5}}}}),
    # plain lists append
    ({"group_add": ["a"]}, {"group_add": ["b", "a"]}, {"group_add": ["a", "b", "a"]}),
    # command, entrypoint and healthcheck.test are replaced, never appended
    ({"command": ["a", "b"]}, {"command": ["c"]}, {"command": ["c"]}),
    ({"entrypoint": ["sh"]}, {"entrypoint": ["bash", "-c"]}, {"entrypoint": ["bash", "-c"]}),
    ({"healthcheck": {"test": ["CMD", "a"], "retries": 3}}, {"healthcheck": {"test": ["CMD", "b"]}},
     {"healthcheck": {"test": ["CMD", "b"], "retries": 3}}),
    # sets of strings: duplicates dropped
    ({"dns": ["1.1.1.1"]}, {"dns": ["8.8.8.8", "1.1.1.1"]}, {"dns": ["1.1.1.1", "8.8.8.8"]}),
    ({"cap_add": ["NET_ADMIN"]}, {"cap_add": ["NET_ADMIN", "SYS_TIME"]}, {"cap_add": ["NET_ADMIN", "SYS_TIME"]}),
    # volumes by target: the later entry replaces the earlier one in its first position
    ({"volumes": [volume("/a", "one"), volume("/b")]}, {"volumes": [volume("/c"), volume("/a", "two")]},
     {"volumes": [volume("/a", "two"), volume("/b"), volume("/c")]}),
    # ports by (host ip, published, target, protocol)
    ({"ports": [port(80, "8080"), port(443, "443")]}, {"ports": [port(80, "8080"), port(80, "9090")]},
     {"ports": [port(80, "8080"), port(443, "443"), port(80, "9090")]}),
    ({"ports": [port(80, "8080", "127.0.0.1")]}, {"ports": [port(80, "8080")]},
     {"ports": [port(80, "8080", "127.0.0.1"), port(80, "8080")]}),
    # secrets by target (default /run/secrets/<source>)
    ({"secrets": [{"source": "s", "mode": "0400"}]}, {"secrets": [{"source": "s"}]}, {"secrets": [{"source": "s"}]}),
    # env files by path
    ({"env_file": [{"path": "a", "required": True}]}, {"env_file": [{"path": "a", "required": False}]},
     {"env_file": [{"path": "a", "required": False}]}),
    # devices by target
    ({"devices": [{"source": "/dev/a", "target": "/dev/x"}]}, {"devices": [{"source": "/dev/b", "target": "/dev/x"}]},
     {"devices": [{"source": "/dev/b", "target": "/dev/x"}]}),
    # logging: same driver (or no driver on one side) merges options
    ({"logging": {"driver": "json-file", "options": {"max-size": "1m"}}},
     {"logging": {"driver": "json-file", "options": {"max-file": "3"}}},
     {"logging": {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}}),
    ({"logging": {"driver": "json-file", "options": {"max-size": "1m"}}}, {"logging": {"options": {"max-file": "3"}}},
     {"logging": {"driver": "json-file", "options": {"max-size": "1m", "max-file": "3"}}}),
    # logging: another driver replaces the whole block
    ({"logging": {"driver": "json-file", "options": {"max-size": "1m"}}},
     {"logging": {"driver": "syslog", "options": {"tag": "x"}}},
     {"logging": {"driver": "syslog", "options": {"tag": "x"}}}),
    # ulimits entries are replaced whole
    ({"ulimits": {"nofile": {"soft": 1, "hard": 2}}}, {"ulimits": {"nofile": {"soft": 3}}},
     {"ulimits": {"nofile": {"soft": 3}}}),
    # new attributes are added
    ({"image": "a"}, {"networks": {"front": None}}, {"image": "a", "networks": {"front": None}}),
]


@pytest.mark.parametrize(("base", "override", "expected"), TRIPLES)
def test_merge_service(base: dict[str, Any], override: dict[str, Any], expected: dict[str, Any]) -> None:
    assert merge_service(base, override) == expected


def test_merge_does_not_modify_inputs() -> None:
    base = {"services": {"web": {"environment": {"A": "1"}, "dns": ["a"]}}}
    override = {"services": {"web": {"environment": {"B": "2"}, "dns": ["b"]}}}
    merge_values(base, override, ())
    assert base == {"services": {"web": {"environment": {"A": "1"}, "dns": ["a"]}}}
    assert override == {"services": {"web": {"environment": {"B": "2"}, "dns": ["b"]}}}


def test_top_level_resources_merge() -> None:
    base = {"networks": {"n": {"driver": "bridge", "labels": {"a": "1"}}}, "volumes": {"v": {}}}
    override = {"networks": {"n": {"labels": {"b": "2"}}, "m": {}}}
    assert merge_values(base, override, ()) == {
        "networks": {"n": {"driver": "bridge", "labels": {"a": "1", "b": "2"}}, "m": {}}, "volumes": {"v": {}},
    }


def test_ipam_config_merges_by_subnet() -> None:
    base = {"networks": {"n": {"ipam": {"config": [{"subnet": "10.0.0.0/24", "gateway": "10.0.0.1"}]}}}}
    override = {"networks": {"n": {"ipam": {"config": [{"subnet": "10.0.0.0/24", "ip_range": "10.0.0.0/25"},
                                                       {"subnet": "10.1.0.0/24"}]}}}}
    assert merge_values(base, override, ())["networks"]["n"]["ipam"]["config"] == [
        {"subnet": "10.0.0.0/24", "gateway": "10.0.0.1", "ip_range": "10.0.0.0/25"}, {"subnet": "10.1.0.0/24"},
    ]


def test_lists_outside_services_are_not_deduplicated() -> None:
    assert merge_values({"x-list": ["a"]}, {"x-list": ["a"]}, ()) == {"x-list": ["a", "a"]}


def test_enforce_unicity_within_one_document() -> None:
    tree = {"services": {"web": {"volumes": [volume("/a", "one"), volume("/a", "two")], "dns": ["x", "x"]}}}
    assert enforce_unicity(tree) == {"services": {"web": {"volumes": [volume("/a", "two")], "dns": ["x"]}}}


def test_unique_keeps_first_position_and_last_value() -> None:
    assert unique(["a=1", "b=2", "a=3"], lambda item: item.split("=")[0]) == ["a=3", "b=2"]


def test_delete_paths_for_reset() -> None:
    tree = {"services": {"web": {"image": "a", "ports": [port(80)], "environment": {"A": "1", "B": "2"}}}}
    result = delete_paths(tree, [("services", "web", "ports"), ("services", "web", "environment", "A")])
    assert result == {"services": {"web": {"image": "a", "environment": {"B": "2"}}}}
    assert "ports" in tree["services"]["web"], "the input is left untouched"


def test_delete_paths_missing_path_is_a_no_op() -> None:
    tree = {"services": {"web": {"image": "a"}}}
    assert delete_paths(tree, [("services", "db"), ("services", "web", "image", "x"), ()]) == tree


def test_reset_then_merge_replaces_a_list() -> None:
    base = {"services": {"web": {"ports": [port(80, "80")]}}}
    override = {"services": {"web": {"ports": [port(81, "81")]}}}
    cleared = delete_paths(base, [("services", "web", "ports")])
    assert merge_values(cleared, override, ()) == override
