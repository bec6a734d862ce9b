"""Applying a layer tarball to an empty directory, in the form overlayfs mounts.

Every entry is created with os-level calls relative to a directory file descriptor that was
opened with O_NOFOLLOW, component by component, from the layer's own root: an absolute name, a
``..`` component, or a symlink (or any non-directory) used as a path prefix is refused with
UnsafeLayerError, so nothing outside the layer directory can be written. Symlinks are created
as they are and never followed; hardlinks must point at an entry of the same layer.

Whiteouts take their overlayfs form: ``.wh.<name>`` becomes a character device 0/0 named
``<name>``, ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory (a per-layer
directory makes their order in the tar irrelevant). Owners (numeric), modes (setuid included),
mtimes, device nodes, FIFOs and xattrs from PAX headers (``SCHILY.xattr.*``, so file capabilities
survive) are kept; ``trusted.overlay.*`` xattrs in the tar are dropped, so a layer cannot forge
whiteouts. The uncompressed stream is hashed as it is read and checked against the diff_id.

A layer is hostile until it is unpacked: what it unpacks to (its tar stream, and the sizes of its
files, which a sparse entry can make far larger than the stream) is held to a budget (LayerBudget:
COMPOSER_LAYER_MAX_BYTES, COMPOSER_LAYER_MAX_RATIO times the compressed size); runs of zeros are
written as holes, so sparse files stay sparse; owners, times and device numbers out of range, and
names the kernel cannot take, are one-line errors, as is everything else that cannot be created.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import math
import os
import stat
import tarfile
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, NamedTuple, cast

from composer import faults
from composer.backends.native.trees import remove_at
from composer.errors import DigestMismatchError, ImagePullError, UnsafeLayerError, UnsupportedFeatureError

BACKEND = "native"
WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
HOLE_BLOCK = 4096  # zero runs of whole blocks of this size become holes
_ZEROS = bytes(CHUNK)
_ZERO_BLOCK = bytes(HOLE_BLOCK)
MAX_ID = (1 << 32) - 2  # (uid_t)-1 means "leave unchanged" to chown(2): never an owner
MAX_MTIME = (1 << 63) / 1e9  # seconds that still fit a timespec in nanoseconds
MAX_DEVICE_NUMBER = (1 << 32) - 1

# The budget's defaults. A real layer's tar is far below 64 GiB. Deflate cannot expand more than
# about 1032 times, so no gzip layer reaches a ratio of 10,000 by its stream: only zstd's extremes
# (gigabytes of zeros) and sparse entries do, and those are how a few bytes become gigabytes.
# Up to RATIO_FLOOR is always allowed, so small layers of mostly zeros never trip the ratio.
ENV_MAX_BYTES = "COMPOSER_LAYER_MAX_BYTES"
ENV_MAX_RATIO = "COMPOSER_LAYER_MAX_RATIO"
DEFAULT_MAX_BYTES = 64 << 30
DEFAULT_MAX_RATIO = 10_000
RATIO_FLOOR = 64 << 20


class LayerBudget(NamedTuple):
    """How much one layer may unpack to: ``max_bytes`` at most, and no more than ``max_ratio``
    times its compressed size (beyond RATIO_FLOOR). Counted twice over: the bytes of the tar
    stream, and the sizes of the files in it."""

    max_bytes: int = DEFAULT_MAX_BYTES
    max_ratio: float = DEFAULT_MAX_RATIO

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> LayerBudget:
        """From COMPOSER_LAYER_MAX_BYTES and COMPOSER_LAYER_MAX_RATIO (defaults when unset).

        :raises ImagePullError: a value that is not a positive number.
        """
        env = os.environ if environ is None else environ
        return cls(int(_positive(env, ENV_MAX_BYTES, DEFAULT_MAX_BYTES)),
                   _positive(env, ENV_MAX_RATIO, DEFAULT_MAX_RATIO))

    def meter(self, compressed: int, what: str) -> Meter:
        return Meter(self, compressed, what)


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ImagePullError(f"{name}={text!r} is not a positive number", backend_name=BACKEND, operation="pull")
    return value


class Meter:
    """What one layer has unpacked to so far, held to its budget."""

    def __init__(self, budget: LayerBudget, compressed: int, what: str) -> None:
        self.budget = budget
        self.compressed = compressed
        self.what = what
        self.limit = int(min(budget.max_bytes, max(RATIO_FLOOR, budget.max_ratio * compressed)))
        self.stream = 0
        self.content = 0

    def add_stream(self, count: int) -> None:
        self.stream += count
        if self.stream > self.limit:
            raise self._exceeded("its uncompressed stream")

    def add_content(self, count: int) -> None:
        self.content += count
        if self.content > self.limit:
            raise self._exceeded("its files")

    def _exceeded(self, part: str) -> ImagePullError:
        if self.limit == self.budget.max_bytes:
            why = f"{ENV_MAX_BYTES}={self.budget.max_bytes}"
        else:
            why = f"{self.budget.max_ratio:g} times its {self.compressed} compressed bytes ({ENV_MAX_RATIO})"
        return ImagePullError(f"{self.what}: refused as a decompression bomb: {part} exceed {self.limit} bytes, "
                              f"the limit of {why}", backend_name=BACKEND, operation="pull",
                              hint=f"raise {ENV_MAX_BYTES} or {ENV_MAX_RATIO} if the image is genuine")


class _HashingReader:
    """Reads ``inner`` and hashes (and counts, against ``meter``) everything it hands out."""

    def __init__(self, inner: IO[bytes], meter: Meter) -> None:
        self.inner = inner
        self.meter = meter
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.meter.add_stream(len(data))
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def detect_compression(head: bytes, declared: str | None) -> str:
    """``gzip``, ``zstd`` or ``""``: the magic bytes win over the media type (registries mislabel)."""
    if head.startswith(_GZIP_MAGIC):
        return "gzip"
    if head.startswith(_ZSTD_MAGIC):
        return "zstd"
    return declared or ""


@contextlib.contextmanager
def decompressed(blob: IO[bytes], compression: str, what: str) -> Iterator[IO[bytes]]:
    """A reader of ``blob``'s uncompressed bytes.

    :raises UnsupportedFeatureError: zstd without the ``zstandard`` module.
    """
    if compression == "gzip":
        import gzip

        with gzip.GzipFile(fileobj=blob, mode="rb") as reader:
            yield cast(IO[bytes], reader)
    elif compression == "zstd":
        try:
            import zstandard  # type: ignore[import-not-found, unused-ignore]
        except ImportError:
            raise UnsupportedFeatureError(
                f"{what} is zstd-compressed and the Python module 'zstandard' is not installed",
                backend_name=BACKEND, operation="pull", hint="pip install zstandard") from None
        with zstandard.ZstdDecompressor().stream_reader(blob, read_across_frames=True) as reader:
            yield reader
    elif compression == "":
        yield blob
    else:
        raise UnsupportedFeatureError(f"{what} uses unknown compression {compression!r}",
                                      backend_name=BACKEND, operation="pull")


def apply_layer(blob: IO[bytes], dest: Path, *, compression: str | None = None, diff_id: str | None = None,
                what: str = "layer", owners: bool = True, budget: LayerBudget | None = None) -> int:
    """Unpack the layer tarball ``blob`` (gzip, zstd or plain; sniffed) into the empty ``dest``.
    Returns the size of the uncompressed tar.

    :raises DigestMismatchError: the uncompressed tar does not hash to ``diff_id``.
    :raises UnsafeLayerError: an entry would write outside ``dest``.
    :raises ImagePullError: the tar is malformed, an entry cannot be created, or the layer unpacks
        to more than ``budget`` (default: LayerBudget.from_env()) allows.
    """
    start = blob.tell()
    head = blob.read(4)
    compressed = blob.seek(0, os.SEEK_END) - start
    blob.seek(start)
    meter = (budget or LayerBudget.from_env()).meter(compressed, what)
    with decompressed(blob, detect_compression(head, compression), what) as raw:
        reader = _HashingReader(raw, meter)
        root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            extractor = _Extractor(root_fd, what, owners=owners, meter=meter)
            try:
                with tarfile.open(fileobj=reader, mode="r|", bufsize=CHUNK,  # type: ignore[call-overload]
                                  errors="surrogateescape") as archive:
                    for count, member in enumerate(archive):
                        extractor.entry(archive, member)
                        if count == 1:
                            faults.point("store.layer.extracting")
                extractor.finish()
            except (tarfile.TarError, EOFError, OSError, ValueError, OverflowError) as exc:
                raise _unpack_error(exc, what, extractor.current) from exc  # the cause tells a full store
            finally:
                extractor.close()
            reader.drain()
        finally:
            os.close(root_fd)
    actual = "sha256:" + reader.hash.hexdigest()
    if diff_id is not None and actual != diff_id:
        raise DigestMismatchError(f"{what}: uncompressed content is {actual}, expected diff_id {diff_id}",
                                  backend_name=BACKEND, operation="pull")
    return reader.size


def _unpack_error(exc: BaseException, what: str, entry: str | None) -> ImagePullError:
    """One line for what went wrong unpacking ``entry``: a system call's refusal (a symlink to
    "": ENOENT), or a malformed tar (names with NUL bytes, numbers out of range: ValueError,
    OverflowError)."""
    named = f" {entry!r}" if entry is not None else ""
    if isinstance(exc, OSError) and exc.errno is not None:
        return ImagePullError(f"{what}: cannot unpack{named}: {exc.strerror}", backend_name=BACKEND,
                              operation="pull")
    if isinstance(exc, (ValueError, OverflowError)):
        return ImagePullError(f"{what} has a malformed entry{named}: {exc}", backend_name=BACKEND, operation="pull")
    return ImagePullError(f"{what} is not a valid tar archive: {exc}", backend_name=BACKEND, operation="pull")


def check_member(member: tarfile.TarInfo, what: str) -> None:
    """Refuse numbers the kernel cannot take (which would otherwise escape as OverflowError or
    ValueError, or change meaning: uid 2^32-1 is chown's "unchanged").

    :raises ImagePullError: an owner, time or device number out of range.
    """
    def bad(why: str) -> ImagePullError:
        return ImagePullError(f"{what}: refused entry {member.name!r}: {why}", backend_name=BACKEND,
                              operation="pull")

    for kind, value in (("uid", member.uid), ("gid", member.gid)):
        if not isinstance(value, int) or not 0 <= value <= MAX_ID:
            raise bad(f"{kind} {value} out of range")
    mtime = member.mtime
    if not isinstance(mtime, (int, float)) or not math.isfinite(mtime) or abs(mtime) >= MAX_MTIME:
        raise bad(f"mtime {mtime} out of range")
    if member.ischr() or member.isblk():
        for value in (member.devmajor, member.devminor):
            if not 0 <= value <= MAX_DEVICE_NUMBER:
                raise bad(f"device number {value} out of range")


def _nanoseconds(mtime: float) -> tuple[int, int]:
    return (int(mtime * 1e9),) * 2


def split_name(name: str, what: str) -> tuple[str, ...]:
    """The components of a tar entry name, ``./`` and empty ones dropped.

    :raises UnsafeLayerError: absolute, or with a ``..`` component.
    """
    if name.startswith("/"):
        raise UnsafeLayerError(f"{what}: refused entry {name!r}: absolute path", backend_name=BACKEND,
                               operation="pull")
    parts = tuple(part for part in name.split("/") if part not in ("", "."))
    if ".." in parts:
        raise UnsafeLayerError(f"{what}: refused entry {name!r}: '..' in path", backend_name=BACKEND,
                               operation="pull")
    return parts


def _xattrs(member: tarfile.TarInfo) -> dict[str, bytes]:
    found: dict[str, bytes] = {}
    for key, value in member.pax_headers.items():
        if key.startswith("SCHILY.xattr."):
            found[key[len("SCHILY.xattr."):]] = value.encode("utf-8", "surrogateescape")
        elif key.startswith("LIBARCHIVE.xattr."):
            name = urllib.parse.unquote(key[len("LIBARCHIVE.xattr."):])
            with contextlib.suppress(ValueError):
                found[name] = base64.b64decode(value + "=" * (-len(value) % 4))
    return {name: value for name, value in found.items()
            if not name.startswith(("trusted.overlay.", "user.overlay."))}


class _Extractor:
    def __init__(self, root_fd: int, what: str, *, owners: bool, meter: Meter) -> None:
        self.root_fd = root_fd
        self.what = what
        self.owners = owners
        self.meter = meter
        self.current: str | None = None  # the entry being unpacked, for errors
        self._cached: tuple[tuple[str, ...], int] | None = None
        self._dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}

    # --- walking ---------------------------------------------------------------------------

    def _unsafe(self, name: str, why: str) -> UnsafeLayerError:
        return UnsafeLayerError(f"{self.what}: refused entry {name!r}: {why}", backend_name=BACKEND,
                                operation="pull")

    def _open_dir(self, parts: tuple[str, ...], name: str, *, create: bool) -> int:
        """An fd of directory ``parts`` below the root, opened without following any symlink; missing
        directories are created when ``create``. The caller must not close it (it is cached)."""
        if self._cached is not None and self._cached[0] == parts:
            return self._cached[1]
        start, fd = self._nearest(parts)
        try:
            for part in parts[len(start):]:
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise self._unsafe(name, f"{'/'.join(parts)} does not exist in this layer") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        kind = "a symlink" if stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode) else "not a directory"
                        raise self._unsafe(name, f"path prefix {part!r} is {kind}") from None
                    raise
                os.close(fd)
                fd = next_fd
        except BaseException:
            os.close(fd)
            raise
        self._forget()
        self._cached = (parts, fd)
        return fd

    def _nearest(self, parts: tuple[str, ...]) -> tuple[tuple[str, ...], int]:
        """Where to start walking to ``parts``: the cached directory when it is on the way (a deep
        tree's entries come one level apart; walking each from the root would be quadratic), or
        its parent when ``parts`` is that parent (``finish`` goes up, deepest first), else the root.
        Returns the components already walked and a new descriptor of that point."""
        if self._cached is not None:
            cached, fd = self._cached
            if parts[:len(cached)] == cached:
                return cached, os.dup(fd)
            if cached[:-1] == parts:  # ".." of a directory opened without following symlinks
                return parts, os.open("..", _DIR_FLAGS, dir_fd=fd)
        return (), os.dup(self.root_fd)

    def _forget(self) -> None:
        if self._cached is not None:
            os.close(self._cached[1])
            self._cached = None

    def close(self) -> None:
        self._forget()

    def _clear(self, parent: int, parts: tuple[str, ...], *, keep_dir: bool = False) -> bool:
        """Remove ``parts`` (in ``parent``), which a later entry replaces. Returns True when a
        directory was kept."""
        base = parts[-1]
        try:
            st = os.lstat(base, dir_fd=parent)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            if self._cached is not None and self._cached[0][:len(parts)] == parts:
                self._forget()  # the cached directory is inside the one going away
            remove_at(parent, base)
            self._dirs = {key: value for key, value in self._dirs.items() if key[:len(parts)] != parts}
        else:
            os.unlink(base, dir_fd=parent)
        return False

    # --- entries ---------------------------------------------------------------------------

    def entry(self, archive: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.current = member.name
        parts = split_name(member.name, self.what)
        check_member(member, self.what)
        if not parts:
            if member.isdir():
                self._dirs[()] = member
            return
        base = parts[-1]
        parent = self._open_dir(parts[:-1], member.name, create=True)
        if base == OPAQUE:
            os.setxattr(parent, OPAQUE_XATTR, b"y")
            return
        if base.startswith(".wh..wh."):
            return  # aufs metadata (.wh..wh.plnk and friends)
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, base[len(WHITEOUT_PREFIX):], member.name)
            return
        if member.isdir():
            if not self._clear(parent, parts, keep_dir=True):
                os.mkdir(base, 0o700, dir_fd=parent)
            if self.owners:
                os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
            self._set_xattrs(base, parent, member)
            self._dirs[parts] = member
            return
        self._clear(parent, parts)
        if member.isreg():
            self._file(archive, member, parent, base)
        elif member.issym():
            os.symlink(member.linkname, base, dir_fd=parent)
            self._owner_and_time(base, parent, member, chmod=False)
        elif member.islnk():
            self._hardlink(member, parent, base)
        elif member.ischr() or member.isblk():
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=parent)
            self._owner_and_time(base, parent, member)
        elif member.isfifo():
            os.mkfifo(base, 0o600, dir_fd=parent)
            self._owner_and_time(base, parent, member)

    def _whiteout(self, parent: int, hidden: str, name: str) -> None:
        if not hidden or hidden in (".", ".."):
            raise self._unsafe(name, "malformed whiteout")
        with contextlib.suppress(FileNotFoundError):
            os.lstat(hidden, dir_fd=parent)
            return  # the entry itself is in this layer: a whiteout only hides lower layers
        os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent)

    def _file(self, archive: tarfile.TarFile, member: tarfile.TarInfo, parent: int, base: str) -> None:
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=parent)
        try:
            self.meter.add_content(member.size)  # before a byte is written (a sparse entry's real size)
            source = archive.extractfile(member)
            if source is not None:
                written = 0
                while chunk := source.read(CHUNK):
                    written = write_sparse(fd, chunk, written)
                if written > member.size:
                    self.meter.add_content(written - member.size)
                os.ftruncate(fd, written)  # a file that ends in a hole
            if self.owners:
                os.fchown(fd, member.uid, member.gid)
            os.fchmod(fd, member.mode & 0o7777)
            self._set_xattrs(fd, None, member)
            os.utime(fd, ns=_nanoseconds(member.mtime))
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, parent: int, base: str) -> None:
        target = split_name(member.linkname, self.what)
        if not target:
            raise self._unsafe(member.name, "hardlink to the layer root")
        # Open the target's directory on a dup of the root, so the cached parent stays valid.
        fd = os.dup(self.root_fd)
        try:
            for part in target[:-1]:
                try:
                    next_fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    raise self._unsafe(member.name, f"hardlink target {member.linkname!r} is not in this layer") \
                        from None
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        raise self._unsafe(member.name, f"hardlink target prefix {part!r} is not a directory") \
                            from None
                    raise
                os.close(fd)
                fd = next_fd
            try:
                os.link(target[-1], base, src_dir_fd=fd, dst_dir_fd=parent, follow_symlinks=False)
            except FileNotFoundError:
                raise self._unsafe(member.name, f"hardlink target {member.linkname!r} is not in this layer") \
                    from None
        finally:
            os.close(fd)

    def _owner_and_time(self, base: str, parent: int, member: tarfile.TarInfo, *, chmod: bool = True) -> None:
        if self.owners:
            os.chown(base, member.uid, member.gid, dir_fd=parent, follow_symlinks=False)
        if chmod:  # never a symlink here; the node was just created by us in a private directory
            os.chmod(base, member.mode & 0o7777, dir_fd=parent)
        os.utime(base, ns=_nanoseconds(member.mtime), dir_fd=parent, follow_symlinks=False)

    def _set_xattrs(self, target: int | str, parent: int | None, member: tarfile.TarInfo) -> None:
        for name, value in _xattrs(member).items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:  # a directory: open it (no symlink) to set the attribute on the fd
                    fd = os.open(target, _DIR_FLAGS, dir_fd=parent)
                    try:
                        os.setxattr(fd, name, value)
                    finally:
                        os.close(fd)
            except OSError as exc:
                if name == "security.selinux" and exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
                    continue
                raise ImagePullError(f"{self.what}: cannot set xattr {name} on {member.name!r}: {exc.strerror}",
                                     backend_name=BACKEND, operation="pull") from None

    def finish(self) -> None:
        """Directory modes and mtimes last, deepest first: creating children changed the mtimes, and
        a read-only mode set early would stop an unprivileged unpack."""
        self.current = None
        self._forget()
        for parts in sorted(self._dirs, key=len, reverse=True):
            member = self._dirs[parts]
            fd = self._open_dir(parts, member.name, create=False)
            os.chmod(fd, member.mode & 0o7777)
            os.utime(fd, ns=_nanoseconds(member.mtime))


def write_sparse(fd: int, data: bytes, offset: int) -> int:
    """Write ``data`` at ``offset`` of ``fd``, leaving holes for its zero runs of whole
    HOLE_BLOCKs (the file's end is set by the caller: a trailing hole needs ftruncate).
    Returns the offset after ``data``."""
    if data == (_ZEROS if len(data) == CHUNK else bytes(len(data))):
        return offset + len(data)
    if _ZERO_BLOCK not in data:  # no zero run long enough anywhere: one write (a fast search)
        _write_at(fd, data, 0, len(data), offset)
        return offset + len(data)
    start = 0  # of the data run not yet written
    position = 0
    end = len(data)
    while position < end:
        stop = min(position + HOLE_BLOCK, end)
        if stop - position == HOLE_BLOCK and data[position:stop] == _ZERO_BLOCK:
            _write_at(fd, data, start, position, offset)
            start = stop
        position = stop
    _write_at(fd, data, start, end, offset)
    return offset + end


def _write_at(fd: int, data: bytes, start: int, stop: int, offset: int) -> None:
    view = memoryview(data)[start:stop]
    position = offset + start
    while view:
        count = os.pwrite(fd, view, position)
        view, position = view[count:], position + count
