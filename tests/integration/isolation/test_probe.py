"""The isolation probe side by side: the same image and compose settings on dockerd and on the native backend.

tests/support/isolation_probe.c runs in a container of each backend through composer itself, with the
default settings, ``cap_drop: [ALL]``, ``privileged: true`` and ``read_only: true``. Its verdicts must be
identical, except for the differences listed below, each with its reason. A listed difference is one
where the native backend is stricter than the suite's Docker, or follows current Docker where that is
stricter (or, for a privileged container's capabilities, gives what current Docker gives); any other
looser one is a bug, never an entry here. The list is exact both ways: a new difference fails, and so
does a listed one that disappeared (update the list, and docs/security.md, which keeps the table
``make isolation-report`` prints).

Some of Docker's verdicts depend on the host: the kernel's answer to a call Docker's filter lets
through, the cgroup layout (Docker's /sys/fs/cgroup), the capabilities the kernel has. The list is
computed from those facts of the running host (tests/support/isolation.py's HostFacts), so it holds on
this host (hybrid cgroups, kernel 6.18) and in the guest lane's Debian 12 guest (pure cgroup v2,
kernel 6.1) alike.

Needs root, dockerd and Debian's docker-registry; under CI=true a missing one fails the test.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from composer.backends.native.image.store import ImageStore
from composer.backends.native.runtime.api import Runtime
from tests.integration.native.test_runtime import residue
from tests.integration.registry import LocalRegistry
from tests.support import isolation

# The dockerd of this suite is Debian's 20.10 (runc 1.1, its seccomp profile of 2022). Where current
# Docker is stricter than that and composer follows current Docker, the difference is listed here.
NEWER_DOCKER = "current Docker's seccomp profile (moby 25+) refuses it; Debian's dockerd 20.10 predates that"
NO_CGROUP_FS = "composer mounts no cgroup file system into containers (nothing to write; nothing to read either)"


def stricter(facts: isolation.HostFacts) -> dict[str, tuple[str, str, str]]:
    """check -> (docker's verdict, native's verdict, why native differs), for every unprivileged setting on
    a host with these facts. Computed from what the running host is, never from what kind of machine it is."""
    entries: dict[str, tuple[str, str, str]] = {
        # Docker 20.10's filter lets these calls reach the kernel, so its verdict is the kernel's answer
        # (io_uring_register: EINVAL on 6.18, EBADF on 6.1; socket(AF_ALG): EAFNOSUPPORT where the kernel
        # has no AF_ALG, ok where it has); composer's filter refuses them first, as current Docker's does.
        check: (answer, "EPERM", NEWER_DOCKER) for check, answer in facts.kernel_answers.items() if answer != "EPERM"}
    entries["mask/proc/interrupts"] = ("exposed", "masked",
                                       "current Docker masks it (moby 25+); dockerd 20.10 does not")
    # Docker mounts the cgroup hierarchy read-only into the container: on pure cgroup v2 the container's
    # own cgroup2 (in a cgroup namespace), on v1 and hybrid hosts a tmpfs with the v1 hierarchies below it.
    entries["cgroup.control_files"] = ("read-only", "none-found", NO_CGROUP_FS)
    if facts.cgroup_mode != "v2":
        # ... and that tmpfs (v1, hybrid) stays writable, where composer's /sys/fs/cgroup is the read-only
        # /sys's own empty directory. On pure v2 Docker's is the read-only cgroup2 mount: no difference.
        entries["readonly/sys/fs/cgroup"] = ("rw", "ro", "composer's /sys/fs/cgroup is the read-only /sys's own "
                                             "directory; Docker's tmpfs there (cgroup v1 and hybrid) is writable")
    return entries


def privileged_differences(facts: isolation.HostFacts) -> dict[str, tuple[str, str, str]]:
    """check -> (docker's, native's, why) for ``privileged: true``, where dockerd can run it."""
    entries = {"cgroup.control_files": ("writable", "none-found", NO_CGROUP_FS + "; Docker's privileged one is "
                                        "writable")}
    docker_caps = facts.bounding & isolation.DOCKER_20_10_CAPABILITIES
    if docker_caps != facts.bounding:
        # Where the kernel has capabilities that dockerd 20.10's list lacks (CAP_PERFMON, CAP_BPF,
        # CAP_CHECKPOINT_RESTORE: kernel 5.8 and later), its privileged containers lack them; current
        # Docker (moby 25+), like composer, gives a privileged container the whole bounding set.
        why = "dockerd 20.10 grants the capabilities it knows (up to CAP_AUDIT_READ); moby 25+ and composer the " \
              "host's whole bounding set"
        for field in ("CapBnd", "CapEff", "CapPrm"):
            entries[f"status.{field}"] = (f"{docker_caps:016x}", f"{facts.bounding:016x}", why)
    return entries


# Extra differences for one setting only.
STRICTER_IN: dict[str, dict[str, tuple[str, str, str]]] = {"default": {}, "cap_drop_all": {}, "read_only": {}}


@pytest.fixture(scope="module")
def facts() -> isolation.HostFacts:
    return isolation.HostFacts.of_this_host()


@pytest.fixture(scope="module")
def verdicts(docker_api: Any, local_registry: LocalRegistry, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[dict[tuple[str, str], dict[str, str]]]:
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and the native backend needs root")
        pytest.skip("the native backend needs root")
    workdir = tmp_path_factory.mktemp("isolation-probe")
    reference = isolation.publish_image(docker_api, local_registry.host, workdir)
    cgroup_parent = f"composer-probe-{uuid.uuid4().hex[:8]}"
    runs = {"docker": isolation.Run("docker", isolation.docker_environment()),
            "native": isolation.Run("native", isolation.native_environment(workdir / "native", cgroup_parent))}
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
        (workdir / "native" / "run" / "networks" / ".lock").unlink(missing_ok=True)  # kept by design
        with contextlib.suppress(OSError):
            (workdir / "native" / "run" / "networks").rmdir()
        residue(Runtime(ImageStore.open(workdir / "native" / "store"), run_root=workdir / "native" / "run",
                        cgroup_parent=cgroup_parent))


@pytest.mark.parametrize("setting", ["default", "cap_drop_all", "read_only"])
def test_native_matches_docker_or_is_stricter(verdicts: dict[tuple[str, str], dict[str, str]], setting: str,
                                              facts: isolation.HostFacts) -> None:
    docker, native = verdicts[(setting, "docker")], verdicts[(setting, "native")]
    assert "probe.error" not in docker, docker
    assert "probe.error" not in native, native
    expected = {check: (want[0], want[1]) for check, want in {**stricter(facts), **STRICTER_IN[setting]}.items()}
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


def test_privileged_matches_docker(verdicts: dict[tuple[str, str], dict[str, str]],
                                   facts: isolation.HostFacts) -> None:
    docker, native = verdicts[("privileged", "docker")], verdicts[("privileged", "native")]
    assert "probe.error" not in native, native
    bounding = facts.bounding
    assert native["status.CapEff"] == f"{bounding:016x}"
    if "probe.error" in docker:
        # runc applies every capability it knows to a privileged container; a host whose own bounding set
        # lacks one (this sandbox drops CAP_SYS_RESOURCE) cannot run any privileged container of dockerd.
        # Then native is held to Docker's documented privileged behaviour instead.
        assert "unable to apply caps" in docker["probe.error"], docker["probe.error"]
        assert bounding != (1 << (bounding.bit_length())) - 1, "the host has every capability: dockerd should run"
        assert {check: native.get(check) for check in PRIVILEGED} == PRIVILEGED
    else:
        expected = {check: (want[0], want[1]) for check, want in privileged_differences(facts).items()}
        assert isolation.differences(docker, native) == expected
