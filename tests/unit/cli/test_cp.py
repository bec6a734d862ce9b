"""``cp``: which side of a path names a container, and extracting a container's (hostile) archive
on the host: real extraction into tmp_path."""

from __future__ import annotations

import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from composer.cli.cp import extract_archive, split_container_path
from composer.errors import UsageError


def test_container_paths() -> None:
    assert split_container_path("db:/tmp/x") == ("db", "/tmp/x")
    assert split_container_path("./db:x") == (None, "./db:x")
    assert split_container_path("/abs/path") == (None, "/abs/path")


def tar_of(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for member in members:
            out.addfile(member, io.BytesIO(b"x" * member.size) if member.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, *, linkname: str = "", mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode, info.uid, info.gid = kind, linkname, mode, 4242, 4242
    info.size = 1 if kind == tarfile.REGTYPE else 0
    return info


def test_devices_fifos_and_links_to_them_are_skipped_and_owners_are_the_callers(tmp_path: Path) -> None:
    """Docker's cp, as root, makes the devices on the host; never here."""
    data = tar_of(member("top", tarfile.DIRTYPE, mode=0o755), member("top/null", tarfile.CHRTYPE),
                  member("top/disk", tarfile.BLKTYPE), member("top/pipe", tarfile.FIFOTYPE),
                  member("top/tonull", tarfile.LNKTYPE, linkname="top/null"),
                  member("top/suid", mode=0o6777))
    skipped = extract_archive(data, str(tmp_path))
    assert sorted(skipped) == ["top/disk", "top/null", "top/pipe", "top/tonull"]
    assert sorted(os.listdir(tmp_path / "top")) == ["suid"]
    found = (tmp_path / "top" / "suid").stat()
    assert stat.S_IMODE(found.st_mode) == 0o755
    assert (found.st_uid, found.st_gid) == (os.getuid(), os.getgid())


@pytest.mark.parametrize("hostile", [
    member("top/../../evil"),
    member("top/link", tarfile.SYMTYPE, linkname="/"),
])
def test_an_archive_leading_out_is_a_usage_error(tmp_path: Path, hostile: tarfile.TarInfo) -> None:
    destination = tmp_path / "dest"
    destination.mkdir()
    members = [member("top", tarfile.DIRTYPE, mode=0o755), hostile]
    if hostile.issym():
        members.append(member("top/link/tmp/evil"))
    with pytest.raises(UsageError, match="refusing to extract"):
        extract_archive(tar_of(*members), str(destination))
    assert not (tmp_path / "evil").exists()
    assert not Path("/tmp/evil").exists()
