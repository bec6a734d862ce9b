"""Applying layers on tmp dirs: overlayfs whiteouts, metadata kept, and no way out of the layer."""

from __future__ import annotations

import gzip
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.layers import LayerBudget, apply_layer
from composer.backends.native.trees import remove_tree
from composer.errors import DigestMismatchError, ImagePullError, UnsafeLayerError, UnsupportedFeatureError
from tests.support import oci_images as oi

pytestmark = pytest.mark.usefixtures("root_only")


def unpack(tmp_path: Path, members: list[oi.Member], *, compression: str = "", name: str = "layer") -> Path:
    dest = tmp_path / name
    dest.mkdir()
    data = oi.tar_bytes(members)
    size = apply_layer(io.BytesIO(oi.compress(data, compression)), dest, diff_id=oci.sha256_digest(data))
    assert size == len(data)
    return dest


def test_whiteouts_become_overlayfs_form(tmp_path: Path) -> None:
    dest = unpack(tmp_path, [
        oi.directory("etc"), oi.whiteout("etc/passwd"), oi.opaque("var/cache"), oi.file("var/cache/kept", b"k"),
        oi.whiteout("gone"),
    ])
    for hidden in (dest / "etc" / "passwd", dest / "gone"):
        st = hidden.lstat()
        assert stat.S_ISCHR(st.st_mode)
        assert os.major(st.st_rdev) == 0
        assert os.minor(st.st_rdev) == 0
    assert os.getxattr(dest / "var" / "cache", "trusted.overlay.opaque") == b"y"
    assert (dest / "var" / "cache" / "kept").read_bytes() == b"k"
    assert not (dest / "var" / "cache" / ".wh..wh..opq").exists()
    assert not any(name.startswith(".wh.") for _, _, files in os.walk(dest) for name in files)


def test_opaque_marker_after_its_entries_and_whiteout_of_own_entry(tmp_path: Path) -> None:
    # The opaque marker applies to the directory whatever its position; a whiteout never hides an
    # entry of its own layer.
    dest = unpack(tmp_path, [oi.directory("d"), oi.file("d/new", b"n"), oi.opaque("d"), oi.file("x", b"x"),
                             oi.whiteout("x")])
    assert os.getxattr(dest / "d", "trusted.overlay.opaque") == b"y"
    assert (dest / "d" / "new").read_bytes() == b"n"
    assert (dest / "x").read_bytes() == b"x"


def test_forged_overlay_xattrs_are_dropped(tmp_path: Path) -> None:
    dest = unpack(tmp_path, [oi.file("f", b"", xattrs={"trusted.overlay.opaque": b"y", "user.note": b"kept"})])
    assert os.getxattr(dest / "f", "user.note") == b"kept"
    with pytest.raises(OSError):  # noqa: PT011 - ENODATA
        os.getxattr(dest / "f", "trusted.overlay.opaque")


def test_metadata_is_kept(tmp_path: Path) -> None:
    capability = oi.capability_xattr()
    dest = unpack(tmp_path, [
        oi.directory("bin", mode=0o750, uid=1, gid=2, mtime=1_000_000),
        oi.file("bin/ping", b"ping", mode=0o4755, uid=0, gid=0, xattrs={"security.capability": capability}),
        oi.file("bin/tool", b"tool", mode=0o2711, uid=1000, gid=1001, mtime=1_234_567),
        oi.hardlink("bin/tool-link", "bin/tool"),
        oi.symlink("bin/abs", "/etc/passwd"),
        oi.symlink("bin/rel", "../etc/x"),
        oi.chardev("dev/null", 1, 3),
        oi.fifo("run/pipe"),
        oi.directory("tmp", mode=0o1777),
    ], compression="gzip")
    ping = (dest / "bin" / "ping").lstat()
    assert stat.S_IMODE(ping.st_mode) == 0o4755
    assert os.getxattr(dest / "bin" / "ping", "security.capability") == capability
    getcap = subprocess.run(["getcap", str(dest / "bin" / "ping")], capture_output=True, text=True, check=True)
    assert "cap_net_raw" in getcap.stdout
    tool = (dest / "bin" / "tool").lstat()
    assert (stat.S_IMODE(tool.st_mode), tool.st_uid, tool.st_gid) == (0o2711, 1000, 1001)
    assert tool.st_mtime == 1_234_567
    assert (dest / "bin" / "tool-link").lstat().st_ino == tool.st_ino
    assert tool.st_nlink == 2
    assert os.readlink(dest / "bin" / "abs") == "/etc/passwd"
    assert os.readlink(dest / "bin" / "rel") == "../etc/x"
    null = (dest / "dev" / "null").lstat()
    assert stat.S_ISCHR(null.st_mode)
    assert os.major(null.st_rdev) == 1
    assert os.minor(null.st_rdev) == 3
    assert stat.S_IMODE(null.st_mode) == 0o666
    assert stat.S_ISFIFO((dest / "run" / "pipe").lstat().st_mode)
    bin_dir = (dest / "bin").lstat()
    assert (stat.S_IMODE(bin_dir.st_mode), bin_dir.st_uid, bin_dir.st_gid) == (0o750, 1, 2)
    assert bin_dir.st_mtime == 1_000_000  # set after its children were created
    assert stat.S_IMODE((dest / "tmp").lstat().st_mode) == 0o1777


def test_later_entries_replace_earlier_ones(tmp_path: Path) -> None:
    dest = unpack(tmp_path, [oi.file("a", b"old"), oi.file("a", b"new"), oi.directory("d"), oi.file("d/x", b"x"),
                             oi.file("d", b"now a file"), oi.symlink("s", "a"), oi.directory("s")])
    assert (dest / "a").read_bytes() == b"new"
    assert (dest / "d").read_bytes() == b"now a file"
    assert (dest / "s").is_dir()
    assert not (dest / "s").is_symlink()


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    (target / "victim").write_text("original")
    return target


@pytest.mark.parametrize(("members", "why"), [
    ([oi.file("/etc/evil", b"x")], "absolute path"),
    ([oi.file("../outside/victim", b"x")], "'..' in path"),
    ([oi.file("a/../../outside/victim", b"x")], "'..' in path"),
    ([oi.symlink("link", "../outside"), oi.file("link/victim", b"x")], "path prefix 'link' is a symlink"),
    ([oi.symlink("link", "/"), oi.file("link/tmp/evil", b"x")], "path prefix 'link' is a symlink"),
    ([oi.directory("d"), oi.symlink("d/in", "."), oi.file("d/in/x", b"x")], "path prefix 'in' is a symlink"),
    ([oi.file("f", b""), oi.file("f/x", b"x")], "path prefix 'f' is not a directory"),
    ([oi.hardlink("h", "../outside/victim")], "'..' in path"),
    ([oi.hardlink("h", "/etc/passwd")], "absolute path"),
    ([oi.symlink("link", "../outside"), oi.hardlink("h", "link/victim")], "hardlink target prefix 'link'"),
    ([oi.hardlink("h", "missing")], "is not in this layer"),
    ([oi.file("x/.wh..", b"")], "malformed whiteout"),
])
def test_escapes_are_refused(tmp_path: Path, outside: Path, members: list[oi.Member], why: str) -> None:
    with pytest.raises(UnsafeLayerError) as caught:
        unpack(tmp_path, members)
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)
    assert (outside / "victim").read_text() == "original"
    assert sorted(p.name for p in outside.iterdir()) == ["victim"]
    assert not Path("/etc/evil").exists()


def test_symlinks_inside_are_created_but_never_followed(tmp_path: Path, outside: Path) -> None:
    dest = unpack(tmp_path, [oi.symlink("link", str(outside / "victim")), oi.file("link", b"replaced")])
    assert (dest / "link").read_bytes() == b"replaced"
    assert (outside / "victim").read_text() == "original"


def test_diff_id_mismatch(tmp_path: Path) -> None:
    data = oi.tar_bytes([oi.file("a", b"a")])
    (tmp_path / "l").mkdir()
    with pytest.raises(DigestMismatchError, match="expected diff_id sha256:0000"):
        apply_layer(io.BytesIO(gzip.compress(data)), tmp_path / "l", diff_id="sha256:" + "0" * 64)


def test_not_a_tar(tmp_path: Path) -> None:
    (tmp_path / "l").mkdir()
    with pytest.raises(ImagePullError, match="not a valid tar archive"):
        apply_layer(io.BytesIO(gzip.compress(b"garbage" * 200)), tmp_path / "l")
    with pytest.raises(ImagePullError, match="not a valid tar archive"):
        apply_layer(io.BytesIO(b"\x1f\x8bnot really gzip"), tmp_path / "l")


def test_zstd(tmp_path: Path) -> None:
    data = oi.tar_bytes([oi.file("z", b"zstd")])
    packed = oi.compress(data, "zstd")
    (tmp_path / "l").mkdir()
    try:
        import zstandard  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(UnsupportedFeatureError, match="'zstandard' is not installed"):
            apply_layer(io.BytesIO(packed), tmp_path / "l", compression="zstd")
        return
    apply_layer(io.BytesIO(packed), tmp_path / "l", diff_id=oci.sha256_digest(data))
    assert (tmp_path / "l" / "z").read_bytes() == b"zstd"


# --- hostile layers (issue 15, finding 10) ---------------------------------------------------------


def test_sparse_entry_bomb_is_refused(tmp_path: Path) -> None:
    # A few hundred bytes that unpack to 200 MB of holes: the files' sizes count against the
    # budget (before anything is written), not only the tar stream.
    data = oi.sparse_tar("bomb", 200 << 20, {100 << 20: b"x"})
    packed = gzip.compress(data)
    assert len(packed) < 1024
    (tmp_path / "l").mkdir()
    with pytest.raises(ImagePullError, match=r"refused as a decompression bomb: its files exceed 67108864 bytes, "
                                             r"the limit of 10000 times its \d+ compressed bytes") as caught:
        apply_layer(io.BytesIO(packed), tmp_path / "l")
    assert "\n" not in str(caught.value)
    assert not (tmp_path / "l" / "bomb").exists() or (tmp_path / "l" / "bomb").stat().st_size == 0


def test_gzip_stream_bomb_is_refused_by_size_and_ratio(tmp_path: Path) -> None:
    zeros = oi.tar_bytes([oi.file("zeros", bytes(8 << 20))])
    packed = gzip.compress(zeros)
    (tmp_path / "a").mkdir()
    with pytest.raises(ImagePullError, match=r"its (uncompressed stream|files) exceed 1048576 bytes, "
                                             r"the limit of COMPOSER_LAYER_MAX_BYTES=1048576"):
        apply_layer(io.BytesIO(packed), tmp_path / "a", budget=LayerBudget(max_bytes=1 << 20))
    (tmp_path / "b").mkdir()
    # About 1000 times its compressed size: deflate's most. The default budget lets it through
    # (gzip alone never reaches the ratio; up to RATIO_FLOOR is always allowed).
    size = apply_layer(io.BytesIO(packed), tmp_path / "b", diff_id=oci.sha256_digest(zeros))
    assert size == len(zeros)


def test_budget_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LayerBudget.from_env({}) == LayerBudget(64 << 30, 10_000)
    assert LayerBudget.from_env({"COMPOSER_LAYER_MAX_BYTES": "1024", "COMPOSER_LAYER_MAX_RATIO": "5"}) == \
        LayerBudget(1024, 5.0)
    for bad in ("-1", "0", "nan", "inf", "lots"):
        with pytest.raises(ImagePullError, match="is not a positive number"):
            LayerBudget.from_env({"COMPOSER_LAYER_MAX_RATIO": bad})
    meter = LayerBudget(1 << 40, 10).meter(100 << 20, "layer x")
    assert meter.limit == 1000 << 20  # ratio times the compressed size
    meter = LayerBudget(1 << 40, 10).meter(10, "layer x")
    assert meter.limit == 64 << 20  # never below the floor


def test_sparse_files_are_written_sparse(tmp_path: Path) -> None:
    # Holes stay holes, from a tar sparse entry and from plain runs of zeros alike.
    middle = b"m" * 5000
    sparse = oi.sparse_tar("sparse", 32 << 20, {16 << 20: middle})
    dest = tmp_path / "s"
    dest.mkdir()
    apply_layer(io.BytesIO(sparse), dest)
    found = (dest / "sparse").stat()
    assert found.st_size == 32 << 20
    assert found.st_blocks * 512 < 1 << 20
    with (dest / "sparse").open("rb") as handle:
        handle.seek(16 << 20)
        assert handle.read(len(middle)) == middle
    zeros = bytes(8 << 20) + b"tail" + bytes(3 << 20)
    dest = unpack(tmp_path, [oi.file("zeros", zeros)], compression="gzip", name="z")
    written = (dest / "zeros").stat()
    assert written.st_size == len(zeros)
    assert written.st_blocks * 512 < 1 << 20
    assert (dest / "zeros").read_bytes() == zeros


@pytest.mark.parametrize(("headers", "why"), [
    ({"mtime": "inf"}, "mtime inf out of range"),
    ({"mtime": "nan"}, "mtime nan out of range"),
    ({"mtime": "1e300"}, "out of range"),
    ({"uid": str(1 << 32)}, f"uid {1 << 32} out of range"),
    ({"gid": str((1 << 32) - 1)}, "gid 4294967295 out of range"),
    ({"uid": "-5"}, "uid -5 out of range"),
    ({"path": "nul\0byte"}, "malformed entry"),
])
def test_pax_values_out_of_range_are_one_line_errors(tmp_path: Path, headers: dict[str, str], why: str) -> None:
    (tmp_path / "l").mkdir()
    data = oi.tar_bytes([oi.pax_file("f", b"data", headers)])
    with pytest.raises(ImagePullError) as caught:
        apply_layer(io.BytesIO(data), tmp_path / "l")
    assert why in str(caught.value)
    assert "\n" not in str(caught.value)


def test_trees_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    # Unpacked, replaced by a later entry (the layer's own clean-up), and removed by remove_tree.
    depth = sys.getrecursionlimit() + 500
    layer = oi.deep_tree_layer(depth)
    dest = unpack(tmp_path, [oi.Member(m.info, m.data) for m in _members(layer)] + [oi.file("d", b"file now")],
                  name="replaced")
    assert (dest / "d").read_bytes() == b"file now"
    dest = unpack(tmp_path, list(_members(layer)), name="kept")
    assert (dest / "/".join(["d"] * depth) / "leaf").read_bytes() == b"deep"
    os.chmod(dest / "d" / "d", 0o500)  # read-only directories, as layers have
    remove_tree(dest)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["replaced"]


def _members(layer: bytes) -> list[oi.Member]:
    import tarfile

    with tarfile.open(fileobj=io.BytesIO(layer)) as archive:
        return [oi.Member(m, archive.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in archive.getmembers()]


def test_remove_tree_stays_on_its_filesystem_and_never_follows_symlinks(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "victim").write_text("kept")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "to-outside").symlink_to(outside)
    (tree / "to-outside").symlink_to(outside)
    mounted = tree / "sub" / "mnt"
    mounted.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mounted)], check=True)
    try:
        (mounted / "on-tmpfs").write_text("kept")
        with pytest.raises(OSError, match="a mount point is in the tree"):
            remove_tree(tree)
        assert (mounted / "on-tmpfs").read_text() == "kept"
        with pytest.raises(OSError, match="a mount point is in the tree"):
            remove_tree(mounted)  # the mount point itself: its files are not deleted either
        assert (mounted / "on-tmpfs").read_text() == "kept"
    finally:
        subprocess.run(["umount", str(mounted)], check=True)
    remove_tree(tree)
    assert not tree.exists()
    assert (outside / "victim").read_text() == "kept"
    remove_tree(tmp_path / "missing" / "twice")  # nothing there: not an error
