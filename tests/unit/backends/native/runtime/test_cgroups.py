"""The cgroup knobs each limit is written to, on cgroup v2 and v1, into a directory of empty
knob files (the kernel's files are what the integration tests read): the mapping of Compose's
resource keys that a pure-v2 host (the guest lane) and this hybrid host each take."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native.runtime import cgroups
from composer.backends.native.runtime.config import resource_limits
from tests.unit.conftest import LoadFn

V2_KNOBS = ("memory.max", "memory.low", "memory.swap.max", "cpu.max", "cpu.weight", "pids.max", "cpuset.cpus",
            "cpuset.mems")
V1_KNOBS = {"memory": ("memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes"),
            "cpu": ("cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares"), "pids": ("pids.max",)}

DEPLOY = """
    services:
      app:
        image: busybox
        deploy:
          resources:
            limits: {cpus: "0.5", memory: 64m, pids: 40}
            reservations: {cpus: "0.25", memory: 16m}
"""


def knobs(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_text("")
    return dict.fromkeys(names, "")


def written(folder: Path, names: tuple[str, ...]) -> dict[str, str]:
    return {name: (folder / name).read_text() for name in names if (folder / name).read_text()}


def test_deploy_resources_map_to_the_v2_knobs(tmp_path: Path, load: LoadFn) -> None:
    limits = cgroups.Limits(**resource_limits(load(DEPLOY).services["app"]))
    knobs(tmp_path, V2_KNOBS)
    cgroups._apply_v2(str(tmp_path), limits)
    # reservations.cpus reaches no engine (v2 does not send it to dockerd: a Swarm reservation).
    assert written(tmp_path, V2_KNOBS) == {"memory.max": str(64 << 20), "memory.low": str(16 << 20),
                                           "cpu.max": "50000 100000", "pids.max": "40"}


def test_deploy_resources_map_to_the_v1_knobs(tmp_path: Path, load: LoadFn) -> None:
    limits = cgroups.Limits(**resource_limits(load(DEPLOY).services["app"]))
    paths = {}
    for controller, names in V1_KNOBS.items():
        knobs(tmp_path / controller, names)
        paths[controller] = str(tmp_path / controller)
    cgroups._apply_v1(paths, limits)
    found = {name: value for controller, names in V1_KNOBS.items()
             for name, value in written(tmp_path / controller, names).items()}
    # memsw twice the memory when memswap_limit is unset, as Docker does
    assert found == {"memory.limit_in_bytes": str(64 << 20), "memory.soft_limit_in_bytes": str(16 << 20),
                     "memory.memsw.limit_in_bytes": str(128 << 20), "cpu.cfs_period_us": "100000",
                     "cpu.cfs_quota_us": "50000", "pids.max": "40"}


def test_the_service_keys_still_apply_and_equal_deploy_values_are_one_limit(load: LoadFn) -> None:
    plain = resource_limits(load("""
        services:
          app: {image: busybox, mem_limit: 32m, mem_reservation: 8m, cpus: 1.5, pids_limit: 9}
    """).services["app"])
    assert (plain["memory"], plain["memory_reservation"], plain["cpu_quota"], plain["pids"]) == (
        32 << 20, 8 << 20, 150000, 9)
    both = resource_limits(load("""
        services:
          app:
            image: busybox
            mem_limit: 32m
            deploy: {resources: {limits: {memory: 32m}}}
    """).services["app"])
    assert both["memory"] == 32 << 20


def test_v2_swap_and_weight_conversions(tmp_path: Path) -> None:
    knobs(tmp_path, V2_KNOBS)
    cgroups._apply_v2(str(tmp_path), cgroups.Limits(memory=100, memory_swap=300, cpu_shares=1024))
    assert written(tmp_path, V2_KNOBS) == {"memory.max": "100", "memory.swap.max": "200", "cpu.weight": "39"}
