"""The runtime configuration's mounts and masked paths, without containers: Docker's mount order
(parents first), Compose's ``bind.recursive`` passed on, and the thermal_throttle directories
masked as this host has them."""

from __future__ import annotations

from pathlib import Path

import pytest

from composer.backends.native.runtime.config import (
    CPUS_DIR,
    MASKED_PATHS,
    log_settings,
    masked_paths,
    mount_depth,
    mounts,
)
from composer.errors import UnsupportedFeatureError
from composer.spec.models.service import BindOptions, ServiceVolume
from tests.unit.conftest import LoadFn


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


def test_logging_defaults_to_the_local_drivers_rotation_and_takes_dockers_options(load: LoadFn) -> None:
    def settings(logging: str) -> dict[str, object]:
        return log_settings(load(f"services:\n  app:\n    image: busybox\n{logging}").services["app"])

    bounded = {"max_size": 20 << 20, "max_file": 5}
    assert settings("") == {"driver": "json-file", **bounded, "compress": False}
    assert settings("    logging: {driver: local}\n") == {"driver": "local", **bounded, "compress": True}
    # json-file with max-size alone keeps one file (Docker's max-file default for json-file is 1)
    assert settings("    logging: {driver: json-file, options: {max-size: 1k}}\n") == {
        "driver": "json-file", "max_size": 1024, "max_file": 1, "compress": False}
    assert settings("    logging: {options: {max-size: 2m, max-file: '3', compress: 'true'}}\n") == {
        "driver": "json-file", "max_size": 2 << 20, "max_file": 3, "compress": True}
    assert settings("    logging: {driver: none}\n") == {"driver": "none"}


@pytest.mark.parametrize(("logging", "named"), [
    ("{driver: syslog}", "driver syslog"),
    ("{driver: json-file, options: {tag: x}}", "option tag"),
    ("{driver: local, options: {labels: a}}", "option labels"),
    ("{driver: none, options: {max-size: 1m}}", "option max-size"),
    ("{options: {max-size: lots}}", "option max-size"),
    ("{options: {max-file: '0'}}", "option max-file"),
    ("{options: {compress: maybe}}", "option compress"),
])
def test_other_logging_drivers_and_options_are_refused_by_name(load: LoadFn, logging: str, named: str) -> None:
    service = load(f"services:\n  app:\n    image: busybox\n    logging: {logging}\n").services["app"]
    with pytest.raises(UnsupportedFeatureError) as info:
        log_settings(service)
    assert named in str(info.value)
    assert "\n" not in str(info.value)


def test_a_volume_subpath_is_normalized_and_not_filled_and_dotdot_is_refused() -> None:
    from composer.spec.models.service import VolumeOptions

    def mount(subpath: str) -> dict[str, object]:
        volume = ServiceVolume(type="volume", source="v", target="/mnt", volume=VolumeOptions(subpath=subpath))
        return mounts([volume], [], {"/mnt": "/store/v/_data"})[0]

    assert mount("./a//b/") == {"type": "volume", "source": "/store/v/_data", "target": "/mnt", "readonly": False,
                                "fill": False, "subpath": "a/b"}
    for bad in ("../x", "/abs", "a/../../b", "."):
        with pytest.raises(UnsupportedFeatureError, match="must be a relative path within the volume"):
            mount(bad)
