"""Compose keys the native backend applies, read back from the kernel on a real container: the
cgroup files of ``deploy.resources``. tests/integration/docker/test_service_keys.py shows the same
file's values in dockerd's HostConfig. Refusals are one line naming the key."""

from __future__ import annotations

import ipaddress
import json
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.runtime import cgroups
from tests.integration.native.test_lifecycle import Project, env, eventually, nothing_left, one_line, project

__all__ = ["env", "project"]  # the fixtures, imported for pytest

RESOURCES = """\
app:
  image: IMAGE
  command: sleep 300
  deploy:
    resources:
      limits: {cpus: "0.5", memory: 48m, pids: 33}
      reservations: {cpus: "0.25", memory: 12m}
"""


def cgroup_of(project: Project, container: str) -> cgroups.Cgroup:
    return cgroups.Cgroup.from_json(project.state(container)["cgroup"])


def knob(cgroup: cgroups.Cgroup, hierarchy: str, name: str) -> str:
    return (Path(cgroup.paths[hierarchy]) / name).read_text().strip()


def test_deploy_resources_are_the_containers_cgroup_limits(project: Project) -> None:
    project.write(RESOURCES)
    project.run("up", "-d")
    group = cgroup_of(project, f"{project.name}-app-1")
    if group.mode == "v2":
        found = {name: knob(group, "unified", name) for name in ("memory.max", "memory.low", "cpu.max", "pids.max")}
        assert found == {"memory.max": str(48 << 20), "memory.low": str(12 << 20), "cpu.max": "50000 100000",
                         "pids.max": "33"}
        weight = knob(group, "unified", "cpu.weight")
        assert weight == "100", weight  # reservations.cpus: nothing, as dockerd gets nothing from v2
    else:
        found = {name: knob(group, hierarchy, name) for hierarchy, name in (
            ("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
            ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"), ("pids", "pids.max"))}
        assert found == {"memory.limit_in_bytes": str(48 << 20), "memory.soft_limit_in_bytes": str(12 << 20),
                         "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "100000", "pids.max": "33"}
        # reservations.cpus: the default weight, as dockerd gets nothing from v2 (CpuShares 0)
        assert knob(group, "cpu", "cpu.shares") == "1024"
    # The limit holds: the 34th process cannot start.
    result = project.run("exec", "-T", "app", "sh", "-c", "for i in $(seq 40); do sleep 2 & done; wait", check=False)
    assert "can't fork" in result.stderr, (result.stdout, result.stderr)
    project.down()
    nothing_left(project)


def test_device_reservations_are_refused_in_one_line(project: Project) -> None:
    project.write("""\
gpu:
  image: IMAGE
  command: sleep 5
  deploy:
    resources:
      reservations:
        devices: [{driver: nvidia, count: 1, capabilities: [gpu]}]
""")
    result = project.run("up", "-d", check=False)
    assert result.returncode != 0
    assert "deploy.resources.reservations.devices" in one_line(result)
    nothing_left(project)


CHATTY = """\
chatty:
  image: IMAGE
  command:
    - sh
    - -c
    - i=0; while [ $$i -lt 40000 ]; do echo "line $$i of the chatty service"; i=$$((i+1)); done;
      echo last-line; sleep 300
  logging:
    driver: local
    options: {max-size: 64k, max-file: "3"}
"""


def log_files_of(project: Project, container: str) -> list[Path]:
    log = Path(project.state(container, "config.json")["log_path"])
    return sorted(log.parent.glob(log.name + "*"))


def test_a_chatty_service_is_rotated_and_logs_reads_the_rotated_files_in_order(project: Project) -> None:
    project.write(CHATTY)
    project.run("up", "-d")
    container = f"{project.name}-chatty-1"

    def finished() -> bool:
        return "last-line" in project.run("logs", "--tail", "1", "--no-log-prefix").stdout

    eventually(finished, timeout=120)
    files = log_files_of(project, container)
    sizes = {path.name: path.stat().st_size for path in files}
    # local: compressed from the second rotated file on; three files at most, 64 KiB each at most
    assert sorted(sizes) == ["container.log", "container.log.1", "container.log.2.gz"], sizes
    assert max(sizes.values()) <= 64 * 1024, sizes
    shown = project.run("logs", "--no-log-prefix").stdout.splitlines()
    assert shown[-1] == "last-line"
    numbers = [int(line.split()[1]) for line in shown[:-1]]
    assert numbers == list(range(numbers[0], 40000)), "a line lost or repeated across the rotated files"
    assert numbers[0] > 0  # the oldest output went with the oldest file
    assert project.run("logs", "--tail", "3", "--no-log-prefix").stdout.splitlines() == [
        "line 39998 of the chatty service", "line 39999 of the chatty service", "last-line"]
    project.down()
    nothing_left(project)


def test_the_none_driver_keeps_nothing_and_logs_says_so_as_docker_does(project: Project) -> None:
    project.write("""\
quiet:
  image: IMAGE
  command: sh -c 'echo hidden; sleep 300'
  logging: {driver: none}
""")
    project.run("up", "-d")
    container = f"{project.name}-quiet-1"
    time.sleep(0.5)  # the echo has run; nothing may be kept of it
    assert log_files_of(project, container) == []
    result = project.run("logs")
    assert "hidden" not in result.stdout
    # v2 with dockerd: WARN ... Can't retrieve logs for "<container>": Error response from daemon:
    # configured logging driver does not support reading (and exit 0)
    assert result.stderr == (f'WARN[0000] Can\'t retrieve logs for "{container}": configured logging driver does '
                             "not support reading\n")
    project.down()
    nothing_left(project)


def test_without_logging_the_log_is_still_bounded(project: Project) -> None:
    project.write("plain:\n  image: IMAGE\n  command: sleep 300\n")
    project.run("up", "-d")
    logging = project.state(f"{project.name}-plain-1", "config.json")["logging"]
    assert logging == {"driver": "json-file", "max_size": 20 << 20, "max_file": 5, "compress": False}
    project.down()


def test_another_logging_driver_is_refused_in_one_line(project: Project) -> None:
    project.write("app:\n  image: IMAGE\n  command: sleep 5\n  logging: {driver: syslog}\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode != 0
    assert "logging driver syslog" in one_line(result)
    nothing_left(project)


SUBPATH = """\
writer:
  image: IMAGE
  command: sh -c 'mkdir -p /data/sub /data/other && echo inside > /data/sub/hello && echo no > /data/other/x
                  && ln -s / /data/escape && ln -s sub /data/inner && ln -s ../.. /data/sub/up && sleep 300'
  volumes: [data:/data]
reader:
  image: IMAGE
  command: sleep 300
  volumes: [{type: volume, source: data, target: /mnt, volume: {subpath: SUBPATH}}]
"""


def subpath_project(project: Project, subpath: str) -> None:
    project.write(SUBPATH.replace("SUBPATH", subpath), "volumes:\n  data: {}\n")


def test_a_volume_subpath_mounts_only_that_folder(project: Project) -> None:
    subpath_project(project, "sub")
    project.run("up", "-d", "writer")
    eventually(lambda: project.run("exec", "-T", "writer", "test", "-L", "/data/sub/up", check=False).returncode == 0)
    project.run("up", "-d", "reader")
    assert project.run("exec", "-T", "reader", "cat", "/mnt/hello").stdout == "inside\n"
    assert sorted(project.run("exec", "-T", "reader", "ls", "-A", "/mnt").stdout.split()) == ["hello", "up"]
    # A symlink inside the subfolder is the container's own business: it resolves in its root.
    assert "bin" in project.run("exec", "-T", "reader", "ls", "/mnt/up/").stdout.split()
    project.run("exec", "-T", "reader", "sh", "-c", "echo back > /mnt/written")
    assert project.run("exec", "-T", "writer", "cat", "/data/sub/written").stdout == "back\n"
    project.down()
    nothing_left(project)


@pytest.mark.parametrize(("subpath", "expected"), [
    # Docker follows a symlink that stays inside the volume; composer refuses every symlink.
    ("escape", "volume subpath escape on /mnt: it leads through a symlink or out of the volume"),
    ("inner", "volume subpath inner on /mnt: it leads through a symlink or out of the volume"),
    ("sub/up", "volume subpath sub/up on /mnt: it leads through a symlink or out of the volume"),
    ("missing", "volume subpath missing on /mnt: open missing: No such file or directory"),
])
def test_a_subpath_through_a_symlink_or_missing_is_refused_in_one_line(project: Project, subpath: str,
                                                                      expected: str) -> None:
    subpath_project(project, subpath)
    project.run("up", "-d", "writer")
    eventually(lambda: project.run("exec", "-T", "writer", "test", "-L", "/data/sub/up", check=False).returncode == 0)
    result = project.run("up", "-d", "reader", check=False)
    assert result.returncode != 0
    assert expected in one_line(result)
    project.down()
    nothing_left(project)


@pytest.mark.parametrize("subpath", ["../x", "/etc", "a/../../b"])
def test_a_subpath_out_of_the_volume_is_refused_at_create(project: Project, subpath: str) -> None:
    subpath_project(project, subpath)
    result = project.run("up", "-d", "reader", check=False)
    assert result.returncode != 0
    assert f"volume subpath '{subpath}' of /mnt must be a relative path within the volume" in one_line(result)
    nothing_left(project)


SERVER = "while true; do nc -l -p 80 -e echo hi-from-$$(hostname); done"


def reaches(project: Project, client: str, target: str) -> bool:
    result = project.run("exec", "-T", client, "sh", "-c", f"echo | nc -w 2 {target} 80", check=False)
    return "hi-from" in result.stdout


def iptables(table: str) -> list[str]:
    saved = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True, check=True)
    return saved.stdout.splitlines()


def test_bridge_driver_opts_take_effect_on_the_bridge_and_its_rules(project: Project) -> None:
    name = f"kt{uuid.uuid4().hex[:8]}"
    project.write(f"""\
server: {{image: IMAGE, command: "sh -c '{SERVER}'", networks: [quiet]}}
client: {{image: IMAGE, command: sleep 300, networks: [quiet]}}
web: {{image: IMAGE, command: "sh -c '{SERVER}'", networks: [local], ports: ["80"]}}
neighbour: {{image: IMAGE, command: sleep 300, networks: [local]}}
""", f"""\
networks:
  quiet:
    driver_opts:
      com.docker.network.bridge.name: {name}
      com.docker.network.bridge.enable_icc: "false"
      com.docker.network.bridge.enable_ip_masquerade: "false"
      com.docker.network.driver.mtu: "1400"
  local:
    driver_opts:
      com.docker.network.bridge.host_binding_ipv4: 127.0.0.1
""")
    try:
        project.run("up", "-d")
        # the bridge under its name, with its MTU, and the containers' ends with it
        assert Path(f"/sys/class/net/{name}/mtu").read_text().strip() == "1400"
        assert project.run("exec", "-T", "client", "cat", "/sys/class/net/eth0/mtu").stdout.strip() == "1400"
        server_ip = project.run("exec", "-T", "server", "hostname", "-i").stdout.split()[0]
        # enable_icc=false: the server answers inside its namespace, not to its neighbour; the
        # neighbour on the default-icc network reaches its own server.
        assert eventually(lambda: reaches(project, "server", "127.0.0.1"))
        assert eventually(lambda: reaches(project, "neighbour", "web"))
        assert not reaches(project, "client", "server")
        # a bridge outside cmp-* is still isolated from composer's other networks
        assert not reaches(project, "neighbour", server_ip)
        rules = [line for line in iptables("filter") if f"composer:net:{name}" in line]
        assert any(f"-i {name} -o {name}" in line and line.endswith("-j DROP") for line in rules), rules
        quiet = next(state for state in project_networks(project) if state["key"] == "quiet")
        subnet = quiet["pools"][0]["subnet"]
        assert ipaddress.ip_address(server_ip) in ipaddress.ip_network(subnet)
        outgoing = f"-s {subnet} ! -o {name}"
        assert not [line for line in iptables("nat") if "MASQUERADE" in line and outgoing in line]
        # (enable_ip_masquerade=false) while the local network keeps its own:
        local_state = next(s for s in project_networks(project) if s["key"] == "local")
        local_subnet = local_state["pools"][0]["subnet"]
        assert any(f"-s {local_subnet} ! -o {local_state['bridge']}" in line for line in iptables("nat"))
        # host_binding_ipv4: a port without a host address is published on 127.0.0.1 only
        published = project.run("port", "web", "80").stdout.strip()
        assert published.startswith("127.0.0.1:"), published
        with socket.create_connection(("127.0.0.1", int(published.rsplit(":", 1)[1])), timeout=5) as connection:
            assert b"hi-from" in connection.recv(100)
    finally:
        project.down()
    assert not Path(f"/sys/class/net/{name}").exists()
    assert not [line for table in ("filter", "nat") for line in iptables(table) if name in line]
    nothing_left(project)


def project_networks(project: Project) -> list[dict[str, Any]]:
    folder = project.env.root / "run" / "networks"
    states = [json.loads(p.read_text()) for p in folder.glob("cmp-*.json")]
    return [s for s in states if s.get("project") == project.name]


@pytest.mark.parametrize(("opts", "named"), [
    ('{com.docker.network.bridge.inhibit_ipv4: "true"}', "driver_opts com.docker.network.bridge.inhibit_ipv4 is not "
                                                         "supported by the native backend"),
    ('{com.docker.network.driver.mtu: "9"}', "driver_opts com.docker.network.driver.mtu: '9' is not an MTU"),
    ('{com.docker.network.bridge.enable_icc: "maybe"}', "driver_opts com.docker.network.bridge.enable_icc: "
                                                        "'maybe' is not true or false"),
    ('{com.docker.network.bridge.name: lo}', "driver_opts com.docker.network.bridge.name: a link named lo exists"),
])
def test_other_or_bad_driver_opts_are_refused_in_one_line(project: Project, opts: str, named: str) -> None:
    project.write("app: {image: IMAGE, command: sleep 5}\n", f"networks:\n  default:\n    driver_opts: {opts}\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode != 0
    assert named in one_line(result)
    nothing_left(project)
