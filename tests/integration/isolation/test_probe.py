"""The isolation probe side by side: the same image and compose settings on dockerd and on the native backend.

tests/support/isolation_probe.c runs in a container of each backend through composer itself, with the
default settings, ``cap_drop: [ALL]``, ``privileged: true`` and ``read_only: true``. Its verdicts must be
identical, except for the differences listed below, each with its reason. A listed difference is one
where the native backend is stricter than Docker; a looser one is a bug, never an entry here. The list
is exact both ways: a new difference fails, and so does a listed one that disappeared (update the
list, and docs/security.md, which keeps the table ``make isolation-report`` prints).

Needs root, dockerd and Debian's docker-registry; under CI=true a missing one fails the test.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.registry import LocalRegistry
from tests.support import isolation

# The dockerd of this suite is Debian's 20.10 (runc 1.1, its seccomp profile of 2022). Where current
# Docker is stricter than that and composer follows current Docker, the difference is listed here.
NEWER_DOCKER = "current Docker's seccomp profile (moby 25+) denies it; Debian's dockerd 20.10 predates that"
UNKNOWN_SYSCALL = ("a syscall newer than the profile: Docker's runc answers ENOSYS for numbers above the "
                   "profile's newest syscall; composer's profile knows it and denies it with EPERM")

# check -> (docker's verdict, native's verdict, why native differs): for every unprivileged setting.
STRICTER: dict[str, tuple[str, str, str]] = {}

# Extra differences for one setting only.
STRICTER_IN: dict[str, dict[str, tuple[str, str, str]]] = {"default": {}, "cap_drop_all": {}, "read_only": {}}


def host_bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise AssertionError("no CapBnd in /proc/self/status")


@pytest.fixture(scope="module")
def verdicts(docker_api: Any, local_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[tuple[str, str], dict[str, str]]]:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the native backend needs root")
        pytest.skip("the native backend needs root")
    workdir = tmp_path_factory.mktemp("isolation-probe")
    reference = isolation.publish_image(docker_api, local_registry.host, workdir)
    runs = {"docker": isolation.Run("docker", isolation.docker_environment()),
            "native": isolation.Run("native", isolation.native_environment(
                workdir / "native", f"composer-probe-{uuid.uuid4().hex[:8]}"))}
    results: dict[tuple[str, str], dict[str, str]] = {}
    try:
        with isolation.host_loopback_service() as port:
            for setting in isolation.SETTINGS:
                for backend in isolation.BACKENDS:
                    try:
                        results[(setting, backend)] = isolation.run_probe(runs[backend], reference, setting, port,
                                                                         workdir)
                    except isolation.ProbeError as exc:
                        results[(setting, backend)] = {"probe.error": str(exc)}
        yield results
    finally:
        docker_api.remove_image(reference, force=True)


@pytest.mark.parametrize("setting", ["default", "cap_drop_all", "read_only"])
def test_native_matches_docker_or_is_stricter(verdicts: dict[tuple[str, str], dict[str, str]], setting: str) -> None:
    docker, native = verdicts[(setting, "docker")], verdicts[(setting, "native")]
    assert "probe.error" not in docker, docker
    assert "probe.error" not in native, native
    expected = {check: (want[0], want[1]) for check, want in {**STRICTER, **STRICTER_IN[setting]}.items()}
    assert isolation.differences(docker, native) == expected


# Docker's privileged containers, as moby sets them up (oci/defaults.go, daemon/oci_linux.go): every
# capability of the bounding set, no seccomp filter, no masked or read-only /proc paths, /sys and
# /proc/sys writable, every device allowed.
PRIVILEGED = {
    "status.Seccomp": "0",
    "device.open_made_char_mem": "ENXIO",  # the device rule let it through; the host has no /dev/mem driver
    "write./proc/sys/vm/drop_caches": "ok",
    "write./sys/kernel/mm/transparent_hugepage/enabled": "ok",
    "readonly/proc/sys": "rw",
    "readonly/sys": "rw",
    "mask/proc/keys": "exposed",
    "mask/proc/timer_list": "exposed",
    "syscall.unshare_newns": "ok",
    "syscall.keyctl": "ok",
}


def test_privileged_matches_docker(verdicts: dict[tuple[str, str], dict[str, str]]) -> None:
    docker, native = verdicts[("privileged", "docker")], verdicts[("privileged", "native")]
    assert "probe.error" not in native, native
    bounding = host_bounding_set()
    assert native["status.CapEff"] == f"{bounding:016x}"
    if "probe.error" in docker:
        # runc applies every capability it knows to a privileged container; a host whose own bounding set
        # lacks one (this sandbox drops CAP_SYS_RESOURCE) cannot run any privileged container of dockerd.
        # Then native is held to Docker's documented privileged behaviour instead.
        assert "unable to apply caps" in docker["probe.error"], docker["probe.error"]
        assert bounding != (1 << (bounding.bit_length())) - 1, "the host has every capability: dockerd should run"
        assert {check: native.get(check) for check in PRIVILEGED} == PRIVILEGED
    else:
        assert isolation.differences(docker, native) == {}
