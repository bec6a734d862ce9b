"""Mounts of real native containers against a hostile neighbour, and the paths Docker hides.

* A container sharing a volume swaps a mount target of another container for a symlink while
  that one starts (CVE-2021-30465's race, with renameat2(RENAME_EXCHANGE) in a tight loop): the
  mount lands inside the container, never on a host path.
* Filling a new volume from the image copies symlinks as symlinks and never writes through one,
  not even one that a container sharing the volume plants while the fill runs.
* Masked paths, /proc/sys and /sys as Docker sets them up, default and privileged, and read-only
  binds that are read-only down to their submounts: the same busybox probe runs under dockerd
  (docker-py) and natively, and the verdicts are compared (stricter than Docker is allowed).

Fixtures come from test_runtime (the module store, runtime and its residue check, ``box``).
Root, dockerd and gcc are needed (under CI=true their absence fails the tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import linux as L
from composer.backends.native.runtime import volumes
from composer.backends.native.runtime.config import masked_paths
from composer.errors import BackendError
from composer.events import ListSink
from composer.spec.models.service import BindOptions, ServiceConfig, ServiceVolume
from tests.integration.native import test_runtime as runtime_tests
from tests.integration.native.conftest import pusher
from tests.integration.native.test_runtime import Box
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled
from tests.support import oci_images as oi

# A: swaps /data/s<i> (a directory) and /data/l<i> (a symlink to argv[2]) for i < argv[1], round
# the clock, atomically, as the CVE-2021-30465 exploit does.
SWAP_C = r"""
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    char dirs[16][32], links[16][32];
    int n = argc == 3 ? atoi(argv[1]) : 0;
    if (n < 1 || n > 16) return 2;
    for (int i = 0; i < n; i++) {
        snprintf(dirs[i], sizeof dirs[i], "/data/s%d", i);
        snprintf(links[i], sizeof links[i], "/data/l%d", i);
        mkdir(dirs[i], 0755);
        symlink(argv[2], links[i]);
    }
    for (;;)
        for (int i = 0; i < n; i++) renameat2(AT_FDCWD, dirs[i], AT_FDCWD, links[i], RENAME_EXCHANGE);
}
"""
# A: plants a symlink (argv[1] -> argv[2]) and takes it away, in phases of ~0.3 ms (so that a fill
# may find the volume empty, then the symlink in it a moment later).
PLANT_C = r"""
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc != 3) return 2;
    for (;;) { symlink(argv[2], argv[1]); usleep(300); unlink(argv[1]); usleep(300); }
}
"""
# test_runtime's fixtures: its module store and busybox image, the Runtime with its residue check, ``box``
session_root, image = runtime_tests.session_root, runtime_tests.image
runtime, box = runtime_tests.runtime, runtime_tests.box
RACE_TARGETS = 8  # tmpfs mounts at /data/s0..s7 in each start of B: eight races per start
RACE_ATTEMPTS = 30
FILL_ATTEMPTS = 20


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the static ``swap`` and ``plant`` programs (bound at /probe)."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the race programs")
    folder = tmp_path_factory.mktemp("mount-probes")
    for name, source in (("swap", SWAP_C), ("plant", PLANT_C)):
        (folder / f"{name}.c").write_text(source)
        subprocess.run(["gcc", "-static", "-O1", "-o", str(folder / name), str(folder / f"{name}.c")], check=True)
    return folder


@pytest.fixture
def volume(box: Box) -> Iterator[Callable[[], Path]]:
    """Makes fresh volumes in the module store (returns the _data directory); removed after the
    test, once the test's containers are."""
    names: list[str] = []
    store_root = box.rt.store.root

    def make() -> Path:
        name = f"mounts-{uuid.uuid4().hex[:12]}"
        names.append(name)
        volumes.create(store_root, name, {})
        return volumes.data_dir(store_root, name)

    try:
        yield make
    finally:
        box.cleanup()
        for name in names:
            volumes.remove(store_root, name)


def start_volume_user(box: Box, record: ImageRecord, volume_dir: Path, target: str, command: tuple[str, ...],
                      *extra: ServiceVolume, **settings: Any) -> str:
    """Create and start a container of ``record`` with the volume at ``target``; its name."""
    box.count += 1
    name = f"{box.project}-c-{box.count}"
    mounts = (ServiceVolume(type="volume", source="v", target=target), *extra)
    service = ServiceConfig(name="c", image=record.reference, command=command, volumes=mounts, **settings)
    box.rt.create(box.project, name, service, record, volume_paths={target: str(volume_dir)})
    box.rt.start(box.project, name)
    return name


def host_mounts_at(paths: tuple[str, ...]) -> list[str]:
    """Lines of the host's mountinfo whose mount point is one of ``paths``."""
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if line.split()[4] in paths]


def wait_for(condition: Any, what: str) -> None:
    deadline = time.monotonic() + 20
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


# --- finding 11: a sharing container cannot redirect mounts or the volume fill -------------------


def test_a_mount_target_swapped_for_a_symlink_stays_inside_the_container(
        box: Box, volume: Callable[[], Path], probes: Path, tmp_path: Path) -> None:
    """Container A shares volume V (at /data) with B, where B also has tmpfs mounts at /data/s<i>
    and binds the host directory X at /hostview after them. A swaps each /data/s<i> with a symlink
    to X's host path while B starts, over and over. Resolved by name, a tmpfs of B's lands on the
    host's X (B's /hostview then shows that empty tmpfs, not X's marker: the old code did in most
    runs of this test); by fd with RESOLVE_IN_ROOT it lands at X inside B's root filesystem.
    Docker (runc >= 1.0.0-rc95) keeps it inside too."""
    shared = volume()
    host_dir = tmp_path / "x"
    host_dir.mkdir()
    (host_dir / "marker").write_text("host-marker\n")
    before = host_mounts_at(("/", str(host_dir)))
    probe = ServiceVolume(type="bind", source=str(probes), target="/probe", read_only=True)
    attacker = start_volume_user(box, box.record, shared, "/data", ("/probe/swap", str(RACE_TARGETS), str(host_dir)),
                                 probe)
    last = RACE_TARGETS - 1
    wait_for(lambda: (shared / f"l{last}").is_symlink() or (shared / f"s{last}").is_symlink(), "the swapping")
    extra = (*(ServiceVolume(type="tmpfs", target=f"/data/s{i}") for i in range(RACE_TARGETS)),
             ServiceVolume(type="bind", source=str(host_dir), target="/hostview"))
    outcomes: list[str] = []
    for _ in range(RACE_ATTEMPTS):
        try:
            name = start_volume_user(box, box.record, shared, "/data",
                                     ("sh", "-c", "cat /hostview/marker || echo escaped"), *extra)
        except BackendError as exc:  # allowed: a one-line error naming the target
            outcomes.append(str(exc))
            continue
        state = box.rt.wait(box.project, name, timeout=scaled(30))
        output = box.rt.output(box.project, name)
        box.rt.remove(box.project, name, force=True)
        assert state.exit_code == 0, output
        assert "escaped" not in output, "a mount target swapped for a symlink led B's tmpfs onto the host's X"
        assert output == "host-marker\n", output
        outcomes.append("inside")
    box.rt.remove(box.project, attacker, force=True)
    assert (host_dir / "marker").read_text() == "host-marker\n"
    assert host_mounts_at(("/", str(host_dir))) == before  # nothing mounted on the host's / or X
    refusals = [outcome for outcome in outcomes if outcome != "inside"]
    assert all("\n" not in text and "cannot mount on /data/s" in text for text in refusals), refusals
    assert "inside" in outcomes, outcomes


@pytest.fixture(scope="module")
def fill_image(local_registry: LocalRegistry, image: tuple[ImageStore, ImageRecord],
               session_root: Path) -> ImageRecord:
    """busybox plus /vol: a file with its own owner and mode, a symlink to /etc, a directory with a
    hard link to the file, and a FIFO (what a new volume at /vol gets)."""
    store, _ = image
    content = oi.tar_bytes([oi.directory("vol", mode=0o750, uid=42, gid=43),
                            oi.file("vol/f", b"from-the-image\n", mode=0o640, uid=1234, gid=5678),
                            oi.symlink("vol/etc", "/etc"),
                            oi.directory("vol/d", mode=0o711),
                            oi.hardlink("vol/d/h", "vol/f"),
                            oi.fifo("vol/pipe")])
    reference = local_registry.reference(f"composer-test/fill-{uuid.uuid4().hex[:8]}")
    oi.push_image(pusher(local_registry.host), reference, oi.make_image([oi.busybox_layer(), content]))
    old = os.environ.get("COMPOSER_REGISTRY_CONFIG")
    os.environ["COMPOSER_REGISTRY_CONFIG"] = str(session_root / "no-registries.json")
    try:
        return anyio.run(pull, reference, store, ListSink())
    finally:
        if old is None:
            os.environ.pop("COMPOSER_REGISTRY_CONFIG", None)
        else:
            os.environ["COMPOSER_REGISTRY_CONFIG"] = old


def test_filling_a_volume_copies_symlinks_as_symlinks(box: Box, volume: Callable[[], Path],
                                                      fill_image: ImageRecord) -> None:
    """Docker's copy-up (cp -a before): owners, modes, hard links, FIFOs and symlinks as they are
    in the image; the symlink to /etc is copied as one and nothing is written through it."""
    data = volume()
    etc_before = sorted(os.listdir("/etc"))
    name = start_volume_user(box, fill_image, data, "/vol", ("true",))
    assert box.rt.wait(box.project, name, timeout=scaled(30)).exit_code == 0, box.rt.output(box.project, name)
    assert os.readlink(data / "etc") == "/etc"
    assert (data / "f").read_bytes() == b"from-the-image\n"
    found = (data / "f").lstat()
    assert (found.st_uid, found.st_gid, found.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert (data / "d" / "h").lstat().st_ino == found.st_ino
    assert (data / "d").lstat().st_mode & 0o7777 == 0o711
    assert (data / "pipe").is_fifo()
    top = data.lstat()
    assert (top.st_uid, top.st_gid, top.st_mode & 0o7777) == (42, 43, 0o750)
    assert sorted(os.listdir("/etc")) == etc_before


def test_filling_a_volume_never_writes_through_a_symlink_a_sharing_container_plants(
        box: Box, volume: Callable[[], Path], fill_image: ImageRecord, probes: Path, tmp_path: Path) -> None:
    """Container A shares a new volume and plants ``f -> <host file>`` in it, again and again,
    while B starts and fills the volume from its image (which has /vol/f). ``cp -a`` followed a
    symlink it found at the destination and wrote the image's file over the host's; the fd walk
    creates with O_EXCL|O_NOFOLLOW and leaves a planted entry alone."""
    victim = tmp_path / "victim"
    victim.write_text("host-file\n")
    probe = ServiceVolume(type="bind", source=str(probes), target="/probe", read_only=True)
    for _ in range(FILL_ATTEMPTS):
        data = volume()
        attacker = start_volume_user(box, box.record, data, "/data", ("/probe/plant", "/data/f", str(victim)), probe)
        name = start_volume_user(box, fill_image, data, "/vol", ("true",))
        state = box.rt.wait(box.project, name, timeout=scaled(30))
        box.rt.remove(box.project, attacker, force=True)
        assert state.exit_code == 0, box.rt.output(box.project, name)
        assert victim.read_text() == "host-file\n", "the volume fill wrote through a planted symlink onto the host"
        for entry in data.iterdir():  # what was copied is in the volume, symlinks as symlinks
            assert entry.name in ("f", "etc", "d", "pipe"), entry
        if (data / "etc").is_symlink():
            assert os.readlink(data / "etc") == "/etc"
        box.rt.remove(box.project, name, force=True)


# --- finding 13 and the probe's checks: masked paths, /proc/sys and /sys, recursive read-only binds ----

PROBE_SH = r"""
for p in $PATHS; do
    if [ ! -e "$p" ]; then echo "$p absent"
    elif [ -d "$p" ]; then [ -z "$(ls -A "$p" 2>/dev/null)" ] && echo "$p masked" || echo "$p visible"
    else [ "$(head -c 1 "$p" 2>/dev/null | wc -c)" = 0 ] && echo "$p masked" || echo "$p visible"; fi
done
(echo composer-probe > /proc/sys/kernel/domainname) 2>/dev/null && echo "/proc/sys rw" || echo "/proc/sys ro"
awk '$5 == "/sys" { split($6, o, ","); print "/sys " o[1] }' /proc/self/mountinfo
"""


def verdicts(output: str) -> dict[str, str]:
    return dict(line.rsplit(" ", 1) for line in output.strip().splitlines())


def docker_run(api: Any, image_name: str, script: str, environment: dict[str, str] | None = None,
               **host_config: Any) -> str:
    """Run ``sh -c script`` under dockerd; its output."""
    container = api.create_container(image_name, command=["sh", "-c", script], environment=environment or {},
                                     host_config=api.create_host_config(**host_config))
    try:
        api.start(container)
        api.wait(container, timeout=scaled(60))
        return str(api.logs(container).decode())
    finally:
        api.remove_container(container, force=True)


def host_verdict(path: str) -> str:
    """PROBE_SH's verdict on ``path`` as the host sees it (what a privileged container sees)."""
    if not os.path.exists(path):
        return "absent"
    try:
        if os.path.isdir(path):
            return "visible" if os.listdir(path) else "masked"
        with open(path, "rb") as f:
            return "visible" if f.read(1) else "masked"
    except OSError:
        return "masked"


def docker_probe(api: Any, image_name: str, environment: dict[str, str], privileged: bool) -> dict[str, str] | None:
    """PROBE_SH's verdicts under dockerd; None when dockerd cannot run a privileged container on
    this host (its bounding set lacks a capability that Docker grants a privileged one)."""
    import docker.errors

    try:
        return verdicts(docker_run(api, image_name, PROBE_SH, environment, privileged=privileged))
    except docker.errors.APIError as exc:
        if privileged and "apply caps" in str(exc):
            return None
        raise


@pytest.mark.parametrize("privileged", [False, True])
def test_masked_paths_proc_sys_and_sys_are_at_least_as_strict_as_dockers(
        box: Box, docker_api: Any, busybox_image: str, privileged: bool) -> None:
    """Each of current Docker's masked paths (moby oci/defaults.go, thermal_throttle directories
    included) reads empty in a default container, /proc/sys and /sys are read-only; privileged,
    nothing is masked and both are writable, as Docker. The local dockerd may be older and mask
    less (20.10 masks neither /proc/interrupts nor the thermal_throttle directories): a path it
    shows and we mask is stricter, allowed; one it masks and we show fails. Where dockerd cannot
    start a privileged container here, Docker's privileged view is the host's own (no masks)."""
    paths = masked_paths()
    environment = {"PATHS": " ".join(paths)}
    code, out = box.run(PROBE_SH, environment=environment, privileged=privileged)
    assert code == 0, out
    native = verdicts(out)
    expected = "rw" if privileged else "ro"
    docker = docker_probe(docker_api, busybox_image, environment, privileged)
    if docker is None:
        docker = {**{path: host_verdict(path) for path in paths}, "/proc/sys": "rw", "/sys": "rw"}
    assert set(native) == set(docker) == {*paths, "/proc/sys", "/sys"}, (native, docker)
    for path in paths:
        if privileged:
            assert native[path] == docker[path], (path, native[path], docker[path])
        else:
            assert native[path] in ("masked", "absent"), (path, native[path])
            assert docker[path] != "masked" or native[path] == "masked", (path, "looser than Docker")
    assert native["/proc/sys"] == docker["/proc/sys"] == expected, (native, docker)
    assert native["/sys"] == docker["/sys"] == expected, (native, docker)


@pytest.fixture
def dir_with_submount(tmp_path: Path) -> Iterator[Path]:
    """A host directory with a tmpfs mounted at its ``sub``; unmounted after the test."""
    top = tmp_path / "top"
    (top / "sub").mkdir(parents=True)
    L.mount("tmpfs", str(top / "sub"), "tmpfs", 0, "size=1m")
    try:
        yield top
    finally:
        with contextlib.suppress(OSError):
            L.umount2(str(top / "sub"), L.MNT_DETACH)


def test_a_read_only_bind_is_read_only_down_to_its_submounts(
        box: Box, docker_api: Any, busybox_image: str, dir_with_submount: Path) -> None:
    """``:ro`` of a host directory that has a tmpfs submount: writing into the submount fails with
    EROFS (mount_setattr AT_RECURSIVE), as with Docker 25 and later. Docker 20.10 (the local
    dockerd, if so) leaves the submount writable: stricter, allowed; never looser."""
    script = "echo x > /ro/top; echo top=$?; echo x > /ro/sub/f; echo sub=$?; rm -f /ro/sub/f"
    bind = ServiceVolume(type="bind", source=str(dir_with_submount), target="/ro", read_only=True)
    code, out = box.run(script, volumes=(bind,))
    assert code == 0, out
    assert "top=1" in out, out
    assert "sub=1" in out, out
    assert "Read-only file system" in out, out
    assert not (dir_with_submount / "sub" / "f").exists()
    docker = docker_run(docker_api, busybox_image, script,
                        binds={str(dir_with_submount): {"bind": "/ro", "mode": "ro"}})
    assert "top=1" in docker, docker  # never looser: whatever Docker refuses, we refuse
    for key in ("top", "sub"):
        if f"{key}=1" in docker:
            assert f"{key}=1" in out


def test_bind_recursive_writable_and_disabled_as_compose_asks(box: Box, dir_with_submount: Path) -> None:
    """Compose's ``bind.recursive`` (Docker API 1.44): ``writable`` leaves the submounts of a :ro
    bind writable (ReadOnlyNonRecursive), ``disabled`` does not bind them at all (NonRecursive)."""
    script = "echo x > /ro/top; echo top=$?; echo x > /ro/sub/f; echo sub=$?; rm -f /ro/sub/f"
    writable = ServiceVolume(type="bind", source=str(dir_with_submount), target="/ro", read_only=True,
                             bind=BindOptions(recursive="writable"))
    code, out = box.run(script, volumes=(writable,))
    assert code == 0, out
    assert "top=1" in out, out
    assert "sub=0" in out, out
    disabled = ServiceVolume(type="bind", source=str(dir_with_submount), target="/ro", read_only=True,
                             bind=BindOptions(recursive="disabled"))
    code, out = box.run("grep -c ' /ro/sub ' /proc/self/mountinfo", volumes=(disabled,))
    assert out.strip() == "0", out


@pytest.fixture
def shared_dir(tmp_path: Path) -> Iterator[Path]:
    """A host tmpfs made a shared mount (a peer group of its own); unmounted after the test."""
    folder = tmp_path / "shared"
    folder.mkdir()
    L.mount("tmpfs", str(folder), "tmpfs", 0, "size=1m")
    try:
        L.mount(None, str(folder), None, L.MS_SHARED)
        yield folder
    finally:
        with contextlib.suppress(OSError):
            L.umount2(str(folder), L.MNT_DETACH)


def test_bind_propagation_applies_to_the_attached_bind(box: Box, shared_dir: Path) -> None:
    """``bind.propagation`` is set on the bind once attached (through the open_tree fd, not by its
    path again) and kept after pivot_root (only the old root is made a slave, as runc does):
    rshared makes it a peer group's, rslave a slave of the host's, and the default is rprivate,
    as Docker's."""
    script = ("awk '$5 ~ /^\\/p[0-9]$/ { print $5, ($7 ~ /shared:/ ? \"shared\" : $7 ~ /master:/ ? \"slave\" "
              ": \"private\") }' /proc/self/mountinfo")
    binds = tuple(ServiceVolume(type="bind", source=str(shared_dir), target=f"/p{i}",
                                bind=BindOptions(propagation=value) if value else None)
                  for i, value in enumerate(("rshared", "rslave", None)))
    code, out = box.run(script, volumes=binds)
    assert code == 0, out
    assert sorted(out.splitlines()) == ["/p0 shared", "/p1 slave", "/p2 private"], out


def test_a_host_file_may_replace_a_proc_file_as_lxcfs_does(box: Box, tmp_path: Path) -> None:
    """runc lets a bind of a file replace /proc/meminfo, /proc/uptime... (lxcfs); a directory
    there, or any other /proc target, is refused (next test)."""
    uptime = tmp_path / "uptime"
    uptime.write_text("12345.67 890.12\n")
    bind = ServiceVolume(type="bind", source=str(uptime), target="/proc/uptime", read_only=True)
    code, out = box.run("cat /proc/uptime", volumes=(bind,))
    assert (code, out) == (0, "12345.67 890.12\n")
    name = box.create("true", volumes=(ServiceVolume(type="bind", source=str(tmp_path), target="/proc/uptime"),))
    with pytest.raises(BackendError, match="cannot mount on /proc/uptime"):
        box.rt.start(box.project, name)


def test_mount_targets_in_proc_or_the_root_are_refused_in_one_line(box: Box, tmp_path: Path) -> None:
    """runc refuses a mount inside /proc (it would hide or replace what is masked); a target that
    resolves to the root would hide the image. One-line errors."""
    for target in ("/proc/sys/kernel", "/"):
        bind = ServiceVolume(type="bind", source=str(tmp_path), target=target)
        name = box.create("true", volumes=(bind,))
        with pytest.raises(BackendError) as caught:
            box.rt.start(box.project, name)
        assert "\n" not in str(caught.value)
        assert "Errno" not in str(caught.value)
        assert f"cannot mount on {target}: " in str(caught.value), caught.value


def test_a_symlink_to_the_root_planted_in_a_shared_volume_is_refused(box: Box, volume: Callable[[], Path]) -> None:
    """The brief's case without the race: a container left /data/sub -> / in the shared volume. A
    tmpfs at /data/sub of the next container would cover its whole root: refused in one line,
    and nothing is mounted on the host's /."""
    data = volume()
    (data / "sub").symlink_to("/")
    before = host_mounts_at(("/",))
    with pytest.raises(BackendError) as caught:
        start_volume_user(box, box.record, data, "/data", ("true",), ServiceVolume(type="tmpfs", target="/data/sub"))
    assert str(caught.value).endswith("cannot mount on /data/sub: /data/sub resolves to the container's root")
    assert host_mounts_at(("/",)) == before
