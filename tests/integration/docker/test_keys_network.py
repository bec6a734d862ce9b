"""The network keys of services and of top-level networks on dockerd, side by side with Compose
v2: one project created by both tools, each key's field compared
(tests/integration/docker/side_by_side.py); and a link's alias resolved in a running container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.compose_keys import free_subnet
from tests.integration.docker.side_by_side import PROJECT, run, side_by_side

NETWORK = """\
services:
  db:
    image: IMAGE
    command: sleep 300
    scale: 2
    networks: [front]
  app:
    image: IMAGE
    command: sleep 300
    links: ["db:database"]
    dns: [10.9.9.9]
    ports: ["127.0.0.1:18080:80/udp", "127.0.0.1:18081:81/tcp"]
    networks:
      front:
        aliases: [other-name]
        ipv6_address: fd00:7e57::10
  none:
    image: IMAGE
    command: sleep 300
    network_mode: none
  solo:
    image: IMAGE
    command: sleep 300
    mac_address: 02:42:ac:11:00:42
networks:
  front:
    driver: bridge
    enable_ipv6: true
    internal: true
    labels: {dev.composer.test: front}
    ipam:
      driver: default
      options: {foo: bar}
      config:
        - {subnet: SUBNET.0/24, ip_range: SUBNET.128/25, gateway: SUBNET.1, aux_addresses: {router: SUBNET.5}}
        - {subnet: "fd00:7e57::/64"}
"""


def test_network_keys_reach_the_engine_as_v2_sends_them(tmp_path: Path, project_name: str, docker_api: Any,
                                                        busybox_image: str) -> None:
    subnet = free_subnet()
    pair = side_by_side(tmp_path, project_name, docker_api,
                        NETWORK.replace("IMAGE", busybox_image).replace("SUBNET", subnet))
    endpoint = f"NetworkSettings/Networks/{PROJECT}_front"
    pair.check("containers", "app-1", {
        "HostConfig/Dns": ["10.9.9.9"],
        "HostConfig/PortBindings": {"80/udp": [{"HostIp": "127.0.0.1", "HostPort": "18080"}],
                                    "81/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18081"}]},
        f"{endpoint}/IPAMConfig": {"IPv6Address": "fd00:7e57::10"},
    })
    for side in (pair.composer, pair.v2):
        settings = side.containers["app-1"]["NetworkSettings"]["Networks"][f"{side.project}_front"]
        # networks.aliases: the service's and the file's (v2 adds the container's name, which the
        # engine answers for anyway)
        assert {"app", "other-name"} <= set(settings["Aliases"]), settings
        # links: each db container by the link's alias, as v2 links them
        assert sorted(settings["Links"]) == sorted(
            f"{side.project}-db-{replica}:{alias}" for replica in (1, 2)
            for alias in ("database", "db-1", f"{side.project}-db-1")), settings
    pair.check("containers", "none-1", {"HostConfig/NetworkMode": "none"})
    pair.check("containers", "solo-1", {"Config/MacAddress": "02:42:ac:11:00:42"})
    pair.check("networks", "front", {
        "Driver": "bridge",
        "EnableIPv6": True,
        "Internal": True,
        "Labels/dev.composer.test": "front",
        "IPAM/Driver": "default",
        "IPAM/Config": [{"Subnet": f"{subnet}.0/24", "IPRange": f"{subnet}.128/25", "Gateway": f"{subnet}.1",
                         "AuxiliaryAddresses": {"router": f"{subnet}.5"}},
                        {"Subnet": "fd00:7e57::/64"}],
    })
    # ipam.options: composer sends them to the IPAM driver; v2 2.40 drops them (the default driver
    # reads none, a plugin would)
    assert pair.composer.networks["front"]["IPAM"]["Options"] == {"foo": "bar"}


def test_a_links_alias_resolves_in_the_linking_container(tmp_path: Path, project_name: str,
                                                         busybox_image: str) -> None:
    (tmp_path / "compose.yaml").write_text(f"""\
services:
  db:
    image: {busybox_image}
    command: sleep 300
  app:
    image: {busybox_image}
    command: sleep 300
    links: ["db:database"]
""")
    assert run("composer", tmp_path, project_name, "up", "-d").returncode == 0
    address = run("composer", tmp_path, project_name, "exec", "-T", "db", "hostname", "-i").stdout.split()[0]
    found = run("composer", tmp_path, project_name, "exec", "-T", "app", "nslookup", "database")
    assert found.returncode == 0, (found.stdout, found.stderr)
    assert f"Address: {address}" in found.stdout or f"Address 1: {address}" in found.stdout, found.stdout
    # only the linking container knows the alias (a link, not a network alias)
    other = run("composer", tmp_path, project_name, "exec", "-T", "db", "nslookup", "database")
    assert address not in other.stdout, other.stdout
