"""The network keys of services and of top-level networks on the native backend, seen from
inside the containers (addresses, routes, MAC, resolv.conf, names the DNS answers) and from the
host (the listening socket of a published port, the network's state). One project for the
family; tests/integration/docker/test_keys_network.py shows the same keys reach dockerd as v2
sends them."""

from __future__ import annotations

import ipaddress
import json
import subprocess

from tests.integration.compose_keys import free_subnet
from tests.integration.native.test_lifecycle import Project, env, project
from tests.integration.native.test_network import free_ports

__all__ = ["env", "project"]  # the fixtures, imported for pytest

NETWORK = """\
db:
  image: IMAGE
  command: sleep 300
  networks: [front]
app:
  image: IMAGE
  command: sleep 300
  links: ["db:database"]
  ports: ["127.0.0.1:PORT:80"]
  networks:
    front:
      ipv6_address: fd00:7e57::10
      mac_address: 02:42:ac:11:00:43
six:
  image: IMAGE
  command: sleep 300
  networks: [sixonly]
none:
  image: IMAGE
  command: sleep 300
  network_mode: none
  dns: [10.9.9.9]
"""
NETWORKS = """\
networks:
  front:
    driver: bridge
    enable_ipv4: true
    enable_ipv6: true
    labels: {dev.composer.test: front}
    ipam:
      config:
        - {subnet: SUBNET.0/24, ip_range: SUBNET.128/25, gateway: SUBNET.1,
           aux_addresses: {router: SUBNET.128, other: SUBNET.129}}
        - {subnet: "fd00:7e57::/64"}
  sixonly:
    enable_ipv4: false
    enable_ipv6: true
    ipam:
      config: [{subnet: "fd00:7e58::/64"}]
"""


def test_network_keys_take_effect_inside_the_containers(project: Project) -> None:
    subnet, port = free_subnet(), free_ports(1)
    project.write(NETWORK.replace("PORT", str(port)), NETWORKS.replace("SUBNET", subnet))
    project.run("up", "-d")

    def inside(service: str, script: str) -> str:
        return project.run("exec", "-T", service, "sh", "-c", script).stdout

    def ipv4(service: str) -> ipaddress.IPv4Address:
        return ipaddress.IPv4Address(inside(service, "ip -4 -o addr show eth0").split()[3].partition("/")[0])

    addresses = {ipv4("db"), ipv4("app")}
    # ip_range: addresses from SUBNET.128/25 only; aux_addresses: its first two are kept out
    assert all(address in ipaddress.ip_network(f"{subnet}.128/25") for address in addresses), addresses
    assert not addresses & {ipaddress.IPv4Address(f"{subnet}.128"), ipaddress.IPv4Address(f"{subnet}.129")}
    assert f"default via {subnet}.1 " in inside("app", "ip route")  # gateway
    assert "inet6 fd00:7e57::10/64" in inside("app", "ip -6 addr show eth0")  # enable_ipv6, ipv6_address
    assert "link/ether 02:42:ac:11:00:43 " in inside("app", "ip link show eth0")  # networks.mac_address
    six = inside("six", "ip addr show eth0")  # enable_ipv4: false: IPv6 only
    assert "inet6 fd00:7e58::" in six
    assert " inet " not in six, six
    assert "nameserver 10.9.9.9" in inside("none", "cat /etc/resolv.conf").splitlines()  # dns
    # links: the alias answers with db's address in the linking container, and only there
    db = str(ipv4("db"))
    assert db in inside("app", "nslookup database 2>&1 || true")
    assert db not in inside("db", "nslookup database 2>&1 || true")
    # ports.host_ip: the published port listens on that address only
    listening = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True,
                               check=True).stdout.split()
    assert f"127.0.0.1:{port}" in listening, listening
    assert f"0.0.0.0:{port}" not in listening
    # driver and labels: the network's state (what `composer` reads back for the planner)
    states = [json.loads(path.read_text()) for path in (project.env.root / "run" / "networks").glob("*.json")]
    front = next(state for state in states if state.get("name") == f"{project.name}_front")
    assert front["driver"] == "bridge"
    assert front["labels"]["dev.composer.test"] == "front"
    project.down()
