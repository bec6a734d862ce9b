"""The cp helper's requests on plain directories (inside a container they run chrooted, on the
same code): docker cp's naming and symlink rules, archives with modes, links and numeric owners
only, and the members that extraction refuses."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from composer.backends.native.runtime import cpexec


def members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        return {member.name: member for member in archive.getmembers()}


@pytest.mark.parametrize(("path", "expected"), [
    ("/etc/passwd", "passwd"), ("/tmp/dir/", "dir"), ("/tmp/dir/.", "."), ("/", "."), ("relative/x", "x"),
])
def test_the_top_entry_is_named_after_the_path(path: str, expected: str) -> None:
    assert cpexec.top_name(path) == expected


def test_a_symlink_is_itself_unless_the_path_ends_in_a_slash(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to("real")
    assert cpexec.resolve(f"{tmp_path}/link") == f"{tmp_path}/link"
    assert cpexec.resolve(f"{tmp_path}/link/") == f"{tmp_path}/real"
    assert cpexec.resolve(f"{tmp_path}/link/.") == f"{tmp_path}/real"
    assert cpexec.stat_path(f"{tmp_path}/link", "c") == {"name": "link", "size": 4, "is_dir": False,
                                                          "link_target": f"{tmp_path}/real"}


def test_get_archives_a_tree_with_modes_links_and_numeric_owners_only(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "tool").write_text("#!/bin/sh\n")
    (tree / "sub" / "tool").chmod(0o4755)
    os.link(tree / "sub" / "tool", tree / "again")
    (tree / "link").symlink_to("/etc/passwd")
    os.mkfifo(tree / "pipe")
    found = members(cpexec.get(f"{tree}/", "c"))
    assert list(found) == ["tree", "tree/again", "tree/link", "tree/pipe", "tree/sub", "tree/sub/tool"]
    assert found["tree/again"].isreg()
    assert (found["tree/sub/tool"].islnk(), found["tree/sub/tool"].linkname) == (True, "tree/again")
    assert found["tree/again"].mode == 0o4755
    assert (found["tree/link"].issym(), found["tree/link"].linkname) == (True, "/etc/passwd")
    assert found["tree/pipe"].isfifo()
    assert {(member.uname, member.gname) for member in found.values()} == {("", "")}
    assert found["tree"].uid == os.getuid()


def test_put_extracts_with_the_archive_modes_and_replaces_files_not_written_through(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / "bin").mkdir(parents=True)
    (source / "bin" / "tool").write_text("new\n")
    (source / "bin" / "tool").chmod(0o4750)
    destination = tmp_path / "destination"
    (destination / "bin").mkdir(parents=True)
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    (destination / "bin" / "tool").symlink_to(victim)
    destination.chmod(0o711)
    cpexec.put(str(destination), cpexec.get(f"{source}/.", "c"), "c")
    assert (destination / "bin" / "tool").read_text() == "new\n"
    assert not (destination / "bin" / "tool").is_symlink()
    assert stat.S_IMODE((destination / "bin" / "tool").stat().st_mode) == 0o4750
    assert victim.read_text() == "untouched\n"
    assert stat.S_IMODE(destination.stat().st_mode) == 0o711  # "." is the destination: left as it is


def tar(*entries: tuple[str, bytes, str]) -> bytes:
    """A tar of (name, type, link target) entries; regular files are empty."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, kind, link in entries:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, link
            archive.addfile(info, io.BytesIO(b""))
    return buffer.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (tar(("../out", tarfile.REGTYPE, "")), "'../out': absolute or with '..'"),
    (tar(("a/../../out", tarfile.REGTYPE, "")), "absolute or with '..'"),
    (tar(("/out", tarfile.REGTYPE, "")), "'/out': absolute or with '..'"),
    (tar(("up", tarfile.SYMTYPE, "../x")), "'up': symlink to '../x' out of"),
    (tar(("root", tarfile.SYMTYPE, "/"), ("root/out", tarfile.REGTYPE, "")), "'root/out': it leads out of"),
    (tar(("hard", tarfile.LNKTYPE, "/etc/passwd")), "'hard': hardlink to '/etc/passwd' out of"),
    (tar(("hard", tarfile.LNKTYPE, "../out")), "'hard': hardlink to '../out' out of"),
    (tar(("folder", tarfile.REGTYPE, "")), "cannot overwrite directory"),
    (tar(("file", tarfile.DIRTYPE, "")), "cannot overwrite non-directory"),
])
def test_put_refuses_members_that_lead_out_or_replace_across_kinds(tmp_path: Path, data: bytes,
                                                                     message: str) -> None:
    destination = tmp_path / "destination"
    (destination / "folder").mkdir(parents=True)
    (destination / "file").write_text("kept\n")
    with pytest.raises(cpexec._Refused, match=message):
        cpexec.put(str(destination), data, "c")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["destination"]
    assert (destination / "file").read_text() == "kept\n"


def test_missing_paths_and_a_file_as_the_destination(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(cpexec._Missing, match=r"^Could not find the file /nope/x in container web-1$"):
        cpexec.get("/nope/x", "web-1")
    with pytest.raises(cpexec._Missing, match="Could not find the file"):
        cpexec.stat_path(f"{tmp_path}/file/x", "web-1")
    with pytest.raises(cpexec._Refused, match="extraction point is not a directory"):
        cpexec.put(f"{tmp_path}/file", tar(("y", tarfile.REGTYPE, "")), "web-1")
