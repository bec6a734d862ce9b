"""Real containers from the native runtime: isolation, limits and lifecycle, asserted from inside.

The busybox test image is pushed by dockerd to the local registry and pulled into a store under a
session tmp COMPOSER_ROOT; state goes to a tmp run root and cgroups under a unique parent. Every
test removes its containers, pass or fail; at the end of the module ``residue`` fails the run on
anything left behind: mounts under the state dirs, cgroups, helper or container processes, and
state files. Root is needed (the native conftest fails under CI=true, skips otherwise).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import cgroups
from composer.backends.native.runtime.api import Runtime
from composer.backends.native.runtime.config import command
from composer.errors import BackendError, UnsupportedFeatureError
from composer.events import ListSink
from composer.spec.models.service import ServiceConfig
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled

DOCKER_DEFAULT = 0xA80425FB
KEYCTL_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
static void report(const char *name, long rc) {
    printf("%s=%s\n", name, rc == -1 ? strerrorname_np(errno) : "ok");
}
int main(void) {
    report("keyctl", syscall(SYS_keyctl, 0 /* KEYCTL_GET_KEYRING_ID */, -3 /* session */, 0));
    report("add_key", syscall(SYS_add_key, "user", "k", "v", 1, -3));
    report("unshare_user", unshare(CLONE_NEWUSER));
    report("clone3", syscall(435 /* SYS_clone3 */, NULL, 0));
    report("getpid", syscall(SYS_getpid) > 0 ? 0 : -1);
    return 0;
}
"""


@pytest.fixture(scope="module")
def session_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("native-runtime")


@pytest.fixture(scope="module")
def image(local_registry: LocalRegistry, session_root: Path) -> tuple[ImageStore, ImageRecord]:
    """The busybox test image, pulled into a module-wide store."""
    old = {k: os.environ.get(k) for k in ("COMPOSER_REGISTRY_CONFIG", "COMPOSER_REGISTRY_MIRRORS")}
    os.environ["COMPOSER_REGISTRY_CONFIG"] = str(session_root / "no-registries.json")
    os.environ.pop("COMPOSER_REGISTRY_MIRRORS", None)
    try:
        store = ImageStore.open(session_root / "store")
        record = anyio.run(pull, local_registry.busybox, store, ListSink())
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return store, record


@pytest.fixture(scope="module")
def runtime(image: tuple[ImageStore, ImageRecord], session_root: Path) -> Iterator[Runtime]:
    """A Runtime with a tmp run root and its own cgroup parent; the residue check runs after the
    module's last test."""
    store, _ = image
    parent = f"composer-test-{uuid.uuid4().hex[:8]}"
    rt = Runtime(store, run_root=session_root / "run", cgroup_parent=parent)
    yield rt
    residue(rt)


def residue(rt: Runtime) -> None:
    """Fail on anything the tests left: mounts under the state dirs, cgroups, processes, files."""
    problems: list[str] = []
    roots = (str(rt.run_root), str(rt.store.root / "containers"), str(rt.store.root / "volumes"))
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if any(root in line for root in roots):
            problems.append(f"mount: {line}")
        elif " nsfs " in line and any(root in line for root in (str(rt.run_root), str(rt.store.root))):
            problems.append(f"network namespace: {line}")
    layout = cgroups.detect()
    hierarchies = list(layout.v1.values()) + ([layout.unified] if layout.unified else [])
    for mountpoint in hierarchies:
        parent = Path(mountpoint) / rt.cgroup_parent
        if parent.is_dir():
            children = [p.name for p in parent.iterdir() if p.is_dir()]
            if children:
                problems.append(f"cgroups under {parent}: {children}")
            else:
                parent.rmdir()
    deadline = time.monotonic() + 5  # a killed container's last processes may still be exiting
    while True:
        processes = leftover_processes(rt)
        if not processes or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    problems += processes
    leftovers = [str(p) for p in rt.run_root.rglob("*")] if rt.run_root.exists() else []
    containers = rt.store.root / "containers"
    leftovers += [str(p) for p in containers.iterdir()] if containers.exists() else []
    for kind in ("volumes", "networks"):  # the native backend's volumes and loopback networks
        folder = rt.store.root / kind
        leftovers += [str(p) for p in folder.iterdir()] if folder.exists() else []
    if leftovers:
        problems.append(f"state files: {leftovers[:10]}")
    if problems:
        pytest.fail("native runtime residue:\n" + "\n".join(problems))


def leftover_processes(rt: Runtime) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cgroup = (proc / "cgroup").read_text()
            status = (proc / "status").read_text()
        except OSError:
            continue
        if rt.cgroup_parent in cgroup or str(rt.run_root) in cmdline or (
                any(f"bootstrap.py {helper} " in cmdline for helper in ("init", "nsexec", "forkserver"))
                and ours(proc, rt)):
            found.append(f"process {proc.name}: {cmdline!r} {status.splitlines()[2]}")
    return found


def ours(proc: Path, rt: Runtime) -> bool:
    """A helper (monitor) of these tests, not another session's: its stderr is a monitor.log
    under our run root (other open files under it count too)."""
    try:
        targets = [os.readlink(fd) for fd in (proc / "fd").iterdir()]
    except OSError:
        return False
    return any(t.startswith((str(rt.run_root), str(rt.store.root))) for t in targets)


class Box:
    """The test's project: runs services as containers, removes them all at the end."""

    def __init__(self, rt: Runtime, record: ImageRecord) -> None:
        self.rt = rt
        self.record = record
        self.project = f"rt-{uuid.uuid4().hex[:8]}"
        self.count = 0

    def create(self, script: str | None = None, **settings: Any) -> str:
        self.count += 1
        name = f"{self.project}-c-{self.count}"
        if script is not None:
            settings.setdefault("command", ("sh", "-c", script))
        self.rt.create(self.project, name, ServiceConfig(name="c", image=self.record.reference, **settings),
                       self.record)
        return name

    def run(self, script: str | None = None, *, timeout: float = 30, **settings: Any) -> tuple[int, str]:
        """Run to completion: exit code and the output (stdout and stderr)."""
        name = self.create(script, **settings)
        self.rt.start(self.project, name)
        state = self.rt.wait(self.project, name, timeout=timeout)
        assert state.status == "exited", (state, self.rt.output(self.project, name))
        assert state.exit_code is not None
        return state.exit_code, self.rt.output(self.project, name)

    def cleanup(self) -> None:
        for name in self.rt.containers(self.project):
            self.rt.remove(self.project, name, force=True)


@pytest.fixture
def box(runtime: Runtime, image: tuple[ImageStore, ImageRecord]) -> Iterator[Box]:
    b = Box(runtime, image[1])
    try:
        yield b
    finally:
        b.cleanup()


def cap_eff(output: str) -> int:
    line = next(line for line in output.splitlines() if line.startswith("CapEff:"))
    return int(line.split()[1], 16)


# --- isolation ------------------------------------------------------------------------------


def test_ps_sees_only_the_containers_processes(box: Box) -> None:
    code, out = box.run("sleep 30 & sleep 0.3; ps -o pid,comm; true")
    assert code == 0
    rows = [line.split() for line in out.strip().splitlines()[1:]]
    assert sorted(comm for _, comm in rows) == ["ps", "sh", "sleep"], out
    assert ["1", "sh"] in rows


def test_capabilities_are_dockers_default_set(box: Box) -> None:
    code, out = box.run("grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status")
    assert code == 0, out
    assert cap_eff(out) == DOCKER_DEFAULT
    assert "CapBnd:\t00000000a80425fb" in out
    assert "CapInh:\t0000000000000000" in out
    assert "NoNewPrivs:\t0" in out
    assert "Seccomp:\t2" in out


def test_cap_add_cap_drop_and_privileged(box: Box) -> None:
    _, out = box.run("grep CapEff /proc/self/status", cap_add=("NET_ADMIN", "CAP_SYS_TIME"), cap_drop=("CHOWN",))
    assert cap_eff(out) == (DOCKER_DEFAULT | 1 << 12 | 1 << 25) & ~1
    _, out = box.run("grep CapEff /proc/self/status", cap_drop=("ALL",), cap_add=("KILL",))
    assert cap_eff(out) == 1 << 5
    _, out = box.run("grep -E 'CapEff|Seccomp:' /proc/self/status", privileged=True)
    host = int(next(line for line in Path("/proc/self/status").read_text().splitlines()
                    if line.startswith("CapBnd:")).split()[1], 16)
    assert cap_eff(out) == host
    assert "Seccomp:\t0" in out


def test_mount_fails_kcore_is_masked_and_proc_sys_is_read_only(box: Box) -> None:
    code, out = box.run("""
        mount -t tmpfs none /mnt; echo mount=$?
        for f in /proc/kcore /proc/keys /proc/timer_list; do test -e $f && echo "masked $f $(wc -c < $f)"; done
        ls /proc/acpi 2>/dev/null | wc -l | sed 's/^/acpi=/'
        echo 1 > /proc/sys/kernel/domainname; echo sys=$?
        echo x > /proc/sys/vm/drop_caches; echo sysrq=$?
        touch /sys/x; echo sysfs=$?
        echo devs: $(ls /dev)
    """)
    assert code == 0
    assert "mount=0" not in out
    assert "mount=" in out
    masked = [line.split() for line in out.splitlines() if line.startswith("masked ")]
    for path in ("/proc/kcore", "/proc/keys", "/proc/timer_list"):
        if Path(path).exists():  # this VM's kernel has no /proc/kcore: what exists must read empty
            assert ["masked", path, "0"] in masked, out
    assert "acpi=0" in out
    for key in ("sys", "sysrq", "sysfs"):
        assert f"{key}=0" not in out
        assert f"{key}=" in out
    devices = next(line for line in out.splitlines() if line.startswith("devs:")).split()[1:]
    assert set(devices) >= {"null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue", "ptmx", "fd"}


def test_the_hosts_files_are_unreachable(box: Box, tmp_path: Path) -> None:
    marker = tmp_path / f"host-marker-{uuid.uuid4().hex}"
    marker.write_text("secret")
    code, out = box.run(f"""
        test -e {marker} && echo found-marker
        ls / | tr '\\n' ' '; echo
        cat /proc/1/mountinfo | grep -c ' / ' | sed 's/^/roots=/'
        ls /proc/1/root{tmp_path} 2>&1 | head -1
    """)
    assert code == 0
    assert "found-marker" not in out
    assert set(out.splitlines()[0].split()) <= {"bin", "dev", "etc", "proc", "sys", "tmp", "usr", "sbin", "root",
                                                  "var", "home", "mnt", "run", "lib", "lib64"}
    assert "secret" not in out


def test_hostname_domainname_and_etc_files(box: Box) -> None:
    code, out = box.run("hostname; cat /etc/hostname; grep web1 /etc/hosts; cat /etc/resolv.conf; "
                        "echo HN=$HOSTNAME",
                        hostname="web1", extra_hosts=("db=10.1.2.3",), dns=("10.0.0.53",), dns_search=("example",))
    assert code == 0
    lines = out.splitlines()
    assert lines[:2] == ["web1", "web1"]
    assert "127.0.1.1\tweb1" in out
    assert "nameserver 10.0.0.53" in out
    assert "search example" in out
    assert "HN=web1" in out
    _, out = box.run("hostname; grep db /etc/hosts")
    assert len(out.splitlines()[0]) == 12
    assert "db" not in out.splitlines()[1:]


def test_read_only_root_refuses_writes(box: Box) -> None:
    code, out = box.run("touch /x; echo root=$?; touch /etc/y; echo etc=$?; touch /run/z; echo tmpfs=$?; "
                        "echo ok > /dev/shm/s; echo shm=$?", read_only=True, tmpfs=("/run:size=1m",))
    assert code == 0
    assert "root=1" in out
    assert "etc=1" in out
    assert "tmpfs=0" in out
    assert "shm=0" in out
    assert "Read-only file system" in out


def test_blocked_syscalls_fail_with_eperm(box: Box, tmp_path: Path) -> None:
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the syscall probe")
    (tmp_path / "probe.c").write_text(KEYCTL_C)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    subprocess.run(["gcc", "-static", "-O1", "-o", str(bin_dir / "probe"), str(tmp_path / "probe.c")], check=True)
    from composer.spec.models.service import ServiceVolume

    mount = ServiceVolume(type="bind", source=str(bin_dir), target="/probe", read_only=True)
    code, out = box.run(None, command=("/probe/probe",), volumes=(mount,))
    assert code == 0, out
    assert "keyctl=EPERM" in out
    assert "add_key=EPERM" in out
    assert "unshare_user=EPERM" in out
    assert "clone3=ENOSYS" in out
    assert "getpid=ok" in out
    # with CAP_SYS_ADMIN Docker's profile allows unshare; keyctl stays refused
    _, out = box.run(None, command=("/probe/probe",), volumes=(mount,), cap_add=("SYS_ADMIN",))
    assert "keyctl=EPERM" in out
    assert "unshare_user=ok" in out
    # privileged: no filter at all
    _, out = box.run(None, command=("/probe/probe",), volumes=(mount,), privileged=True)
    assert "keyctl=EPERM" not in out


def test_no_new_privileges(box: Box) -> None:
    _, out = box.run("grep -E 'NoNewPrivs|Seccomp:|CapEff' /proc/self/status",
                     security_opt=("no-new-privileges:true",))
    assert "NoNewPrivs:\t1" in out
    assert "Seccomp:\t2" in out
    assert cap_eff(out) == DOCKER_DEFAULT


# --- limits ---------------------------------------------------------------------------------


def test_memory_limit_oom_kill_is_reported(box: Box) -> None:
    code, out = box.run(None, command=("tail", "/dev/zero"), mem_limit=24 << 20, timeout=scaled(60))
    assert code == 137, out
    name = f"{box.project}-c-{box.count}"
    assert box.rt.state(box.project, name).oom_killed is True
    code, _ = box.run("true", mem_limit=24 << 20)
    assert code == 0
    assert box.rt.state(box.project, f"{box.project}-c-{box.count}").oom_killed is False


def test_pids_limit_holds(box: Box) -> None:
    # sh is one process; echo is a builtin: 7 sleeps start, the 8th fork fails
    code, out = box.run("i=0; while [ $i -lt 30 ]; do sleep 30 & echo started; i=$((i+1)); done", pids_limit=8)
    assert out.count("started") == 7, out
    assert "can't fork" in out or "Resource temporarily unavailable" in out, out
    assert code != 0


def test_cpu_and_cpuset_limits_are_written(box: Box) -> None:
    name = box.create("sleep 30", cpus=0.5, cpu_shares=512, cpuset="0")
    box.rt.start(box.project, name)
    cgroup = box.rt.config(box.project, name)["cgroup"]
    layout = cgroups.detect()
    if layout.mode == "v2":
        assert (Path(layout.unified or "") / cgroup / "cpu.max").read_text().split() == ["50000", "100000"]
    else:
        assert (Path(layout.v1["cpu"]) / cgroup / "cpu.cfs_quota_us").read_text().strip() == "50000"
        assert (Path(layout.v1["cpu"]) / cgroup / "cpu.shares").read_text().strip() == "512"
        assert (Path(layout.v1["cpuset"]) / cgroup / "cpuset.cpus").read_text().strip() == "0"
    box.rt.stop(box.project, name, grace=0)
    for path in box.rt.config(box.project, name)["cgroup"], :
        assert not (Path(layout.v1.get("cpu") or layout.unified or "") / path).exists()


def test_ulimits_and_the_callers_hard_limit(box: Box) -> None:
    code, out = box.run("ulimit -n; ulimit -Hn", ulimits={"nofile": {"soft": 1000, "hard": 2000}})
    assert code == 0
    assert out.split() == ["1000", "2000"]
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    name = box.create("true", ulimits={"nofile": {"soft": 10, "hard": hard + 1}})
    with pytest.raises(BackendError, match=r"hard limit .* is above"):
        box.rt.start(box.project, name)


def test_sysctls_namespaced_only(box: Box) -> None:
    code, out = box.run("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni",
                        sysctls={"net.ipv4.ip_forward": "1", "kernel.shmmni": "2048"})
    assert code == 0
    assert out.split() == ["1", "2048"]
    with pytest.raises(UnsupportedFeatureError, match=r"vm\.swappiness"):
        box.create("true", sysctls={"vm.swappiness": "10"})


def test_ipc_host_shares_the_hosts_namespace_and_dev_shm_and_none_has_no_shm(box: Box) -> None:
    note = Path(f"/dev/shm/{box.project}-note")
    note.write_text("from-the-host")
    try:
        code, out = box.run(f"readlink /proc/self/ns/ipc; cat /dev/shm/{note.name}", ipc="host")
    finally:
        note.unlink()
    assert code == 0
    assert out.split() == [os.readlink("/proc/self/ns/ipc"), "from-the-host"]
    with pytest.raises(UnsupportedFeatureError, match=r"kernel\.shmmni"):
        box.create("true", ipc="host", sysctls={"kernel.shmmni": "2048"})
    code, out = box.run("readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/mounts", ipc="none")
    assert code == 1  # grep -c found nothing
    assert out.split()[0] != os.readlink("/proc/self/ns/ipc")
    assert out.split()[1] == "0"


def test_pid_host_is_the_hosts_pid_namespace_and_leaves_no_child_behind(box: Box) -> None:
    code, out = box.run("readlink /proc/self/ns/pid; echo $$; sleep 6063 &", pid="host")
    assert code == 0
    namespace, pid = out.split()
    assert namespace == os.readlink("/proc/self/ns/pid")
    assert int(pid) > 1
    # the backgrounded sleep outlived sh: the monitor killed it with the container
    assert not [p for p in Path("/proc").glob("[0-9]*") if b"6063" in cmdline(p)]


def cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:  # it just exited
        return b""


# --- the process ----------------------------------------------------------------------------


def test_user_group_add_working_dir_and_environment(box: Box, tmp_path: Path) -> None:
    from composer.spec.models.service import ServiceVolume

    (tmp_path / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
    (tmp_path / "group").write_text("root:x:0:\napp:x:1000:\nstaff:x:50:app\naudio:x:29:\n")
    etc = (ServiceVolume(type="bind", source=str(tmp_path / "passwd"), target="/etc/passwd", read_only=True),
           ServiceVolume(type="bind", source=str(tmp_path / "group"), target="/etc/group", read_only=True))
    code, out = box.run("id; pwd; echo $HOME $GREETING $PATH", user="app", group_add=("audio",),
                        working_dir="/srv/app", environment={"GREETING": "hi", "UNSET": None}, volumes=etc)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("uid=1000(app) gid=1000(app) groups=")
    assert "50(staff)" in lines[0]
    assert "29(audio)" in lines[0]
    assert lines[1] == "/srv/app"
    assert lines[2].split()[:2] == ["/home/app", "hi"]
    _, out = box.run("id -u; id -g; grep CapEff /proc/self/status", user="4242:77", volumes=etc)
    assert out.split()[:2] == ["4242", "77"]
    assert cap_eff(out) == 0  # like Docker: a non-root user keeps no capabilities after execve
    name = box.create("true", user="nobody2", volumes=etc)
    with pytest.raises(BackendError) as caught:
        box.rt.start(box.project, name)
    assert "unable to find user nobody2" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert box.rt.state(box.project, name).status == "created"


def test_entrypoint_and_command_override_rules() -> None:
    image = {"Entrypoint": ["/entry"], "Cmd": ["default"]}
    assert command(None, None, image) == ["/entry", "default"]
    assert command(None, ("x",), image) == ["/entry", "x"]
    assert command(("/other",), None, image) == ["/other"]  # a Compose entrypoint clears Cmd
    assert command(("/other",), ("y",), image) == ["/other", "y"]
    assert command((), ("z",), image) == ["z"]
    with pytest.raises(UnsupportedFeatureError, match="no command"):
        command((), None, {})


def test_entrypoint_in_a_real_container(box: Box) -> None:
    code, out = box.run(None, entrypoint=("echo", "entry"), command=("arg",))
    assert (code, out) == (0, "entry arg\n")
    name = box.create(None, command=("does-not-exist",))
    with pytest.raises(BackendError, match=r'exec: "does-not-exist": executable file not found in \$PATH'):
        box.rt.start(box.project, name)


def test_exit_codes(box: Box) -> None:
    assert box.run("exit 3")[0] == 3
    assert box.run("echo out; echo err >&2; exit 0") == (0, "out\nerr\n")
    name = box.create("sleep 30")
    box.rt.start(box.project, name)
    assert box.rt.state(box.project, name).status == "running"
    box.rt.kill(box.project, name, signal.SIGKILL)
    assert box.rt.wait(box.project, name, timeout=scaled(10)).exit_code == 137


def test_init_runs_tini_as_pid_1(box: Box) -> None:
    code, out = box.run("ps -o pid,comm | sed -n 2p", init=True)
    assert code == 0
    assert out.split() == ["1", "docker-init"]
    name = box.create("echo up; exec sleep 30", init=True)
    box.rt.start(box.project, name)
    deadline = time.monotonic() + 10  # tini runs its child once its signal handling is set up
    while "up" not in box.rt.output(box.project, name) and time.monotonic() < deadline:
        time.sleep(0.02)
    state = box.rt.stop(box.project, name, grace=5)  # tini forwards SIGTERM to sleep
    assert state.exit_code == 143


def test_stop_honours_stop_signal_then_grace_then_kill(box: Box) -> None:
    script = "trap 'echo got-usr1; exit 7' USR1; echo ready; while true; do sleep 0.1; done"
    name = box.create(script, stop_signal="SIGUSR1")
    box.rt.start(box.project, name)
    deadline = time.monotonic() + 10
    while "ready" not in box.rt.output(box.project, name) and time.monotonic() < deadline:
        time.sleep(0.02)
    state = box.rt.stop(box.project, name)
    assert state.exit_code == 7
    assert "got-usr1" in box.rt.output(box.project, name)
    # PID 1 without a handler ignores SIGTERM: the grace period passes, then SIGKILL
    name = box.create(None, command=("sleep", "60"), stop_grace_period="1s")
    box.rt.start(box.project, name)
    started = time.monotonic()
    state = box.rt.stop(box.project, name)
    elapsed = time.monotonic() - started
    assert state.exit_code == 137
    assert elapsed >= 0.9, elapsed  # the grace period was waited (no upper bound: a loaded host is slow)


def test_restart_after_exit_keeps_the_writable_layer(box: Box) -> None:
    name = box.create("cat /data 2>/dev/null; echo written > /data")
    box.rt.start(box.project, name)
    box.rt.wait(box.project, name, timeout=scaled(10))
    box.rt.start(box.project, name)
    state = box.rt.wait(box.project, name, timeout=scaled(10))
    assert state.exit_code == 0
    assert box.rt.output(box.project, name) == "written\n"


def test_bind_mounts_read_only_and_create_host_path(box: Box, tmp_path: Path) -> None:
    from composer.spec.models.service import BindOptions, ServiceVolume

    shared = tmp_path / "shared"
    shared.mkdir()
    created = tmp_path / "made" / "here"
    volumes = (ServiceVolume(type="bind", source=str(shared), target="/rw"),
               ServiceVolume(type="bind", source=str(shared), target="/ro", read_only=True),
               ServiceVolume(type="bind", source=str(created), target="/new", bind=BindOptions(create_host_path=True)))
    code, out = box.run("echo hello > /rw/f; echo x > /ro/g; echo ro=$?; cat /ro/f; ls -d /new", volumes=volumes)
    assert code == 0, out
    assert (shared / "f").read_text() == "hello\n"
    assert "ro=1" in out
    assert "hello" in out
    assert created.is_dir()


def test_twenty_starts_to_exit_and_their_latency(box: Box, capsys: pytest.CaptureFixture[str]) -> None:
    """Twenty starts of /bin/true in a row each exit 0 and leave nothing; the start → exit median is printed
    for the record, not asserted (timings belong to bench/, whose figures compare with the reference tools:
    a time limit here fails on a slow host, e.g. under qemu's emulation in the guest lane)."""
    times = []
    for _ in range(20):
        name = box.create(None, command=("true",))
        started = time.perf_counter()
        box.rt.start(box.project, name)
        state = box.rt.wait(box.project, name, timeout=scaled(10))
        times.append(time.perf_counter() - started)
        assert state.exit_code == 0
        box.rt.remove(box.project, name)
    median = statistics.median(times) * 1000
    with capsys.disabled():
        sys.stdout.write(f"\nnative start-to-exit, /bin/true: median {median:.1f} ms, "
                         f"min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f} (n=20)\n")
    assert box.rt.containers(box.project) == []


def test_remove_force_of_a_running_container_and_missing_names(box: Box) -> None:
    name = box.create("sleep 60")
    pid = box.rt.start(box.project, name)
    with pytest.raises(BackendError, match="running"):
        box.rt.remove(box.project, name)
    box.rt.remove(box.project, name, force=True)
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    from composer.errors import NotFoundError

    with pytest.raises(NotFoundError):
        box.rt.state(box.project, name)


def test_monitor_killed_then_remove_leaves_nothing(box: Box) -> None:
    name = box.create("sleep 60")
    box.rt.start(box.project, name)
    import json

    state = json.loads((box.rt.run_dir(box.project, name) / "state.json").read_text())
    os.kill(state["monitor"], signal.SIGKILL)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{state['monitor']}").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert box.rt.state(box.project, name).status == "running"  # the container outlives its monitor
    box.rt.remove(box.project, name, force=True)



def test_device_rules_deny_a_host_disk_made_with_mknod(box: Box) -> None:
    # CAP_MKNOD is in Docker's default set: the devices cgroup is what keeps the node unusable
    code, out = box.run("mknod /disk b 8 0; echo mknod=$?; head -c 1 /disk; echo read=$?; "
                        "head -c 1 /dev/zero | wc -c")
    assert code == 0
    assert "mknod=0" in out
    assert "read=0" not in out
    assert "Operation not permitted" in out
    assert "1" in [line.strip() for line in out.splitlines()]  # /dev/zero still reads


@pytest.fixture
def spare_box(image: tuple[ImageStore, ImageRecord], session_root: Path) -> Iterator[Box]:
    """A Runtime whose forkserver keeps a spare monitor (cgroups under a parent of its own); the
    residue check runs once the forkserver is closed, and with it the spare."""
    with spare_runtime(image, session_root / "spare-run") as b:
        yield b


@contextlib.contextmanager
def spare_runtime(image: tuple[ImageStore, ImageRecord], run_root: Path) -> Iterator[Box]:
    """spare_box's body, for fixtures that change the forkserver's settings first (test_leaks)."""
    from composer.backends.native.runtime.spawn import Forkserver

    store, record = image
    parent = f"composer-spare-test-{uuid.uuid4().hex[:8]}"
    rt = Runtime(store, run_root=run_root, cgroup_parent=parent)
    rt.forkserver = Forkserver(spare_parent=parent)
    rt.forkserver.start()
    b = Box(rt, record)
    try:
        # the forkserver makes its first spare after the first start that asks for one
        assert b.run("true") == (0, "")
        b.cleanup()
        yield b
    finally:
        b.cleanup()
        rt.forkserver.close()
        deadline = time.monotonic() + 10  # a dismissed spare removes its cgroup, then exits
        quiet_since = time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - quiet_since < 0.5:  # one in the making too
            if spare_cgroups(parent):
                quiet_since = time.monotonic()
            time.sleep(0.05)
        residue(rt)


def spare_cgroups(parent: str) -> list[str]:
    layout = cgroups.detect()
    found = []
    for mountpoint in [*layout.v1.values(), *([layout.unified] if layout.unified else [])]:
        folder = Path(mountpoint) / parent
        found += [str(p) for p in folder.glob("spare-*")] if folder.is_dir() else []
    return found


def wait_for_a_ready_spare(parent: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if spare_cgroups(parent) and all(Path(p, "cgroup.procs").read_text().strip() for p in spare_cgroups(parent)):
            return  # made, and its PID 1 moved in
        time.sleep(0.05)
    raise AssertionError(f"no spare monitor under {parent}")


def test_a_forkserver_makes_no_spare_until_a_start_asks_for_one(
        image: tuple[ImageStore, ImageRecord], session_root: Path) -> None:
    """The command server starts a forkserver as it warms up, before any command: a server that
    only runs ``config`` or ``ps`` must create no cgroup, not even the spares' parent."""
    from composer.backends.native.runtime.spawn import Forkserver

    if cgroups.detect().mode not in ("v1", "hybrid"):
        pytest.skip("spare monitors need cgroup v1 (a cgroup2 cgroup cannot be renamed)")
    store, record = image
    parent = f"composer-spare-test-{uuid.uuid4().hex[:8]}"
    rt = Runtime(store, run_root=session_root / "lazy-spare-run", cgroup_parent=parent)
    rt.forkserver = Forkserver(spare_parent=parent)
    rt.forkserver.start()
    b = Box(rt, record)
    layout = cgroups.detect()
    folders = [Path(m) / parent for m in [*layout.v1.values(), *([layout.unified] if layout.unified else [])]]
    try:
        time.sleep(1)
        assert [f for f in folders if f.exists()] == []
        assert b.run("true") == (0, "")  # a start under the parent: the spare is made after it
        wait_for_a_ready_spare(parent)
    finally:
        b.cleanup()
        rt.forkserver.close()
        deadline = time.monotonic() + 10
        while spare_cgroups(parent) and time.monotonic() < deadline:
            time.sleep(0.05)
        residue(rt)  # the parent's folders removed too


def test_a_spare_monitor_starts_a_container_with_its_own_limits(spare_box: Box) -> None:
    layout = cgroups.detect()
    if layout.mode not in ("v1", "hybrid"):
        pytest.skip("spare monitors need cgroup v1 (a cgroup2 cgroup cannot be renamed)")
    parent = spare_box.rt.cgroup_parent
    for limit in (24 << 20, 32 << 20):  # a second start takes the spare made after the first
        wait_for_a_ready_spare(parent)
        name = spare_box.create("echo pid $$; cat /proc/self/cgroup | wc -l; sleep 30", mem_limit=limit, pids_limit=9)
        spare_box.rt.start(spare_box.project, name)
        state = json.loads((spare_box.rt.run_dir(spare_box.project, name) / "state.json").read_text())
        paths = state["cgroup"]["paths"]
        container_id = str(spare_box.rt.config(spare_box.project, name)["id"])
        assert Path(paths["memory"]).name == container_id  # the spare's cgroup, renamed
        assert int(Path(paths["memory"], "memory.limit_in_bytes").read_text()) == limit
        assert Path(paths["pids"], "pids.max").read_text().strip() == "9"
        assert str(state["pid"]) in Path(paths["memory"], "cgroup.procs").read_text().split()
        if layout.unified:  # cgroup2 renames nothing: the spare's name tells who started it
            assert Path(paths["unified"]).name.startswith("spare-")
        deadline = time.monotonic() + 10
        while "pid 1" not in spare_box.rt.output(spare_box.project, name) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "pid 1" in spare_box.rt.output(spare_box.project, name)  # PID 1 of a pid namespace of its own
        spare_box.rt.remove(spare_box.project, name, force=True)
        assert not Path(paths["memory"]).exists()
        if layout.unified:
            assert not Path(paths["unified"]).exists()


def _attached_output(run_dir: Path, stdin: bytes, timeout: float = 20) -> bytes:
    """Connect to the container's attach socket (runtime/console.py), send ``stdin`` and its end,
    and read the output frames until the monitor closes the connection."""
    import socket

    from composer.backends.native.runtime import console

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(str(run_dir / console.SOCKET))
        if stdin:
            sock.sendall(console.frame(console.STDIN, stdin))
        sock.sendall(console.frame(console.STDIN_END))
        reader, output = console.FrameReader(), b""
        while data := sock.recv(65536):
            output += b"".join(payload for kind, payload in reader.feed(data)
                               if kind in (console.STDOUT, console.STDERR))
    finally:
        sock.close()
    return output


@pytest.mark.parametrize("tty", [False, True], ids=["stdin_open", "tty"])
def test_a_spare_monitor_starts_an_interactive_container(spare_box: Box, tty: bool) -> None:
    """``run``'s one-offs are interactive (-i is the default): the spare takes them too, and makes
    the stdin pipe or the terminal (of the container's own devpts) for that start alone. Docker's
    run -i gives the container a pipe as stdin (-t: a terminal), as a fresh monitor does here."""
    layout = cgroups.detect()
    if layout.mode not in ("v1", "hybrid"):
        pytest.skip("spare monitors need cgroup v1 (a cgroup2 cgroup cannot be renamed)")
    parent = spare_box.rt.cgroup_parent
    wait_for_a_ready_spare(parent)
    script = ("read line; echo got $line; if [ -t 0 ]; then echo stdin-tty; tty; else echo stdin-pipe; "
              "ls -l /proc/self/fd/0; fi; exit 3")
    name = spare_box.create(script, stdin_open=True, tty=tty)
    assert spare_box.rt.forkserver is not None
    assert spare_box.rt.forkserver.takes_spare(spare_box.rt.config(spare_box.project, name))
    spare_box.rt.start(spare_box.project, name)
    run_dir = spare_box.rt.run_dir(spare_box.project, name)
    state = json.loads((run_dir / "state.json").read_text())
    container_id = str(spare_box.rt.config(spare_box.project, name)["id"])
    assert Path(state["cgroup"]["paths"]["memory"]).name == container_id  # the spare's cgroup, renamed
    output = _attached_output(run_dir, b"hello\n").decode(errors="replace")
    # the monitor writes exit.json before it lets its clients go (and removes its socket): one let
    # go, or one that comes too late to connect, finds the exit code without waiting for the monitor
    assert json.loads((run_dir / "exit.json").read_text())["exit_code"] == 3
    assert "got hello" in output, output
    if tty:
        assert "stdin-tty" in output, output
        assert "/dev/pts/0" in output, output  # the container's own devpts
    else:
        assert "stdin-pipe" in output, output
        assert "pipe:" in output, output
    final = spare_box.rt.wait(spare_box.project, name, timeout=scaled(10))
    assert (final.status, final.exit_code) == ("exited", 3)
    assert (run_dir / "exit.json").is_file()
    assert not (run_dir / "attach.sock").exists()
    spare_box.rt.remove(spare_box.project, name, force=True)


def test_a_start_a_spare_cannot_take_runs_as_usual(spare_box: Box) -> None:
    assert spare_box.rt.forkserver is not None
    joined = {"cgroup": f"{spare_box.rt.cgroup_parent}/x", "pidns": "/proc/1/ns/pid"}
    elsewhere = {"cgroup": "somewhere-else/x"}
    assert spare_box.rt.forkserver.takes_spare({"cgroup": f"{spare_box.rt.cgroup_parent}/x"})
    assert not spare_box.rt.forkserver.takes_spare(joined)
    assert not spare_box.rt.forkserver.takes_spare(elsewhere)
    code, out = spare_box.run("echo hello", pid="host")  # the host's pid namespace: a fresh monitor
    assert (code, out.strip()) == (0, "hello")
