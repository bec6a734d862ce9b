"""Compose keys the native backend applies, read back from the kernel on a real container: the
cgroup files of ``deploy.resources``. tests/integration/docker/test_service_keys.py shows the same
file's values in dockerd's HostConfig. Refusals are one line naming the key."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native.runtime import cgroups
from tests.integration.native.test_lifecycle import Project, env, nothing_left, one_line, project

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
