"""composer.safe_tar against hostile archives, extracting for real into tmp_path (on any 3.11.x:
the 3.11.4+ tarfile filters are not used), and the guard that keeps those APIs out of the tree."""

from __future__ import annotations

import io
import os
import re
import stat
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer import safe_tar

REPO = Path(__file__).resolve().parents[2]


def archive(*members: tuple[str, str, str], mode: int = 0o644) -> tarfile.TarFile:
    """An open tar of (kind, name, link target or content); kind: file, dir, symlink, hardlink, chr."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for kind, name, value in members:
            info = tarfile.TarInfo(name)
            info.mode = mode
            if kind == "file":
                info.size = len(value)
                out.addfile(info, io.BytesIO(value.encode()))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                         "chr": tarfile.CHRTYPE}[kind]
            if kind in ("symlink", "hardlink"):
                info.linkname = value
            out.addfile(info)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def extract(tar: tarfile.TarFile, destination: Path, *, host: bool) -> None:
    """What the callers do: each member checked as it comes to be extracted."""
    where = os.path.realpath(destination)

    def members() -> Iterator[tarfile.TarInfo]:
        for member in tar.getmembers():
            if host:
                yield safe_tar.host_member(member, where)
            else:
                safe_tar.check_member(member, where)
                yield member

    safe_tar.extract_all(tar, where, members())


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(destination, a sibling folder outside it holding a file ``secret``)."""
    destination, outside = tmp_path / "dest", tmp_path / "outside"
    destination.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("keep")
    return destination, outside


HOSTILE = {
    "absolute": (("file", "/etc/evil", "x"),),
    "dotdot": (("file", "../outside/evil", "x"),),
    "dotdot-inside-a-name": (("dir", "a", ""), ("file", "a/../../outside/evil", "x")),
    "through-a-relative-symlink": (("symlink", "up", "../outside"),),
    "through-an-absolute-symlink": (("symlink", "root", "/"), ("file", "root/tmp/evil", "x")),
    "hardlink-absolute": (("hardlink", "link", "/etc/passwd"),),
    "hardlink-dotdot": (("hardlink", "link", "../outside/secret"),),
}


@pytest.mark.parametrize("host", [True, False], ids=["host", "container"])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archives_are_refused_and_nothing_leaves_the_destination(
        layout: tuple[Path, Path], case: str, host: bool) -> None:
    destination, outside = layout
    with pytest.raises(safe_tar.UnsafeMember, match="refusing to extract"):
        extract(archive(*HOSTILE[case]), destination, host=host)
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]
    assert (outside / "secret").read_text() == "keep"
    assert not Path("/etc/evil").exists()
    assert not Path("/tmp/evil").exists()


def test_a_file_through_an_absolute_symlink_made_earlier_is_refused(layout: tuple[Path, Path]) -> None:
    destination, outside = layout
    with pytest.raises(safe_tar.UnsafeMember, match="leads out"):
        extract(archive(("symlink", "out", str(outside)), ("file", "out/evil", "x")), destination, host=False)
    assert (destination / "out").is_symlink()  # the symlink itself is the container's business
    assert not (outside / "evil").exists()


def test_on_the_host_an_existing_symlink_is_never_written_through(layout: tuple[Path, Path]) -> None:
    """tarfile would open the symlink and write the host's file behind it."""
    destination, outside = layout
    (destination / "name").symlink_to(outside / "secret")
    with pytest.raises(safe_tar.UnsafeMember, match="leads out"):
        extract(archive(("file", "name", "overwritten")), destination, host=True)
    assert (outside / "secret").read_text() == "keep"


def test_a_device_node_is_refused_by_neither_check_but_kept_in_the_destination(layout: tuple[Path, Path]) -> None:
    """Whether devices are made is the caller's decision (cp never makes them on the host, see
    tests/unit/cli/test_cp.py); the rule here only keeps them in the destination."""
    destination, _ = layout
    with pytest.raises(safe_tar.UnsafeMember):
        safe_tar.check_member(archive(("chr", "../null", "")).getmembers()[0], str(destination))
    safe_tar.check_member(archive(("chr", "null", "")).getmembers()[0], str(destination))


def test_safe_archives_are_extracted_with_links_and_host_modes_reduced(layout: tuple[Path, Path]) -> None:
    destination, _ = layout
    tar = archive(("dir", "d", ""), ("file", "d/f", "data"), ("symlink", "d/rel", "f"), ("symlink", "abs", "/etc"),
                  ("hardlink", "d/same", "d/f"), mode=0o6777)
    extract(tar, destination, host=True)
    assert (destination / "d" / "f").read_text() == "data"
    assert os.readlink(destination / "d" / "rel") == "f"
    assert os.readlink(destination / "abs") == "/etc"
    assert (destination / "d" / "same").stat().st_ino == (destination / "d" / "f").stat().st_ino
    # tarfile's "tar" filter: no setuid, setgid, sticky, group or other write
    assert stat.S_IMODE((destination / "d" / "f").stat().st_mode) == 0o755


def test_in_a_container_modes_are_the_archives(layout: tuple[Path, Path]) -> None:
    destination, _ = layout
    extract(archive(("file", "f", "data"), mode=0o4755), destination, host=False)
    assert stat.S_IMODE((destination / "f").stat().st_mode) == 0o4755


# tarfile's extraction filters arrived in 3.11.4; Debian 12's python3 is 3.11.2 (pyproject: >= 3.11).
NEWER_THAN_3_11_2 = re.compile(r"\bfilter\s*=|tar_filter|data_filter|fully_trusted|FilterError|\.replace\([^)]*deep=")


def test_no_tarfile_api_newer_than_3_11_2_outside_safe_tar() -> None:
    """One place only (see composer/safe_tar.py). Files that name tarfile are searched."""
    offenders = []
    for root in ("composer", "tests"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.name in ("safe_tar.py", "test_safe_tar.py"):
                continue
            text = path.read_text()
            if "tarfile" not in text:
                continue
            for number, line in enumerate(text.splitlines(), 1):
                if NEWER_THAN_3_11_2.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert offenders == []
