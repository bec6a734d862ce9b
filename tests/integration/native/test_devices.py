"""Device control: the host's devices stay out of reach of a container, on cgroup2 as on v1.

CAP_MKNOD is in Docker's default set, and image layers may ship device nodes (Docker keeps them):
what makes a node for the host's disk unusable is the device cgroup. Docker (runc) writes the
v1 ``devices.allow``/``devices.deny`` rules on a v1 host, and on cgroup2, which has no devices
controller, attaches a BPF_CGROUP_DEVICE program with the same rules to the container's cgroup.
The native backend does both wherever both hierarchies exist (this hybrid host included), so the
tests here prove the BPF path on its own: in a scratch cgroup2 directory where the v1 rules allow
everything, and in containers whose v1 rules are opened up from the host while they run.

Real kernels, cgroups and containers; root is needed (the native conftest fails under CI=true,
skips otherwise), and everything made is removed, pass or fail.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import cgroups, devices
from composer.backends.native.runtime.api import Runtime
from composer.events import ListSink
from composer.spec.models.service import ServiceVolume
from tests.integration.native.conftest import pusher, unavailable
from tests.integration.native.test_runtime import (  # noqa: F401 - fixtures
    Box,
    box,
    image,
    runtime,
    session_root,
    spare_box,
    wait_for_a_ready_spare,
)
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled
from tests.support import isolation
from tests.support import oci_images as oi

# Run inside the scratch cgroup: joins it, then tries each device access; prints {name: "ok" | errno name}.
PROBE = r"""
import errno, json, os, stat, sys
cgroup, folder, major, minor = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
    f.write(str(os.getpid()))
def attempt(call):
    try:
        call()
        return "ok"
    except OSError as exc:
        return errno.errorcode[exc.errno]
def opening(name, flags):
    return lambda: os.close(os.open(os.path.join(folder, name), flags | os.O_NONBLOCK))
print(json.dumps({
    "mknod_disk": attempt(lambda: os.mknod(os.path.join(folder, "disk-made"), stat.S_IFBLK | 0o600,
                                           os.makedev(major, minor))),
    "read_disk": attempt(opening("disk", os.O_RDONLY)),
    "read_null": attempt(opening("null", os.O_RDONLY)),
    "write_null": attempt(opening("null", os.O_WRONLY)),
    "read_fuse": attempt(opening("fuse", os.O_RDONLY)),
    "read_pts": attempt(opening("pts", os.O_RDWR)),
}))
"""


def host_disk() -> tuple[int, int]:
    try:
        return isolation.host_disk()
    except isolation.ProbeError as exc:
        unavailable(str(exc))
        raise AssertionError("unreachable") from exc


def unified_hierarchy() -> str:
    layout = cgroups.detect()
    if not layout.unified:
        unavailable("this host has no cgroup2 mount (the BPF device program needs one)")
        raise AssertionError("unreachable")
    return layout.unified


def remove_cgroup(path: Path) -> None:
    deadline = time.monotonic() + 5  # the probe has exited: the kernel may still be letting go of it
    while path.exists():
        try:
            path.rmdir()
        except OSError as exc:
            if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.fixture
def scratch_cgroup() -> Iterator[Path]:
    """A cgroup2 directory of the test's own (no v1 cgroup: the v1 devices rules there allow all)."""
    path = Path(unified_hierarchy()) / f"composer-devices-test-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    try:
        yield path
    finally:
        for child in path.iterdir():
            if child.is_dir():
                remove_cgroup(child)
        remove_cgroup(path)


@pytest.fixture
def nodes(tmp_path: Path) -> Path:
    """0666 device nodes, as a layer could ship them: the host's disk, null, fuse and a pty."""
    folder = tmp_path / "nodes"
    folder.mkdir()
    major, minor = host_disk()
    for name, kind, number in (("disk", stat.S_IFBLK, (major, minor)), ("null", stat.S_IFCHR, (1, 3)),
                               ("fuse", stat.S_IFCHR, (10, 229)), ("pts", stat.S_IFCHR, (136, 4000))):
        os.mknod(folder / name, kind | 0o666, os.makedev(*number))
    return folder


def probe(cgroup: Path, folder: Path) -> dict[str, str]:
    major, minor = host_disk()
    done = subprocess.run([sys.executable, "-c", PROBE, str(cgroup), str(folder), str(major), str(minor)],
                          capture_output=True, text=True, timeout=scaled(60), check=True)
    (folder / "disk-made").unlink(missing_ok=True)
    result: dict[str, str] = json.loads(done.stdout)
    return result


def test_the_device_program_alone_denies_what_dockers_rules_deny(scratch_cgroup: Path, nodes: Path) -> None:
    # Without a program the v1 root allows everything: the disk opens (so the verdicts below are
    # the program's, and the old code, which attached none, fails here).
    assert probe(scratch_cgroup, nodes)["read_disk"] == "ok"
    devices.attach(str(scratch_cgroup))
    assert len(devices.attached(str(scratch_cgroup))) == 1
    verdicts = probe(scratch_cgroup, nodes)
    # Docker's rules: mknod of any node is allowed, access to anything but the default devices is not
    assert verdicts["mknod_disk"] == "ok"
    assert verdicts["read_disk"] == "EPERM"
    assert verdicts["read_fuse"] == "EPERM"  # moby denies fuse (10:229) explicitly
    assert verdicts["read_null"] == verdicts["write_null"] == "ok"
    assert verdicts["read_pts"] != "EPERM"  # 136:* is allowed; this pty does not exist (another error)


def test_the_device_program_checks_every_access_asked(scratch_cgroup: Path, nodes: Path) -> None:
    read_only = scratch_cgroup / "read-only"
    read_only.mkdir()
    devices.attach(str(read_only), ["c 1:3 r"])
    verdicts = probe(read_only, nodes)
    assert (verdicts["read_null"], verdicts["write_null"]) == ("ok", "EPERM")
    assert verdicts["mknod_disk"] == verdicts["read_disk"] == "EPERM"
    everything = scratch_cgroup / "everything"
    everything.mkdir()
    devices.attach(str(everything), ["a"])
    verdicts = probe(everything, nodes)
    assert "EPERM" not in verdicts.values(), verdicts  # the pty may fail otherwise: it does not exist
    assert verdicts["read_disk"] == verdicts["mknod_disk"] == "ok"


def test_a_v2_hosts_container_cgroup_gets_the_device_program(nodes: Path) -> None:
    # cgroups.create as on a cgroup2-only host (Docker there: runc's program, the same verdicts)
    unified = Path(unified_hierarchy())
    parent = f"composer-devices-test-{uuid.uuid4().hex[:8]}"
    v2 = cgroups.Layout("v2", {}, str(unified))
    try:
        cgroup = cgroups.create(f"{parent}/c", cgroups.Limits(), v2)
        try:
            assert len(devices.attached(cgroup.paths["unified"])) == 1
            verdicts = probe(Path(cgroup.paths["unified"]), nodes)
            assert (verdicts["mknod_disk"], verdicts["read_disk"], verdicts["read_null"]) == ("ok", "EPERM", "ok")
        finally:
            cgroups.remove(cgroup)
        assert not Path(cgroup.paths["unified"]).exists()
        privileged = cgroups.create(f"{parent}/p", cgroups.Limits(all_devices=True), v2)
        try:
            assert devices.attached(privileged.paths["unified"]) == []
            assert probe(Path(privileged.paths["unified"]), nodes)["read_disk"] == "ok"
        finally:
            cgroups.remove(privileged)
    finally:
        remove_cgroup(unified / parent)


def test_bad_device_rules_are_one_line_errors() -> None:
    for rule in ("x 1:3 rwm", "c 1 rwm", "c 1:3 rwx", "c -1:3 r", "c 1:3"):
        with pytest.raises(devices.DeviceRuleError, match=r"^bad device rule [^\n]+$"):
            devices.program([rule])


def test_a_host_without_device_control_refuses_unprivileged_containers() -> None:
    # Docker cannot start a container without cgroups either; a privileged one needs no rules
    nowhere = cgroups.Layout("none", {}, None)
    with pytest.raises(OSError, match="no device control on this host") as caught:
        cgroups.create(f"composer-devices-test-{uuid.uuid4().hex[:8]}/c", cgroups.Limits(), nowhere)
    assert caught.value.errno == errno.ENOTSUP
    assert "\n" not in str(caught.value)
    privileged = cgroups.create("composer-devices-test/c", cgroups.Limits(all_devices=True), nowhere)
    assert privileged.paths == {}


def running_output(project: Box, name: str, marker: str) -> str:
    deadline = time.monotonic() + 15
    while marker not in (out := project.rt.output(project.project, name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker in out, out
    return out


def cgroup_paths(rt: Runtime, project: str, name: str) -> dict[str, str]:
    state = json.loads((rt.run_dir(project, name) / "state.json").read_text())
    paths: dict[str, str] = state["cgroup"]["paths"]
    return paths


def signal_mount(tmp_path: Path) -> ServiceVolume:
    """/signal in the container: the test creates ``go`` there once the v1 rules are opened up."""
    folder = tmp_path / f"signal-{uuid.uuid4().hex[:8]}"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)  # a non-root container user looks for go in it
    return ServiceVolume(type="bind", source=str(folder), target="/signal")


def opened_with_v1_wide_open(project: Box, name: str, mount: ServiceVolume) -> str:
    """Start ``name`` (its script from ``device_script``), and once it is running let its v1
    devices cgroup allow everything, as on a v2 host (no v1 rules): from then on only the BPF
    program stands between the container and the node. Its output once it tried the node."""
    project.rt.start(project.project, name)
    running_output(project, name, "ready")
    paths = cgroup_paths(project.rt, project.project, name)
    assert len(devices.attached(paths["unified"])) == 1
    if "devices" in paths:
        Path(paths["devices"], "devices.allow").write_text("a")
        assert Path(paths["devices"], "devices.list").read_text().strip() == "a *:* rwm"
    assert mount.source is not None
    Path(mount.source, "go").touch()
    return running_output(project, name, "null=")


def device_script(node: str, before: str = "", busybox: str = "") -> str:
    return (f"{before} echo ready; while [ ! -e /signal/go ]; do {busybox}sleep 0.05; done; "
            f"{busybox}head -c 1 {node} >/dev/null; echo read=$?; {busybox}head -c 1 /dev/null; echo null=$?; "
            f"{busybox}sleep 30")


def test_a_containers_cgroup2_directory_carries_the_device_program(box: Box, tmp_path: Path) -> None:  # noqa: F811
    unified_hierarchy()
    major, minor = host_disk()
    mount = signal_mount(tmp_path)
    name = box.create(device_script("/disk", f"mknod /disk b {major} {minor}; echo mknod=$?;"), volumes=(mount,))
    out = opened_with_v1_wide_open(box, name, mount)
    assert "mknod=0" in out  # as Docker: CAP_MKNOD, and "b *:* m"
    # Docker on a cgroup2 host: the same EPERM (runc's program); on this hybrid host Docker has the
    # v1 rules only, so the native backend is stricter here
    assert "read=0" not in out
    assert "Operation not permitted" in out
    assert "null=0" in out
    paths = cgroup_paths(box.rt, box.project, name)
    box.rt.remove(box.project, name, force=True)
    assert not Path(paths["unified"]).exists()


def test_privileged_containers_get_every_device(box: Box) -> None:  # noqa: F811
    unified_hierarchy()
    major, minor = host_disk()
    # Docker: privileged containers get "a *:* rwm" (and runc attaches an allow-all program on v2)
    name = box.create(f"mknod /disk b {major} {minor} && head -c 1 /disk >/dev/null; echo read=$?; sleep 30",
                      privileged=True)
    box.rt.start(box.project, name)
    assert "read=0" in running_output(box, name, "read=")
    assert devices.attached(cgroup_paths(box.rt, box.project, name)["unified"]) == []
    box.rt.remove(box.project, name, force=True)


@pytest.fixture(scope="module")
def device_image(local_registry: LocalRegistry, image: tuple[ImageStore, ImageRecord]) -> ImageRecord:  # noqa: F811
    """busybox plus a layer with a 0666 node for the host's disk (/disk), pushed to the local
    registry and pulled into the module's store."""
    store, _ = image
    major, minor = host_disk()
    nodes = oi.tar_bytes([oi.blockdev("disk", major, minor, mode=0o666)])
    reference = f"{local_registry.host}/composer-test/devices-{uuid.uuid4().hex[:8]}:latest"
    oi.push_image(pusher(local_registry.host), reference, oi.make_image([oi.busybox_layer(), nodes]))
    record: ImageRecord = anyio.run(pull, reference, store, ListSink())
    return record


def test_a_device_node_from_a_layer_is_unusable_without_an_allow_rule(runtime: Runtime,  # noqa: F811
                                                                     device_image: ImageRecord,
                                                                     tmp_path: Path) -> None:
    unified_hierarchy()
    layer_box = Box(runtime, device_image)
    try:
        # Docker: EPERM, whoever opens it (the node stays, as Docker keeps device nodes from layers)
        for settings in ({"user": "65534:65534", "cap_drop": ("ALL",)}, {}):
            mount = signal_mount(tmp_path)
            name = layer_box.create(device_script("/disk", busybox="busybox "), volumes=(mount,), **settings)
            out = opened_with_v1_wide_open(layer_box, name, mount)
            assert "read=0" not in out, (settings, out)
            assert "Operation not permitted" in out, (settings, out)
            assert "null=0" in out, (settings, out)
        # Docker: a privileged container can open it
        name = layer_box.create("busybox head -c 1 /disk >/dev/null; echo read=$?", privileged=True)
        layer_box.rt.start(layer_box.project, name)
        assert "read=0" in running_output(layer_box, name, "read=")
    finally:
        layer_box.cleanup()


def test_a_spare_monitors_start_gets_the_device_program(spare_box: Box, tmp_path: Path) -> None:  # noqa: F811
    layout = cgroups.detect()
    if layout.mode != "hybrid":
        pytest.skip("spare monitors with a cgroup2 directory need a hybrid host")
    parent = spare_box.rt.cgroup_parent
    assert spare_box.rt.forkserver is not None
    # the spare's cgroup carries the default rules: a privileged container does not take it
    assert not spare_box.rt.forkserver.takes_spare({"cgroup": f"{parent}/x", "privileged": True})
    major, minor = host_disk()
    wait_for_a_ready_spare(parent)
    mount = signal_mount(tmp_path)
    name = spare_box.create(device_script("/disk", f"mknod /disk b {major} {minor};"), volumes=(mount,))
    out = opened_with_v1_wide_open(spare_box, name, mount)
    paths = cgroup_paths(spare_box.rt, spare_box.project, name)
    assert Path(paths["unified"]).name.startswith("spare-")  # the spare's own cgroup2 directory
    assert "read=0" not in out
    assert "Operation not permitted" in out
    spare_box.rt.remove(spare_box.project, name, force=True)
    assert not Path(paths["unified"]).exists()


def test_cgroup_files_are_read_only_in_a_container(box: Box) -> None:  # noqa: F811
    # Docker mounts the cgroup filesystem read-only at /sys/fs/cgroup (a private cgroup namespace);
    # the native backend mounts none there, under a read-only /sys: nothing of it to write either.
    code, out = box.run("for f in $(find /sys/fs/cgroup -type f 2>/dev/null); do "
                        "  (echo 1 > $f) 2>/dev/null && echo wrote=$f; done; "
                        "mkdir /sys/fs/cgroup/probe 2>&1; echo mkdir=$?; "
                        "mount -t cgroup2 none /mnt 2>&1; echo mount2=$?; "
                        "mount -t cgroup -o devices none /mnt 2>&1; echo mount1=$?; "
                        "cat /proc/self/cgroup | grep -c . ")
    assert code == 0, out
    assert "wrote=" not in out
    assert "mkdir=0" not in out
    assert "mount2=0" not in out
    assert "mount1=0" not in out
