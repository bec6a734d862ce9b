"""The resource, cgroup and process keys of a service on the native backend, read back from the
kernel: the container's cgroup files, its cgroup namespace, its pid 1 and its capabilities. One
project for the family; tests/integration/docker/test_keys_resources.py shows the same keys in
dockerd's HostConfig, side by side with v2."""

from __future__ import annotations

from pathlib import Path

from tests.integration.native.test_lifecycle import Project, env, project
from tests.integration.native.test_service_keys import cgroup_of, knob

__all__ = ["env", "project"]  # the fixtures, imported for pytest

RESOURCES = """\
res:
  image: IMAGE
  command: sleep 300
  container_name: NAME-custom
  cpu_shares: 512
  cpu_period: 50000
  cpu_quota: 25000
  cpuset: "0"
  mem_limit: 64m
  mem_reservation: 32m
  memswap_limit: 128m
  pids_limit: 50
  cgroup: private
  init: true
  privileged: true
nano:
  image: IMAGE
  command: sleep 300
  cpus: 0.5
"""

CAP_SYS_ADMIN, CAP_LAST = 21, 40  # linux/capability.h; Docker's privileged set is every capability


def test_resource_keys_are_the_containers_cgroup_files_and_process_keys_its_pid_1(project: Project) -> None:
    project.write(RESOURCES.replace("NAME", project.name))
    project.run("up", "-d")
    name = f"{project.name}-custom"
    assert name in project.run("ps", "--format", "{{.Name}}").stdout.split()  # container_name
    group, nano = cgroup_of(project, name), cgroup_of(project, f"{project.name}-nano-1")
    if group.mode == "v2":
        assert {knob(group, "unified", file) for file in ("cpu.max",)} == {"25000 50000"}
        found = {file: knob(group, "unified", file) for file in (
            "cpu.weight", "cpuset.cpus", "memory.max", "memory.low", "memory.swap.max", "pids.max")}
        # cpu_shares 512 as runc converts shares to a weight; memswap_limit: memory + swap
        assert found == {"cpu.weight": str(1 + (510 * 9999) // 262142), "cpuset.cpus": "0",
                         "memory.max": str(64 << 20), "memory.low": str(32 << 20),
                         "memory.swap.max": str(64 << 20), "pids.max": "50"}
        assert knob(nano, "unified", "cpu.max") == "50000 100000"  # cpus
    else:
        found = {file: knob(group, hierarchy, file) for hierarchy, file in (
            ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_period_us"), ("cpu", "cpu.cfs_quota_us"),
            ("cpuset", "cpuset.cpus"), ("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
            ("pids", "pids.max"))}
        assert found == {"cpu.shares": "512", "cpu.cfs_period_us": "50000", "cpu.cfs_quota_us": "25000",
                         "cpuset.cpus": "0", "memory.limit_in_bytes": str(64 << 20),
                         "memory.soft_limit_in_bytes": str(32 << 20), "pids.max": "50"}
        if Path(group.paths["memory"], "memory.memsw.limit_in_bytes").exists():  # swap accounting on
            assert knob(group, "memory", "memory.memsw.limit_in_bytes") == str(128 << 20)
        assert (knob(nano, "cpu", "cpu.cfs_quota_us"), knob(nano, "cpu", "cpu.cfs_period_us")) == ("50000", "100000")

    def inside(script: str) -> str:
        return project.run("exec", "-T", "res", "sh", "-c", script).stdout

    # cgroup: private: the container's own cgroup namespace sees its cgroups as the root
    assert {line.rpartition(":")[2] for line in inside("cat /proc/self/cgroup").splitlines()} == {"/"}
    assert inside("cat /proc/1/comm").strip() == "docker-init"  # init
    status = dict(line.split(":\t", 1) for line in inside("cat /proc/self/status").splitlines() if ":\t" in line)
    effective = int(status["CapEff"], 16)  # privileged: every capability
    assert effective & (1 << CAP_SYS_ADMIN)
    assert effective >= (1 << CAP_LAST) - 1, hex(effective)
    project.down()
