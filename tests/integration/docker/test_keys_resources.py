"""The resource, cgroup and namespace keys of a service on dockerd, side by side with Compose v2:
one project with every key set, created by both tools, each key's HostConfig field compared
(tests/integration/docker/side_by_side.py). The native backend's side is
tests/integration/native/test_keys_resources.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.integration.conftest import remove_project
from tests.integration.docker.side_by_side import run, side_by_side


def _block_device() -> str:
    """A block device of this host (blkio_config's paths must exist for the engine)."""
    for candidate in ("/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/loop0"):
        if Path(candidate).is_block_device():
            return candidate
    raise AssertionError("no block device for blkio_config")


def _blkio_weight() -> bool:
    """Whether the engine can set a blkio weight here (its check: the cgroup's weight file); one
    that cannot discards blkio_config.weight and weight_device with a warning, for v2 as for composer."""
    return any(Path(path).exists() for path in ("/sys/fs/cgroup/blkio/blkio.weight",
                                                "/sys/fs/cgroup/blkio/blkio.bfq.weight",
                                                "/sys/fs/cgroup/io.bfq.weight"))


RESOURCES = """\
services:
  res:
    image: IMAGE
    command: sleep 300
    cpu_shares: 512
    cpu_period: 50000
    cpu_quota: 25000
    cpuset: "0"
    cpu_rt_period: 1000000
    cpu_rt_runtime: 950000
    mem_limit: 64m
    mem_reservation: 32m
    mem_swappiness: 10
    memswap_limit: 128m
    oom_kill_disable: true
    pids_limit: 50
    cgroup: private
    cgroup_parent: composer-keys-test
    device_cgroup_rules: ["c 1:3 mr"]
    devices: ["/dev/null:/dev/xnull:rw"]
    blkio_config:
      weight: 300
      weight_device: [{path: DISK, weight: 400}]
      device_read_bps: [{path: DISK, rate: 1mb}]
      device_read_iops: [{path: DISK, rate: 100}]
      device_write_bps: [{path: DISK, rate: 2mb}]
      device_write_iops: [{path: DISK, rate: 200}]
    init: true
    ipc: shareable
    pid: host
    uts: host
    userns_mode: host
    isolation: default
    runtime: runc
    privileged: true
  nano:
    image: IMAGE
    command: sleep 300
    cpus: 0.5
    gpus:
      - {driver: nvidia, count: 2, capabilities: [gpu, utility], options: {a: b}}
      - {device_ids: ["0", "1"], capabilities: [compute]}
    deploy:
      resources:
        reservations:
          devices:
            - {driver: other, count: 1, capabilities: [tpu], options: {c: d}}
            - {device_ids: ["3"], capabilities: [video]}
"""


def test_resource_cgroup_and_namespace_keys_reach_the_host_config_as_v2_sends_them(
        tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str) -> None:
    disk, weighs = _block_device(), _blkio_weight()
    compose = RESOURCES.replace("IMAGE", busybox_image).replace("DISK", disk)
    pair = side_by_side(tmp_path, project_name, docker_api, compose)
    pair.check("containers", "res-1", {
        "HostConfig/CpuShares": 512,
        "HostConfig/CpuPeriod": 50000,
        "HostConfig/CpuQuota": 25000,
        "HostConfig/CpusetCpus": "0",
        "HostConfig/CpuRealtimePeriod": 1000000,
        "HostConfig/CpuRealtimeRuntime": 950000,
        "HostConfig/Memory": 64 << 20,
        "HostConfig/MemoryReservation": 32 << 20,
        "HostConfig/MemorySwappiness": 10,
        "HostConfig/MemorySwap": 128 << 20,
        "HostConfig/OomKillDisable": True,
        "HostConfig/PidsLimit": 50,
        "HostConfig/CgroupnsMode": "private",
        "HostConfig/CgroupParent": "composer-keys-test",
        "HostConfig/DeviceCgroupRules": ["c 1:3 mr"],
        "HostConfig/Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/xnull",
                                "CgroupPermissions": "rw"}],
        "HostConfig/BlkioWeight": 300 if weighs else 0,
        "HostConfig/BlkioWeightDevice": [{"Path": disk, "Weight": 400}] if weighs else [],
        "HostConfig/BlkioDeviceReadBps": [{"Path": disk, "Rate": 1 << 20}],
        "HostConfig/BlkioDeviceReadIOps": [{"Path": disk, "Rate": 100}],
        "HostConfig/BlkioDeviceWriteBps": [{"Path": disk, "Rate": 2 << 20}],
        "HostConfig/BlkioDeviceWriteIOps": [{"Path": disk, "Rate": 200}],
        "HostConfig/Init": True,
        "HostConfig/IpcMode": "shareable",
        "HostConfig/PidMode": "host",
        "HostConfig/UTSMode": "host",
        "HostConfig/UsernsMode": "host",
        "HostConfig/Isolation": "default",
        "HostConfig/Runtime": "runc",
        "HostConfig/Privileged": True,
    })
    pair.check("containers", "nano-1", {"HostConfig/NanoCpus": 500_000_000})
    # gpus and reservations.devices: the same requests (v2 sends reservations first, and
    # null for an empty list; gpus gets the "gpu" capability), each as the file asks.
    mine, theirs = (_requests(side.containers["nano-1"]) for side in (pair.composer, pair.v2))
    assert mine == theirs == sorted([
        ("nvidia", 2, (), ("gpu", "utility"), (("a", "b"),)),
        ("", 0, ("0", "1"), ("compute", "gpu"), ()),
        ("other", 1, (), ("tpu",), (("c", "d"),)),
        ("", 0, ("3",), ("video",), ()),
    ])


Request = tuple[str, int, tuple[str, ...], tuple[str, ...], tuple[tuple[str, str], ...]]


def _requests(inspected: dict[str, Any]) -> list[Request]:
    return sorted((request["Driver"], request["Count"], tuple(request["DeviceIDs"] or ()),
                   tuple(sorted({name for group in request["Capabilities"] for name in group})),
                   tuple(sorted((request["Options"] or {}).items())))
                  for request in inspected["HostConfig"]["DeviceRequests"])


def test_storage_opt_reaches_the_engine_which_refuses_it_as_it_refuses_v2(
        tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str) -> None:
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {busybox_image}\n    storage_opt: {{size: 1G}}\n")
    mine = run("composer", tmp_path, project_name, "create")
    try:
        theirs = run("v2", tmp_path, f"{project_name}-v2", "create")
    finally:
        remove_project(docker_api, f"{project_name}-v2")
    # This engine's overlay2 is not on xfs with pquota: it refuses the option, which it would
    # not if the option had not reached it.
    refusal = ("Error response from daemon: --storage-opt is supported only for overlay over xfs with 'pquota' "
               "mount option")
    assert theirs.returncode != 0
    assert refusal in theirs.stderr, theirs.stderr
    assert mine.returncode == 1
    assert [line for line in mine.stderr.splitlines() if line.startswith("composer:")] == [f"composer: {refusal}"]


def test_windows_only_cpu_keys_are_refused_in_one_line_by_a_linux_engine(
        tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str) -> None:
    version = docker_api.version()
    for fragment, key, field in (("cpu_count: 2", "cpu_count", "CpuCount"),
                                 ("cpu_percent: 50", "cpu_percent", "CpuPercent")):
        (tmp_path / "compose.yaml").write_text(
            f"services:\n  app:\n    image: {busybox_image}\n    command: sleep 300\n    {fragment}\n")
        result = run("composer", tmp_path, project_name, "create")
        if version["Os"] == "windows":
            assert result.returncode == 0, result.stderr
            assert docker_api.inspect_container(f"{project_name}-app-1")["HostConfig"][field]
            continue
        # A Linux engine discards cpu_percent (with a warning v2 prints) and keeps cpu_count unused.
        assert result.returncode == 1
        assert [line for line in result.stderr.splitlines() if line.startswith("composer:")] == [
            f"composer: {key} needs a Windows engine; this engine is Docker {version['Version']} on "
            f"{version['Os']}, which would ignore it"], result.stderr
