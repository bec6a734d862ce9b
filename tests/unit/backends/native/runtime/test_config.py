"""The runtime configuration's mounts and masked paths, without containers: Docker's mount order
(parents first), Compose's ``bind.recursive`` passed on, and the thermal_throttle directories
masked as this host has them."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native.runtime.config import CPUS_DIR, MASKED_PATHS, masked_paths, mount_depth, mounts
from composer.spec.models.service import BindOptions, ServiceVolume


def test_thermal_throttle_directories_of_each_cpu_are_masked(tmp_path: Path) -> None:
    for name in ("cpu0", "cpu12", "cpufreq", "cpuidle"):
        (tmp_path / name / "thermal_throttle").mkdir(parents=True)
    (tmp_path / "cpu1").mkdir()  # no thermal_throttle on this one
    assert masked_paths(str(tmp_path)) == [*MASKED_PATHS, f"{CPUS_DIR}/cpu0/thermal_throttle",
                                           f"{CPUS_DIR}/cpu12/thermal_throttle"]
    assert masked_paths(str(tmp_path / "missing")) == list(MASKED_PATHS)
    assert {"/proc/interrupts", "/proc/kcore", "/sys/firmware", "/sys/devices/virtual/powercap"} <= set(MASKED_PATHS)


def test_parents_are_mounted_first_whatever_the_order_in_the_file(tmp_path: Path) -> None:
    volumes = [ServiceVolume(type="bind", source=str(tmp_path), target="/data/sub/deeper"),
               ServiceVolume(type="volume", source="v", target="/data/"),
               ServiceVolume(type="tmpfs", target="/other")]
    found = mounts(volumes, ["/data/sub"], {"/data/": "/store/v/_data"})
    assert [m["target"] for m in found] == ["/data/", "/other", "/data/sub", "/data/sub/deeper"]
    assert [mount_depth(t) for t in ("/", "//a/./b/", "/a/../b")] == [0, 2, 1]


def test_bind_recursive_is_passed_on_enabled_by_default(tmp_path: Path) -> None:
    volumes = [ServiceVolume(type="bind", source=str(tmp_path), target=f"/{value}", read_only=True,
                             bind=BindOptions(recursive=value)) for value in ("disabled", "writable", "readonly")]
    volumes.append(ServiceVolume(type="bind", source=str(tmp_path), target="/plain", read_only=True))
    found = {m["target"]: m["recursive"] for m in mounts(volumes, [])}
    assert found == {"/disabled": "disabled", "/writable": "writable", "/readonly": "readonly", "/plain": "enabled"}
