"""Property-based fuzzing of layer application (issue 15): random tar archives, hostile by design
(names with ``..``, ``/``, ``.`` and whiteout forms; symlinks and hardlinks pointing anywhere;
device nodes, FIFOs; any mode; PAX headers with owners, times, paths, xattrs and sparse maps out
of range), applied to a directory next to a sentinel folder.

Invariants: apply_layer returns or raises one of composer's own errors, with a one-line message;
nothing outside the destination changes; no descriptor is left open; the destination, whatever
it holds, is removed by remove_tree. The budget is fixed and derandomized (deterministic, about
ten seconds); no example database is written (Hypothesis still caches the constants it finds in
the source under ./.hypothesis, ignored by git as the other tools' caches are).
"""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from composer.backends.native.image.layers import LayerBudget, apply_layer
from composer.backends.native.trees import remove_tree
from composer.errors import ComposerError

pytestmark = pytest.mark.usefixtures("root_only")


FUZZ = settings(max_examples=250, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OUTSIDE_PLACEHOLDER = "@OUTSIDE@"  # the sentinel folder's absolute path, known once it exists
BUDGET = LayerBudget(max_bytes=256 << 10, max_ratio=50)  # small, so that the budget is hit too
# Mostly plain names, so that most layers get far enough for links, devices and replacements to
# meet; the hostile forms often enough that every layer of ten has a few.
COMPONENTS = ["a", "b", "etc", "passwd", "c d"] * 6 + ["..", ".", "", ".wh.a", ".wh..wh..opq", ".wh..", ".wh."]
LINK_TARGETS = ["a", "../a", "/", "/etc/shadow", "../../outside", "a/b", "", ".", "..", "OUTSIDE", "OUTSIDE/victim",
                "b/../..", "/a", "OUTSIDE/etc-link", "OUTSIDE/etc-link/shadow"]
KINDS = [tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE,
         tarfile.FIFOTYPE]
PAX_KEYS = {
    "uid": st.sampled_from(["0", "1000", "4294967294", "4294967295", "4294967296", "-1", "1e3", "x"]),
    "gid": st.sampled_from(["0", "65534", "4294967296", "-7"]),
    "mtime": st.sampled_from(["0", "1.5", "-1", "inf", "-inf", "nan", "1e300", "9999999999.999999999", "x"]),
    "path": st.sampled_from(["a", "../x", "/abs", "nul\0byte", "a/" * 40 + "deep", ""]),
    "linkpath": st.sampled_from(["a", "../../x", "/etc/shadow", "nul\0"]),
    "size": st.sampled_from(["0", "1", "-1", "99999999999"]),
    "SCHILY.xattr.trusted.overlay.opaque": st.just("y"),
    "SCHILY.xattr.trusted.overlay.redirect": st.just("/etc"),
    "SCHILY.xattr.user.note": st.text(max_size=8),
    "SCHILY.xattr.security.capability": st.sampled_from(["\x01\x00\x00\x02", "garbage"]),
    "LIBARCHIVE.xattr.user.b64": st.sampled_from(["eA", "!!", "eA=="]),
    "GNU.sparse.size": st.sampled_from(["10", "1000000", "-5", "x"]),
    "GNU.sparse.map": st.sampled_from(["0,1", "0,1,5", "x", "", "1000000,1"]),
    "GNU.sparse.major": st.just("1"),
    "GNU.sparse.minor": st.just("0"),
}


@st.composite
def entries(draw: st.DrawFn) -> tuple[tarfile.TarInfo, bytes]:
    parts = draw(st.lists(st.sampled_from(COMPONENTS), min_size=1, max_size=4))
    name = ("/" if draw(st.integers(0, 15)) == 0 else "") + "/".join(parts)
    info = tarfile.TarInfo(name or "a")
    info.type = draw(st.sampled_from(KINDS))
    info.mode = draw(st.integers(0, 0o7777))
    info.uid = draw(st.sampled_from([0, 1, 1000, 65534]))
    info.gid = draw(st.sampled_from([0, 1, 1000, 65534]))
    info.mtime = draw(st.sampled_from([0, 1_700_000_000, 2**33]))
    data = b""
    if info.isreg():
        small = [b"", b"x", b"hello\n", bytes(4096 * 3), b"x" * 5000 + bytes(9000)]
        data = draw(st.sampled_from(small)) if draw(st.integers(0, 9)) else bytes(300 << 10)  # over BUDGET
        info.size = len(data)
    elif info.issym() or info.islnk():
        info.linkname = draw(st.sampled_from(LINK_TARGETS)).replace("OUTSIDE", OUTSIDE_PLACEHOLDER)
    elif info.ischr() or info.isblk():
        info.devmajor, info.devminor = draw(st.sampled_from([(0, 0), (1, 3), (8, 0), (4095, 1048575)]))
    headers = draw(st.dictionaries(st.sampled_from(sorted(PAX_KEYS)), st.just(""), max_size=3))
    info.pax_headers = {key: draw(PAX_KEYS[key]) for key in headers}
    return info, data


def build(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes | None:
    """The archive, or None when tarfile itself cannot write these headers."""
    buffer = io.BytesIO()
    try:
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
            for info, data in members:
                archive.addfile(info, io.BytesIO(data) if info.isreg() else None)
    except (ValueError, OverflowError, tarfile.TarError, UnicodeError):
        return None
    return buffer.getvalue()


def snapshot(folder: Path) -> dict[str, tuple[Any, ...]]:
    found: dict[str, tuple[Any, ...]] = {}
    for path in [folder, *folder.rglob("*")]:
        info = path.lstat()
        content = path.read_bytes() if stat.S_ISREG(info.st_mode) else b""
        found[str(path)] = (info.st_mode, info.st_uid, info.st_gid, info.st_mtime_ns, content,
                            sorted(os.listxattr(path, follow_symlinks=False)))
    return found


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@st.composite
def layers(draw: st.DrawFn) -> tuple[list[Any], bool]:
    return draw(st.lists(entries(), max_size=12)), draw(st.booleans())


@FUZZ
@given(layer=layers())
def test_random_layers_stay_in_their_directory(layer: tuple[list[tuple[tarfile.TarInfo, bytes]], bool]) -> None:
    members, compressed = layer
    with tempfile.TemporaryDirectory(prefix="composer-fuzz-") as work:
        base = Path(work)
        outside = base / "outside"
        outside.mkdir()
        (outside / "victim").write_text("original")
        os.symlink("/etc", outside / "etc-link")
        for info, _ in members:  # links may name the sentinel folder by its absolute path
            info.linkname = info.linkname.replace(OUTSIDE_PLACEHOLDER, str(outside))
        data = build(members)
        if data is None:
            return
        dest = base / "dest"
        dest.mkdir()
        before = snapshot(outside)
        host = {path: Path(path).lstat() for path in ("/etc/shadow", "/etc/passwd")}
        fds = open_fds()
        blob = gzip.compress(data, mtime=0) if compressed else data
        message = ""
        try:
            apply_layer(io.BytesIO(blob), dest, what="layer fuzz", budget=BUDGET)
        except ComposerError as exc:
            message = str(exc)
            reason = re.sub(r"'[^']*'|[0-9]+", "_", message.rsplit(": ", 1)[-1])[:30]
            event(f"{type(exc).__name__}: {reason}")
        else:
            event("applied")
        assert "\n" not in message, message
        assert open_fds() == fds
        assert snapshot(outside) == before
        assert sorted(p.name for p in base.iterdir()) == ["dest", "outside"]
        for path, seen in host.items():
            assert Path(path).lstat() == seen
        remove_tree(dest)
        assert not dest.exists()
