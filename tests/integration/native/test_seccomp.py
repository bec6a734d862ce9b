"""The native backend's seccomp filter against Docker's, side by side.

A static probe (``seccomp_probe.c``, built here with the system compiler) tries syscalls the
default profile refuses, filters by argument or allows, on the 64-bit, i386 and x32 ABIs, and
prints one verdict each. It runs in native containers (PID 1, ``exec``, ``exec --privileged``)
and in containers of the real dockerd; the verdicts must be Docker's, or refusals where the
dockerd under test is older than the profile we follow (``NEWER_THAN_THIS_DOCKERD``: stricter
is allowed, looser is not). A custom Docker-format profile file (``security_opt:
seccomp=<file>``) is honoured by both.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import nsexec
from composer.backends.native.runtime.api import Runtime
from composer.errors import SpecValidationError
from composer.spec.models.service import ServiceVolume
from tests.integration.native.test_runtime import Box, image, runtime, session_root  # noqa: F401 - fixtures
from tests.integration.timeouts import scaled

PROBE_SOURCE = Path(__file__).with_name("seccomp_probe.c")
# What Docker's default profile answers (moby/profiles seccomp/default_linux.go, runc's ENOSYS
# stub), asserted on the native backend whatever the dockerd under test is.
DOCKER_DEFAULT = {
    "getpid": "ok", "io_uring_setup": "EPERM", "io_uring_enter": "EPERM", "io_uring_register": "EPERM",
    "migrate_pages": "EPERM", "socket_inet": "ok", "socket_unix": "ok", "socket_alg": "EPERM",
    "socket_vsock": "EPERM", "personality_query": "ok", "personality_linux": "ok", "personality_5": "EPERM",
    "syscall_500": "ENOSYS", "keyctl": "EPERM", "unshare_user": "EPERM", "clone3": "ENOSYS",
    "clone_newns": "EPERM", "clone_plain": "ok", "mkdir": "ok",
    # the i386 ABI (int 0x80) gets the same profile; x32 too (refused before the kernel looks)
    "x86_getpid": "ok", "x86_keyctl": "EPERM", "x86_syscall_500": "ENOSYS", "x86_socket_alg": "EPERM",
    "x32_keyctl": "EPERM",
}
# Refused by the current profile, allowed by older dockerds (Debian 12's is 20.10): io_uring
# since Docker 25 (moby#46762), AF_VSOCK since 23 (moby#44562), AF_ALG since 29.x (CVE-2026-31431).
NEWER_THAN_THIS_DOCKERD = {"io_uring_setup", "io_uring_enter", "io_uring_register", "socket_vsock", "socket_alg",
                           "x86_socket_alg"}
# Not probed: AF_ALG through the i386 socketcall(2) multiplexer. Its arguments sit behind a
# pointer no seccomp filter can read; Docker closes it with AppArmor/SELinux rules, which the
# native backend does not have (it keeps socketcall allowed, as Docker's profile does).
# A profile that allows everything but mkdir (EPERM), in Docker's format.
NO_MKDIR_PROFILE = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


@pytest.fixture
def runs(runtime: Runtime, image: tuple[ImageStore, ImageRecord]) -> Iterator[Box]:  # noqa: F811
    """The test's native containers (test_runtime's Box: removed at the end, pass or fail)."""
    b = Box(runtime, image[1])
    try:
        yield b
    finally:
        b.cleanup()


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the static probe, to bind read-only at /probe."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the seccomp probe")
    folder = tmp_path_factory.mktemp("seccomp-probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", str(folder / "probe"), str(PROBE_SOURCE)], check=True,
                   capture_output=True)
    return folder


def verdicts(output: str) -> dict[str, str]:
    found = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
    assert set(found) == set(DOCKER_DEFAULT), output
    return found


def probe_mount(probe: Path) -> tuple[ServiceVolume, ...]:
    return (ServiceVolume(type="bind", source=str(probe), target="/probe", read_only=True),)


def native(runs: Box, probe: Path, **settings: Any) -> dict[str, str]:
    code, out = runs.run(None, command=("/probe/probe",), volumes=probe_mount(probe), **settings)
    assert code == 0, out
    return verdicts(out)


def docker(api: Any, image_ref: str, probe: Path, **host: Any) -> dict[str, str]:
    """The probe in a container of the real dockerd; removed whatever happens."""
    container = api.create_container(
        image_ref, command=["/probe/probe"],
        host_config=api.create_host_config(binds={str(probe): {"bind": "/probe", "mode": "ro"}}, **host))
    try:
        api.start(container)
        assert api.wait(container, timeout=scaled(60))["StatusCode"] == 0
        return verdicts(api.logs(container).decode())
    finally:
        api.remove_container(container, force=True)


def assert_not_looser(ours: Mapping[str, str], dockers: Mapping[str, str]) -> None:
    """Docker's verdicts, or a refusal where this dockerd predates the profile we follow."""
    for check, theirs in dockers.items():
        if check in NEWER_THAN_THIS_DOCKERD and ours[check] == "EPERM":
            continue
        assert ours[check] == theirs, (check, ours[check], theirs)


def test_the_default_profile_is_dockers(runs: Box, probe: Path, docker_api: Any, busybox_image: str) -> None:
    ours = native(runs, probe)
    # The old filter (a deny-list over allow-all) let io_uring, migrate_pages, AF_ALG, AF_VSOCK,
    # personality(5) and unknown syscalls through: each is refused now, as Docker refuses it.
    assert ours == DOCKER_DEFAULT
    assert_not_looser(ours, docker(docker_api, busybox_image, probe))


def test_capabilities_open_their_syscalls_as_in_docker(runs: Box, probe: Path, docker_api: Any,
                                                       busybox_image: str) -> None:
    # CAP_SYS_ADMIN allows unshare, clone with namespace flags and clone3 (Docker's includes.caps)
    ours = native(runs, probe, cap_add=("SYS_ADMIN",))
    assert (ours["clone_newns"], ours["unshare_user"], ours["keyctl"]) == ("ok", "ok", "EPERM")
    assert ours["clone3"] != "ENOSYS"
    assert_not_looser(ours, docker(docker_api, busybox_image, probe, cap_add=["SYS_ADMIN"]))
    # cap_drop ALL: the capability rules stay closed; the kernel may refuse more (EPERM either way)
    ours = native(runs, probe, cap_drop=("ALL",))
    assert_not_looser(ours, docker(docker_api, busybox_image, probe, cap_drop=["ALL"]))


def test_privileged_and_unconfined_run_without_a_filter(runs: Box, probe: Path, docker_api: Any,
                                                         busybox_image: str) -> None:
    # Docker: --privileged drops seccomp whatever security_opt says (moby#41321); unconfined too.
    # (This host's dockerd cannot start privileged containers at all: its runc 1.1.5 fails to
    # apply the host's capability set; so privileged is checked against the kernel's answers.)
    for settings in ({"privileged": True}, {"security_opt": ("seccomp=unconfined",)},
                     {"privileged": True, "security_opt": ("seccomp=builtin",)}):
        ours = native(runs, probe, **settings)
        assert (ours["personality_5"], ours["syscall_500"]) == ("ok", "ENOSYS"), settings  # the kernel's ENOSYS
        _, out = runs.run("grep Seccomp: /proc/self/status", **settings)
        assert "Seccomp:\t0" in out, settings
    ours = native(runs, probe, security_opt=("seccomp=unconfined",))
    assert ours == docker(docker_api, busybox_image, probe, security_opt=["seccomp=unconfined"])


def test_exec_and_exec_privileged_get_the_containers_filter(runs: Box, probe: Path) -> None:
    """runc gives every process of a container the container's filter, ``docker exec
    --privileged`` included (it adds capabilities, never removes seccomp): so does nsexec, which
    also runs healthchecks."""
    name = runs.create("sleep 60", volumes=probe_mount(probe))
    runs.rt.start(runs.project, name)
    config = runs.rt.config(runs.project, name)
    state = json.loads((runs.rt.run_dir(runs.project, name) / "state.json").read_text())
    for privileged in (False, True):
        cfg = nsexec.exec_config(config, state, ["/probe/probe"], privileged=privileged)
        process = nsexec.run(cfg, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        out, _ = process.communicate(timeout=scaled(60))
        assert process.returncode == 0, out
        # the filter was compiled for the container's capabilities: with every capability, exec
        # --privileged still meets the default-capability rules (unshare refused), as in Docker
        assert verdicts(out.decode()) == DOCKER_DEFAULT, privileged
    runs.rt.stop(runs.project, name, grace=1)


def test_a_custom_profile_file_as_docker_reads_it(runs: Box, probe: Path, tmp_path: Path, docker_api: Any,
                                                   busybox_image: str) -> None:
    profile = tmp_path / "no-mkdir.json"
    profile.write_text(json.dumps(NO_MKDIR_PROFILE))
    ours = native(runs, probe, security_opt=(f"seccomp={profile}",))
    assert (ours["mkdir"], ours["getpid"]) == ("EPERM", "ok")
    assert ours["personality_5"] == "ok"  # allowed by this profile's default
    assert ours["syscall_500"] == "ENOSYS"  # the kernel's: an allowing default adds no stub
    theirs = docker(docker_api, busybox_image, probe, security_opt=[f"seccomp={json.dumps(NO_MKDIR_PROFILE)}"])
    assert ours == theirs


def test_a_bad_profile_file_is_a_one_line_error(runs: Box, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_NOPE"}]}')
    with pytest.raises(SpecValidationError) as caught:
        runs.create("true", security_opt=(f"seccomp={bad}",))
    message = str(caught.value)
    assert str(bad) in message
    assert "SCMP_ACT_NOPE" in message
    assert "\n" not in message
    assert runs.rt.containers(runs.project) == []  # nothing was created


def test_a_container_created_without_a_compiled_program_still_gets_the_default(runs: Box, probe: Path) -> None:
    """config.json of a container created by an older composer has no ``seccomp_program``: start
    and exec compile Docker's default for it rather than run it unconfined."""
    name = runs.create("/probe/probe; sleep 60", volumes=probe_mount(probe))
    path = runs.rt.run_dir(runs.project, name) / "config.json"
    config = json.loads(path.read_text())
    del config["seccomp_program"]
    path.write_text(json.dumps(config))
    runs.rt.start(runs.project, name)
    state = json.loads((runs.rt.run_dir(runs.project, name) / "state.json").read_text())
    process = nsexec.run(nsexec.exec_config(config, state, ["/probe/probe"]), stdout=subprocess.PIPE)
    out, _ = process.communicate(timeout=scaled(60))
    assert verdicts(out.decode()) == DOCKER_DEFAULT
    runs.rt.stop(runs.project, name, grace=1)
    assert verdicts(runs.rt.output(runs.project, name)) == DOCKER_DEFAULT
