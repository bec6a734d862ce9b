"""Hostile images (issue 15): each is built here, pushed to the local registry, pulled with
``composer pull`` and run where it pulls, through the CLI on the native backend.

Every attack ends in a one-line error or a sandboxed success, and then: nothing outside the store
changed (a sentinel folder outside, compared entry by entry, the host paths the attack aims at),
``down`` and ``image rm`` succeed, and the store's garbage collection removes the image's layers
and leaves nothing in ``incoming/`` or ``tmp/``. The fixtures are test_lifecycle's (a module store,
a tmp run root, the residue check after the module).

Docker for comparison: dockerd refuses ``..`` and absolute names and links out of the layer
(breakout errors) and drops ``trusted.overlay.*`` xattrs too; it has no decompression budget, and
its Go tar reader refuses non-numeric PAX times. A FIFO at /etc/passwd makes ``docker run`` hang
in runc's user lookup (it opens the file blocking): we are stricter.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.native.image.store import ImageStore
from composer.backends.native.runtime.spawn import SpawnError, spawn
from tests.integration.native import test_lifecycle
from tests.integration.native.conftest import pusher
from tests.integration.native.test_lifecycle import Project, one_line
from tests.integration.registry import LocalRegistry
from tests.support import oci_images as oi

env = test_lifecycle.env
project = test_lifecycle.project

HOST_TARGETS = ("/etc/shadow", "/etc/passwd", "/etc/hosts")


class Host:
    """What an attack could touch on the host: the sentinel folder (every entry: kind, mode,
    owner, size, mtime, content hash), the host files the attacks aim at, and the marker names
    they try to create at /, /tmp and /etc."""

    def __init__(self, sentinel: Path, marker: str) -> None:
        self.sentinel = sentinel
        self.marker = marker
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, tuple[object, ...]]:
        found: dict[str, tuple[object, ...]] = {}
        for path in [self.sentinel, *sorted(self.sentinel.rglob("*")), *map(Path, HOST_TARGETS)]:
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
            found[str(path)] = (info.st_mode, info.st_uid, info.st_gid, info.st_size, info.st_mtime_ns, digest)
        return found

    def unchanged(self) -> None:
        assert self.snapshot() == self.before
        for folder in ("/", "/tmp", "/etc", str(self.sentinel)):
            assert not os.path.lexists(os.path.join(folder, self.marker)), f"{folder}/{self.marker} was created"


class Attack:
    """One hostile image in the local registry, pulled and run by ``project``."""

    def __init__(self, project: Project, registry: LocalRegistry, tmp_path: Path) -> None:
        self.project = project
        self.registry = registry
        self.marker = f"pwned-{uuid.uuid4().hex[:8]}"
        self.sentinel = tmp_path / "sentinel"
        self.sentinel.mkdir(parents=True)
        (self.sentinel / "victim").write_text("original")
        (self.sentinel / "folder").mkdir()
        self.host = Host(self.sentinel, self.marker)
        self.reference = ""
        self.pulled = False

    def push(self, *layers: bytes) -> str:
        """The busybox layer then ``layers``, as an image in the local registry."""
        self.reference = self.registry.reference(f"composer-hostile/{uuid.uuid4().hex[:10]}", "1")
        oi.push_image(pusher(self.registry.host), self.reference, oi.make_image([oi.busybox_layer(), *layers]))
        return self.reference

    def pull(self) -> subprocess.CompletedProcess[str]:
        self.project.folder.joinpath("compose.yaml").write_text(textwrap.dedent(f"""\
            services:
              box:
                image: {self.reference}
                command: ["sh", "-c", "true"]
            """))
        result = self.project.run("pull", check=False, timeout=300)
        self.pulled = result.returncode == 0
        return result

    def refused(self, *expected: str) -> str:
        """Pull, expecting a one-line error containing each of ``expected``."""
        result = self.pull()
        assert result.returncode != 0, result.stdout
        line = one_line(result)
        for text in expected:
            assert text in line, line
        return line

    def run(self, script: str) -> str:
        """Pull (it must succeed) and run ``script`` in the image; its output."""
        result = self.pull()
        assert result.returncode == 0, result.stderr
        done = self.project.run("run", "--rm", "box", "sh", "-c", script, check=False, timeout=120)
        assert done.returncode == 0, (done.stdout, done.stderr)
        return done.stdout

    def finish(self) -> None:
        """Nothing outside changed; down, image rm and the store's gc succeed and leave nothing."""
        self.host.unchanged()
        down = self.project.run("down", "-v", "-t", "1", check=False)
        assert down.returncode == 0, down.stderr
        if self.pulled:
            removed = self.project.run("image", "rm", self.reference, check=False)
            assert removed.returncode == 0, removed.stderr
        store = ImageStore(self.project.env.environ["COMPOSER_ROOT"])
        store.gc()
        assert sorted(p.name for p in (store.root / "incoming").iterdir()) == []
        assert sorted(p.name for p in (store.root / "tmp").iterdir()) == []
        assert self.reference not in [r.reference for r in store.images()]
        self.host.unchanged()


@pytest.fixture
def attack(project: Project, local_registry: LocalRegistry, tmp_path: Path) -> Iterator[Attack]:
    hostile = Attack(project, local_registry, tmp_path / "attack")
    yield hostile
    hostile.finish()


def test_path_traversal_is_refused(attack: Attack) -> None:
    for name in (f"../../../../../../tmp/{attack.marker}", f"/tmp/{attack.marker}",
                 f"etc/../../../{attack.marker}"):
        attack.push(oi.tar_bytes([oi.directory("etc"), oi.file(name, b"x")]))
        attack.refused("refused entry", "'..' in path" if ".." in name else "absolute path")


def test_symlink_escapes_in_one_layer_are_refused(attack: Attack) -> None:
    for target in ("/", str(attack.sentinel), "../../../../../../../../"):
        attack.push(oi.tar_bytes([oi.symlink("escape", target), oi.file(f"escape/tmp/{attack.marker}", b"x"),
                                  oi.file(f"escape/{attack.marker}", b"x")]))
        attack.refused("path prefix 'escape' is a symlink")


def test_symlink_escape_across_layers_stays_in_the_container(attack: Attack) -> None:
    # The lower layer's symlink is not in the upper layer's directory: the upper layer makes a
    # directory of that name, in its own directory. In the container the directory wins.
    attack.push(oi.tar_bytes([oi.symlink("escape", str(attack.sentinel)), oi.symlink("root", "/")]),
                oi.tar_bytes([oi.file("escape/victim", b"pwned"), oi.file(f"root/tmp/{attack.marker}", b"x")]))
    output = attack.run(f"cat /escape/victim; echo; ls /root/tmp/{attack.marker}; ls /tmp")
    assert output.split() == ["pwned", f"/root/tmp/{attack.marker}"]
    assert (attack.sentinel / "victim").read_text() == "original"


def test_hardlink_escapes_are_refused(attack: Attack) -> None:
    for members, why in (
        ([oi.hardlink("shadow", "/etc/shadow")], "absolute path"),
        ([oi.hardlink("shadow", "../../../../../../etc/shadow")], "'..' in path"),
        ([oi.symlink("etc", "/etc"), oi.hardlink("shadow", "etc/shadow")], "hardlink target prefix 'etc'"),
        ([oi.hardlink("victim", str(attack.sentinel / "victim").lstrip("/"))], "is not in this layer"),
    ):
        attack.push(oi.tar_bytes(members))
        attack.refused("refused entry", why)


def test_forged_overlay_xattrs_are_not_applied(attack: Attack) -> None:
    # An opaque marker would hide the lower layer's /etc; a redirect would point the directory
    # elsewhere. Both are dropped: the lower files stay visible, the layer holds no such xattr.
    opaque_etc = oi.directory("etc")
    opaque_etc.info.pax_headers = {"SCHILY.xattr.trusted.overlay.opaque": "y",
                                   "LIBARCHIVE.xattr.trusted.overlay.redirect": "L2Jpbg"}  # base64 of /bin
    forged = oi.tar_bytes([opaque_etc, oi.file("etc/added", b"upper", xattrs={
        "trusted.overlay.opaque": b"y", "trusted.overlay.redirect": b"/bin", "user.overlay.opaque": b"y"})])
    lower = oi.tar_bytes([oi.directory("etc"), oi.file("etc/lower", b"lower")])
    attack.push(lower, forged)
    assert attack.run("cat /etc/lower; echo; cat /etc/added").split() == ["lower", "upper"]
    store = ImageStore(attack.project.env.environ["COMPOSER_ROOT"])
    record = store.get(attack.reference)
    assert record is not None
    for layer in store.layers(record):
        for path in [layer.path, *layer.path.rglob("*")]:
            names = os.listxattr(path, follow_symlinks=False)
            assert not [n for n in names if n.startswith("trusted.overlay.")], (path, names)


def test_whiteouts_outside_the_layer_are_refused(attack: Attack) -> None:
    for name, why in ((f"../.wh.{attack.marker}", "'..' in path"), ("/.wh.etc", "absolute path"),
                      ("etc/../../.wh.tmp", "'..' in path"), ("etc/.wh..", "malformed whiteout")):
        attack.push(oi.tar_bytes([oi.directory("etc"), oi.file(name, b"")]))
        attack.refused("refused entry", why)


def test_decompression_bomb_is_refused(attack: Attack) -> None:
    attack.push(oi.sparse_tar(attack.marker, 200 << 20, {100 << 20: b"x"}))
    attack.refused("refused as a decompression bomb")


def test_pax_values_out_of_range_are_refused(attack: Attack) -> None:
    for headers, why in (({"mtime": "inf"}, "mtime inf out of range"), ({"mtime": "nan"}, "mtime nan"),
                         ({"uid": str(1 << 32)}, "out of range")):
        attack.push(oi.tar_bytes([oi.pax_file("f", b"x", headers)]))
        attack.refused(why)


def test_a_tree_deeper_than_the_recursion_limit_pulls_runs_and_goes(attack: Attack) -> None:
    # rm, down, gc and failed-pull clean-up removed trees with shutil.rmtree (recursive).
    depth = sys.getrecursionlimit() + 200
    attack.push(oi.deep_tree_layer(depth))
    assert attack.run("cd /d && find . -name leaf | wc -l").strip() == "1"


def test_a_fifo_at_etc_passwd_cannot_hang_a_start(attack: Attack) -> None:
    # PID 1 read /etc/passwd blocking (a FIFO never answers) while the start held the project's
    # lock. Now it is opened O_NONBLOCK and skipped as not a regular file: the start goes on, as
    # root (the default user, which needs no lookup).
    # The files composer binds over (hosts, hostname, resolv.conf) as FIFOs, or as symlinks to the
    # host's files, are only mount points: the binds land in the container, the FIFOs stay unread.
    attack.push(oi.tar_bytes([oi.directory("etc"), oi.fifo("etc/passwd"), oi.fifo("etc/group"), oi.fifo("etc/hosts"),
                              oi.fifo("etc/hostname"), oi.symlink("etc/resolv.conf", "/etc/shadow")]))
    output = attack.run("echo started; test -p /etc/passwd && echo fifo; test -f /etc/hosts && echo hosts; "
                        "grep -c localhost /etc/hosts; test -f /etc/shadow && echo shadow")
    assert output.split() == ["started", "fifo", "hosts", "2", "shadow"]
    named = attack.project.run("run", "--rm", "-u", "nobody", "box", "true", check=False, timeout=120)
    assert named.returncode != 0
    assert "unable to find user nobody" in one_line(named)


HANGING_HELPER = """#!/bin/sh
# Stands in for the runtime helper: leaves a process (with a child) that holds the sync pipe and
# never answers, as a PID 1 stuck on a FIFO would.
sh -c 'echo $$ > "{pids}"; sleep 600 & echo $! >> "{pids}"; wait' &
exit 0
"""


def test_a_helper_that_never_answers_is_killed_at_the_deadline(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    helper = tmp_path / "python"
    helper.write_text(HANGING_HELPER.format(pids=pids))
    helper.chmod(0o755)
    with pytest.raises(SpawnError) as caught:
        spawn({"cgroup": "unused"}, python=str(helper), timeout=2)
    message = str(caught.value)
    assert message == "the container did not start within 2s (COMPOSER_START_TIMEOUT): its processes were killed"
    for pid in map(int, pids.read_text().split()):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            continue
        assert state == "Z", f"{pid} still runs"


def test_budget_settings_reach_the_pull(attack: Attack) -> None:
    # COMPOSER_LAYER_MAX_BYTES comes from the environment of the pulling process.
    attack.project.env.environ["COMPOSER_LAYER_MAX_BYTES"] = str(1 << 20)
    try:
        attack.push(oi.tar_bytes([oi.file("big", os.urandom(2 << 20))]))
        attack.refused("COMPOSER_LAYER_MAX_BYTES=1048576")
    finally:
        del attack.project.env.environ["COMPOSER_LAYER_MAX_BYTES"]


def test_a_container_that_makes_a_tree_deeper_than_the_recursion_limit_goes_with_down(project: Project) -> None:
    # The writable layer is the container's to fill: rm and down removed it with shutil.rmtree.
    depth = sys.getrecursionlimit() + 300
    script = f"i=0; while [ $$i -lt {depth} ]; do mkdir d && cd d || exit 1; i=$$((i+1)); done; echo deep > leaf"
    project.write(f"""
        box:
          image: IMAGE
          command: ["sh", "-c", "{script}"]
    """)
    project.run("up", "-d")
    test_lifecycle.eventually(lambda: "Exited (0)" in project.ps(), timeout=120)
    state = project.state(f"{project.name}-box-1", "config.json")
    writable = Path(state["rootfs"]["upper"])
    assert (writable / "/".join(["d"] * depth) / "leaf").read_text() == "deep\n"
    down = project.run("down", "-t", "1", check=False)
    assert down.returncode == 0, down.stderr
    assert not writable.exists()
    assert not project.run_dir().joinpath(f"{project.name}-box-1").exists()
