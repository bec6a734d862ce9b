"""What a container could reach of the host through the runtime's own plumbing (issue 15):
sysctl keys turned into paths (finding 5), descriptors inherited by the container's processes
(finding 8, CVE-2024-21626's class) and the host's python seen from inside while a helper enters
(finding 13, CVE-2019-5736's class). Real containers, asserted from inside with a static probe
(leak_probe.c, built here with the system compiler and bind-mounted read-only at /probe).

The fixtures are test_runtime's (module store, tmp run root, own cgroup parent, residue check at
the end) and, for the healthcheck, test_lifecycle's (the CLI and its project supervisor).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import cgroups, cpexec, nsexec, spawn
from composer.backends.native.runtime.api import Runtime
from composer.errors import BackendError, UnsupportedFeatureError
from composer.spec.models.service import ServiceVolume
from tests.integration.native import test_lifecycle, test_runtime
from tests.integration.native.test_lifecycle import Project, eventually
from tests.integration.native.test_runtime import Box, spare_cgroups, spare_runtime, wait_for_a_ready_spare
from tests.integration.timeouts import scaled

# the fixtures of test_runtime and test_lifecycle, used here too (module scoped ones get their own here)
session_root = test_runtime.session_root
image = test_runtime.image
runtime = test_runtime.runtime
box = test_runtime.box
env = test_lifecycle.env
project = test_lifecycle.project

PROBE_SOURCE = Path(__file__).with_name("leak_probe.c")
CLEAN = "fds=0,1,2"


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the static probe (mounted at /probe)."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the leak probe")
    folder = tmp_path_factory.mktemp("leak-probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", str(folder / "probe"), str(PROBE_SOURCE)], check=True)
    return folder


def probe_mount(probe_dir: Path) -> ServiceVolume:
    return ServiceVolume(type="bind", source=str(probe_dir), target="/probe", read_only=True)


def assert_clean(output: str) -> None:
    """The probe's ``fds`` report: the standard streams only, none of them a directory."""
    assert CLEAN in output.splitlines(), output
    assert "host-dirs=0" in output.splitlines(), output


# --- finding 5: sysctl keys ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "settings", "reason"), [
    ("net./etc/crontab", {}, "not a valid key"),  # an absolute path after the prefix: the host's file
    ("net.../x", {}, "not a valid key"),  # empty components, then a path
    ("net.ipv4..ip_forward", {}, "not a valid key"),
    ("kernel.foo", {}, "not namespaced"),
    ("vm.swappiness", {}, "not namespaced"),
    ("net.ipv4.ip_forward", {"network_mode": "host"}, "not namespaced"),
    ("kernel.shmmni", {"ipc": "host"}, "not namespaced"),
    ("kernel.hostname", {}, "hostname key"),
])
def test_sysctl_keys_outside_the_containers_namespaces_are_refused(box: Box, key: str, settings: dict[str, Any],
                                                                   reason: str) -> None:
    # Docker (runc's validator) refuses each of these too: "sysctl ... is not in a separate kernel namespace",
    # "not allowed in the hosts network namespace", "conflicts with the OCI hostname field".
    with pytest.raises(UnsupportedFeatureError) as caught:
        box.create("true", sysctls={key: "1"}, **settings)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.hint is None
    assert message.startswith("service c: sysctl ")
    assert repr(key) in message
    assert reason in message


def test_sysctls_are_written_inside_the_container_and_nowhere_else(box: Box, tmp_path: Path) -> None:
    wanted = {"net.ipv4.ip_forward": "1", "kernel.domainname": "probe.test", "kernel.msgmax": "4096"}
    code, out = box.run("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname /proc/sys/kernel/msgmax",
                        sysctls=wanted)
    assert (code, out.split()) == (0, ["1", "probe.test", "4096"])
    assert Path("/proc/sys/kernel/domainname").read_text().strip() != "probe.test"  # the host's is untouched

    # A key that got past the validation (a configuration written by hand, an older composer) is
    # still written under the container's /proc/sys or not at all: PID 1 never builds a path from it.
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    for key in (f"net.{victim}", "net." + "../" * 12 + str(victim).lstrip("/"), "net.ipv4.conf.all"):
        name = box.create("true", sysctls={"net.ipv4.ip_forward": "1"})
        config_path = box.rt.run_dir(box.project, name) / "config.json"
        config = json.loads(config_path.read_text())
        config["sysctls"] = {key: "pwned"}
        config_path.write_text(json.dumps(config))
        with pytest.raises(BackendError, match="sysctl") as caught:
            box.rt.start(box.project, name)
        assert "\n" not in str(caught.value)
        assert victim.read_text() == "untouched\n"
        box.rt.remove(box.project, name, force=True)


# --- finding 8: descriptors ----------------------------------------------------------------------


def exec_in(rt: Runtime, project: str, name: str, args: list[str]) -> tuple[int, str]:
    """``exec`` as the backend runs it (nsexec's helper): exit code and output."""
    config = rt.config(project, name)
    state = json.loads((rt.run_dir(project, name) / "state.json").read_text())
    process = nsexec.run(nsexec.exec_config(config, state, args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = process.communicate(timeout=scaled(60))
    return process.returncode, out.decode(errors="replace")


def test_a_container_and_an_exec_get_only_the_standard_streams(box: Box, probe_dir: Path, tmp_path: Path,
                                                               docker_api: Any, busybox_image: str) -> None:
    mount = probe_mount(probe_dir)
    # An inheritable descriptor of a host folder in the caller, as a leaked cgroup or / would be.
    host_dir = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    os.set_inheritable(host_dir, True)
    try:
        code, out = box.run(None, command=("/probe/probe", "fds"), volumes=(mount,))
        assert code == 0, out
        assert_clean(out)
        code, out = box.run(None, command=("/probe/probe", "fds"), volumes=(mount,), init=True)  # under tini
        assert code == 0, out
        assert_clean(out)
        name = box.create("sleep 600", volumes=(mount,))
        box.rt.start(box.project, name)
        code, out = exec_in(box.rt, box.project, name, ["/probe/probe", "fds"])
        assert code == 0, out
        assert_clean(out)
    finally:
        os.close(host_dir)
    # Docker: runc marks every descriptor above 2 close-on-exec before the container's execve
    # (CVE-2024-21626's fix), so the same probe prints the same report there.
    container = docker_api.create_container(busybox_image, ["/probe/probe", "fds"],
                                            host_config=docker_api.create_host_config(
                                                binds={str(probe_dir): {"bind": "/probe", "mode": "ro"}}))
    try:
        docker_api.start(container)
        assert docker_api.wait(container, timeout=scaled(60))["StatusCode"] == 0
        assert_clean(docker_api.logs(container).decode())
    finally:
        docker_api.remove_container(container, force=True)


@pytest.fixture
def slow_spare_box(image: tuple[ImageStore, ImageRecord], session_root: Path,
                   monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    """test_runtime's spare_box, whose forkserver makes each new spare a second after a start
    (the first one at once): long enough to find and kill it meanwhile."""
    monkeypatch.setattr(spawn, "SPARE_DELAY", 1.0)
    with spare_runtime(image, session_root / "spare-leak-run") as b:
        yield b


def forkserver_children(box: Box) -> list[int]:
    """The processes forked from the forkserver that hold no start: spare monitors (and their PID 1),
    whose stderr is still the forkserver's /dev/null (a monitor's is its monitor.log)."""
    assert box.rt.forkserver is not None
    assert box.rt.forkserver.process is not None
    server = box.rt.forkserver.process.pid
    cmdline = Path(f"/proc/{server}/cmdline").read_bytes()
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if (proc.name.isdigit() and int(proc.name) != server and (proc / "cmdline").read_bytes() == cmdline
                    and os.readlink(proc / "fd" / "2") == os.devnull):
                found.append(int(proc.name))
        except OSError:
            continue
    return found


def kill_the_spare(box: Box) -> None:
    """SIGKILL the spare's processes, wherever they are, and remove the cgroups they leave."""
    pids = eventually(lambda: forkserver_children(box))
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() for pid in pids))
    for folder in spare_cgroups(box.rt.cgroup_parent):
        procs = Path(folder, "cgroup.procs")
        eventually(lambda procs=procs: not procs.read_text().strip())  # type: ignore[misc]
        os.rmdir(folder)


def run_probe(box: Box, mount: ServiceVolume) -> str:
    code, out = box.run(None, command=("/probe/probe", "fds"), volumes=(mount,))
    assert code == 0, out
    return out


def test_starts_served_by_spares_get_only_the_standard_streams_even_after_a_killed_spare(
        slow_spare_box: Box, probe_dir: Path) -> None:
    if cgroups.detect().mode not in ("v1", "hybrid"):
        pytest.skip("spare monitors need cgroup v1 (a cgroup2 cgroup cannot be renamed)")
    box = slow_spare_box
    mount = probe_mount(probe_dir)
    wait_for_a_ready_spare(box.rt.cgroup_parent)
    assert_clean(run_probe(box, mount))  # served by the first spare
    kill_the_spare(box)  # the one made after it, killed while it waits to be made
    # This start finds the spare gone and is served by a fresh helper; the forkserver makes the
    # next spare once it has let go of this start's descriptors (it made it while holding them).
    assert_clean(run_probe(box, mount))
    wait_for_a_ready_spare(box.rt.cgroup_parent)
    assert_clean(run_probe(box, mount))  # served by that spare
    wait_for_a_ready_spare(box.rt.cgroup_parent)
    kill_the_spare(box)  # ready this time: monitor and PID 1
    assert_clean(run_probe(box, mount))  # the forkserver finds it dead when it hands it the start
    wait_for_a_ready_spare(box.rt.cgroup_parent)  # and has made another one
    assert_clean(run_probe(box, mount))


def test_a_healthcheck_gets_only_the_standard_streams(project: Project, probe_dir: Path) -> None:
    project.write(f"""
        web:
          image: IMAGE
          command: sleep 600
          volumes: ["{probe_dir}:/probe:ro"]
          healthcheck:
            test: ["CMD", "/probe/probe", "fds"]
            interval: 0.3s
    """)
    project.run("up", "-d")
    container = f"{project.name}-web-1"
    health = eventually(lambda: (h := project.state(container, "health.json")) and h["log"] and h)
    output = health["log"][-1]["output"]
    assert_clean(output)
    assert health["log"][-1]["exit_code"] == 0
    assert_clean(project.run("run", "--rm", "web", "/probe/probe", "fds").stdout)  # a one-off, from the CLI too
    assert_clean(project.run("exec", "-T", "web", "/probe/probe", "fds").stdout)


# --- finding 13: the host's python, seen from inside while a helper enters -------------------------


def digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_an_exec_helper_cannot_be_opened_through_proc_exe(box: Box, probe_dir: Path) -> None:
    """The exec (and healthcheck) helper's child is the host's python, in the container's pid
    namespace, from its fork to its execve. The probe, root in the container with Docker's default capabilities, stops
    it there once it has dropped to the container's capabilities and opens /proc/<pid>/exe: the
    helper is undumpable, so every open (and readlink) is refused. Docker: runc's helper (runc init)
    is undumpable too and runs from a sealed copy of runc, so there the same open fails as well."""
    interpreter = os.path.realpath(sys.executable)
    before = digest(interpreter)
    name = box.create(None, command=("/probe/probe", "exe"), volumes=(probe_mount(probe_dir),))
    box.rt.start(box.project, name)
    # cp's helper only joins the mount namespace: it never shows in the container's /proc at all
    state = json.loads((box.rt.run_dir(box.project, name) / "state.json").read_text())
    for _ in range(20):
        found = json.loads(cpexec.run({"op": "stat", "path": "/probe/probe", "container": name, "pid": state["pid"],
                                       "pid_start": state["pid_start"]}))
        assert found["size"] > 0
    assert box.rt.output(box.project, name) == ""  # the probe saw no helper (it reports every one it sees)
    caught = ""
    for _ in range(200):  # each exec is a chance for the probe to catch the helper before its execve
        code, out = exec_in(box.rt, box.project, name, ["true"])
        caught = next((line for line in box.rt.output(box.project, name).splitlines()
                       if line.startswith("caught")), "")
        if caught:
            break  # the probe then exits, and the kernel kills what is left in its pid namespace
        assert code == 0, out
    assert caught, box.rt.output(box.project, name)
    fields = dict(item.split("=", 1) for item in caught.split()[2:])
    assert fields["read"] == fields["write"] == fields["path"] == fields["link"] == "EACCES", caught
    assert digest(interpreter) == before
