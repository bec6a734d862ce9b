"""``composer --backend native cp`` end to end: files and folders into and out of running and
exited containers (contents, modes, symlinks, volumes), one-line errors, unsafe archives refused
at the backend, and never a mount left on the host.

The fixtures are test_lifecycle's: a module store with the busybox test image, a tmp
COMPOSER_RUN_ROOT, ``down -v`` after each test and the runtime's residue check (mounts included)
after the module.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.backend import NativeBackend
from composer.contract.backend import ContainerRef
from composer.errors import BackendError, NotFoundError
from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Project, eventually, one_line

# test_lifecycle's fixtures, used here too (``env`` is module scoped: this module gets its own)
env = test_lifecycle.env
project = test_lifecycle.project

VOLUME = """
    volumes:
      data:
"""


def sleeper(project: Project) -> str:
    """Start a ``box`` service that sleeps, with the named volume ``data`` on /data; its container's name."""
    project.write("""
        box:
          image: IMAGE
          command: sleep 600
          volumes: [data:/data]
    """, VOLUME)
    project.run("up", "-d")
    project.run("exec", "-T", "box", "mkdir", "-p", "/tmp")
    return f"{project.name}-box-1"


def in_box(project: Project, script: str) -> str:
    return project.run("exec", "-T", "box", "sh", "-c", script).stdout


def host_mounts(project: Project) -> list[str]:
    """The host's mounts under the test's store or run root (the helper must leave none)."""
    root = str(project.env.root)
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if root in line]


def test_cp_a_file_and_a_folder_into_a_running_container(project: Project, tmp_path: Path) -> None:
    sleeper(project)
    script = tmp_path / "payload.sh"
    script.write_text("#!/bin/sh\necho from the payload\n")
    script.chmod(0o754)
    os.chown(script, 1234, 4321)  # the archive's owners are kept, as docker cp keeps them
    project.run("cp", str(script), "box:/tmp/copied.sh")
    assert in_box(project, "stat -c '%a %u:%g' /tmp/copied.sh; /tmp/copied.sh") == "754 1234:4321\nfrom the payload\n"

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "note.txt").write_text("a note\n")
    (tree / "sub" / "note.txt").chmod(0o600)
    (tree / "sub").chmod(0o750)
    (tree / "link").symlink_to("sub/note.txt")
    project.run("cp", str(tree), "box:/data")  # into the volume, an existing folder: keeps the name
    assert in_box(project, "cat /data/tree/link; stat -c %a /data/tree/sub /data/tree/sub/note.txt") \
        == "a note\n750\n600\n"
    volume = project.env.root / "store" / "volumes" / f"{project.name}_data" / "_data"
    assert (volume / "tree" / "sub" / "note.txt").read_text() == "a note\n"
    assert host_mounts(project) == []


def test_a_symlink_to_slash_in_the_container_never_reaches_the_host(project: Project, tmp_path: Path) -> None:
    sleeper(project)
    marker = f"composer-cp-{uuid.uuid4().hex[:8]}"
    payload = tmp_path / "payload.txt"
    payload.write_text("contained\n")
    in_box(project, "ln -s / /hostroot")
    project.run("cp", str(payload), f"box:/hostroot/tmp/{marker}")
    assert not (Path("/tmp") / marker).exists()
    assert in_box(project, f"cat /tmp/{marker}") == "contained\n"
    project.run("cp", f"box:/hostroot/tmp/{marker}", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "contained\n"


def test_cp_a_file_and_a_folder_out_of_a_running_container(project: Project, tmp_path: Path) -> None:
    sleeper(project)
    in_box(project, "echo top > /top.txt && chmod 604 /top.txt && mkdir -p /data/out/deep && "
                    "echo deep > /data/out/deep/f && chmod 640 /data/out/deep/f && chmod 710 /data/out/deep && "
                    "ln -s deep/f /data/out/link && ln /data/out/deep/f /data/out/hard")
    project.run("cp", "box:/top.txt", str(tmp_path / "top.txt"))
    assert (tmp_path / "top.txt").read_text() == "top\n"
    assert stat.S_IMODE((tmp_path / "top.txt").stat().st_mode) == 0o604

    project.run("cp", "box:/data/out", str(tmp_path / "renamed"))  # a new name: the folder becomes it
    copy = tmp_path / "renamed"
    assert (copy / "deep" / "f").read_text() == "deep\n"
    assert stat.S_IMODE((copy / "deep" / "f").stat().st_mode) == 0o640
    assert stat.S_IMODE((copy / "deep").stat().st_mode) == 0o710
    assert (copy / "link").is_symlink()
    assert str((copy / "link").readlink()) == "deep/f"
    assert (copy / "hard").stat().st_ino == (copy / "deep" / "f").stat().st_ino  # renamed with the folder

    into = tmp_path / "into"
    into.mkdir()
    project.run("cp", "box:/data/out/", str(into))  # an existing folder: copied into it
    assert (into / "out" / "deep" / "f").read_text() == "deep\n"
    assert host_mounts(project) == []


def test_cp_with_an_exited_container_sees_its_layer_and_volumes(project: Project, tmp_path: Path) -> None:
    project.write("""
        box:
          image: IMAGE
          command: sh -c 'cat /in.txt 2>/dev/null; echo layer > /layer.txt; echo volume > /data/made'
          volumes: [data:/data]
    """, VOLUME)
    project.run("up", "-d")
    eventually(lambda: "Exited (0)" in project.ps())
    project.run("cp", "box:/layer.txt", str(tmp_path / "layer.txt"))
    project.run("cp", "box:/data/made", str(tmp_path / "made"))
    assert (tmp_path / "layer.txt").read_text() == "layer\n"
    assert (tmp_path / "made").read_text() == "volume\n"

    payload = tmp_path / "in.txt"
    payload.write_text("copied while exited\n")
    project.run("cp", str(payload), "box:/in.txt")
    assert host_mounts(project) == []
    project.run("start", "box")
    eventually(lambda: "copied while exited" in project.run("logs", "box").stdout)


def test_missing_paths_are_one_line_errors(project: Project, tmp_path: Path) -> None:
    container = sleeper(project)
    payload = tmp_path / "payload.txt"
    payload.write_text("x")
    missing = project.run("cp", "box:/nope", str(tmp_path / "out"), check=False)
    assert missing.returncode == 1
    assert one_line(missing) == f"composer: Could not find the file /nope in container {container}"
    no_folder = project.run("cp", str(payload), "box:/nodir/sub/x", check=False)
    assert no_folder.returncode == 1
    assert one_line(no_folder) == f"composer: Could not find the file /nodir/sub in container {container}"
    project.run("stop", "-t", "0", "box")
    stopped = project.run("cp", "box:/nope", str(tmp_path / "out"), check=False)
    assert stopped.returncode == 1
    assert one_line(stopped) == f"composer: Could not find the file /nope in container {container}"
    assert not (tmp_path / "out").exists()
    assert host_mounts(project) == []


def archive(*members: tuple[str, str, str]) -> bytes:
    """A tar of (kind, name, link target or content) members: kind is file, symlink or hardlink."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type, info.linkname = (tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE), value
            tar.addfile(info)
    return buffer.getvalue()


UNSAFE = {
    "dotdot": (archive(("file", "../escaped", "x")), "absolute or with '..'"),
    "absolute": (archive(("file", "/escaped", "x")), "absolute or with '..'"),
    "relative-symlink-out": (archive(("symlink", "up", "../..")), "symlink to '../..' out of /safe"),
    "through-an-absolute-symlink": (archive(("symlink", "root", "/"), ("file", "root/escaped", "x")),
                                    "'root/escaped': it leads out of /safe"),
    "hardlink-out": (archive(("hardlink", "passwd", "../etc/passwd")), "hardlink to '../etc/passwd' out of /safe"),
    "file-over-folder": (archive(("file", "folder", "x")),
                         "cannot overwrite directory /safe/folder with non-directory"),
}


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_unsafe_archives_are_refused_by_the_backend(project: Project, case: str) -> None:
    container = sleeper(project)
    in_box(project, "mkdir -p /safe/folder")
    data, message = UNSAFE[case]
    backend = NativeBackend(project.env.root / "store", environ=project.env.environ)
    ref = ContainerRef(project.state(container, "config.json")["id"], container)

    async def copy() -> None:
        try:
            await backend.copy_to_container(ref, "/safe", data)
        finally:
            await backend.aclose()

    with pytest.raises(BackendError) as refused:
        anyio.run(copy)
    assert not isinstance(refused.value, NotFoundError)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert in_box(project, "ls /escaped /tmp/escaped /etc/escaped 2>&1 || true").count("No such file") == 3
    assert not Path("/escaped").exists()
    assert host_mounts(project) == []


SPECIAL_FILES = ("mkdir -p /x && mknod /x/null c 1 3 && mkfifo /x/fifo && echo s > /x/f && ln /x/fifo /x/fifo-link "
                 "&& chown 1234:4321 /x/f && chmod 4755 /x/f")


def _special_files_absent(folder: Path) -> None:
    kinds = {path.name: stat.S_IFMT(path.lstat().st_mode) for path in folder.iterdir()}
    assert kinds == {"f": stat.S_IFREG}, kinds  # no device node, no FIFO, no link to one
    assert stat.S_IMODE((folder / "f").stat().st_mode) == 0o755  # setuid dropped


def test_cp_out_never_makes_devices_or_fifos_and_gives_the_callers_owners(project: Project, tmp_path: Path) -> None:
    # Issue 15, finding 9: a container's archive is hostile. Before, the tar filter made its device
    # nodes and FIFOs on the host and kept its owners. Docker's cp (checked on real dockerd in
    # test_docker_cp_out_for_comparison) makes them too, as root; we are stricter.
    sleeper(project)
    in_box(project, SPECIAL_FILES)
    result = project.run("cp", "box:/x", str(tmp_path / "plain"))
    _special_files_absent(tmp_path / "plain")
    assert ((tmp_path / "plain" / "f").stat().st_uid, (tmp_path / "plain" / "f").stat().st_gid) == \
        (os.getuid(), os.getgid())
    warnings = [line for line in result.stderr.splitlines() if "not copied" in line]
    assert len(warnings) == 1, result.stderr
    for name in ("plain/null", "plain/fifo", "plain/fifo-link"):
        assert name in warnings[0]
    project.run("cp", "-a", "box:/x", str(tmp_path / "archived"))  # -a: the archive's numeric owners
    _special_files_absent(tmp_path / "archived")
    assert ((tmp_path / "archived" / "f").stat().st_uid, (tmp_path / "archived" / "f").stat().st_gid) == (1234, 4321)
    assert host_mounts(project) == []


def test_docker_cp_out_for_comparison(docker_api: Any, busybox_image: str, tmp_path: Path) -> None:
    """What the docker backend does with the same files: the real ``docker cp`` (20.10 here)
    makes the device node and the FIFO as root and keeps setuid, owners the caller's even with
    -a; composer's cp, given the docker backend's archive of them, makes neither."""
    import shutil
    import subprocess

    from composer.cli.cp import extract_archive

    container = docker_api.create_container(busybox_image, ["sh", "-c", f"{SPECIAL_FILES} && sleep 600"])
    try:
        docker_api.start(container)

        def ready() -> bool:
            probe = docker_api.exec_create(container, ["test", "-e", "/x/fifo-link"])
            docker_api.exec_start(probe)
            return bool(docker_api.exec_inspect(probe)["ExitCode"] == 0)

        eventually(ready)
        stream, _ = docker_api.get_archive(container, "/x")
        archive = b"".join(stream)
        skipped = extract_archive(archive, str(tmp_path / "composer"))
        _special_files_absent(tmp_path / "composer")
        assert sorted(os.path.basename(name) for name in skipped) == ["fifo", "fifo-link", "null"]
        docker = shutil.which("docker")
        if docker is not None:
            subprocess.run([docker, "cp", f"{container['Id']}:/x", str(tmp_path / "docker")], check=True)
            made = {path.name: stat.S_IFMT(path.lstat().st_mode) for path in (tmp_path / "docker").iterdir()}
            assert made["null"] == stat.S_IFCHR  # docker makes the device on the host: we do not
            assert made["fifo"] == stat.S_IFIFO
            assert (tmp_path / "docker" / "f").stat().st_uid == os.getuid()
    finally:
        docker_api.remove_container(container, force=True)
