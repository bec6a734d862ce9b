"""ADD's remote and archive sources.

- ``fetch``: an http(s) URL downloaded on the host side (as BuildKit's source op does, not from
  a build container), into the store's ``tmp/``; only http and https, redirects included;
  ``--checksum`` (``sha256:``, ``sha384:``, ``sha512:`` and a hex digest) checked before the file
  is used. The file is named after the URL's last path element and gets mode 0600 and the
  ``Last-Modified`` time, as Docker documents; it is never extracted.
- ``ArchiveSource``: a local tar archive (plain, gzip, bzip2 or xz, detected by content as
  Docker's ``DecompressStream`` does; zstd is refused in one line) read as a COPY source whose
  files keep the archive's owners and modes. Nothing is extracted on the host by name: each
  file's bytes are spooled to a numbered file in a private folder and go from there into the
  layer, so hostile names cannot touch the host (``..`` and a leading ``/`` are cleaned to stay
  under the destination). What an archive unpacks to is metered as a pulled layer is
  (COMPOSER_LAYER_MAX_BYTES, COMPOSER_LAYER_MAX_RATIO): a decompression bomb is a one-line
  error. Hard links become copies; devices, fifos and whiteout names are skipped.
"""

from __future__ import annotations

import email.utils
import hashlib
import os
import posixpath
import stat
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from composer.backends.native.build.copy import CopyError, Item, Source
from composer.backends.native.image.layers import RATIO_FLOOR, LayerBudget

ALGORITHMS = ("sha256", "sha384", "sha512")
MAGIC = ((b"\x1f\x8b\x08", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"))
CHUNK = 1 << 20


def compression(path: Path) -> str | None:
    """The compression of a file by its first bytes (Docker's DetectCompression), or None."""
    with path.open("rb") as handle:
        head = handle.read(8)
    return next((name for magic, name in MAGIC if head.startswith(magic)), None)


def is_archive(path: Path) -> bool:
    """Whether ADD extracts ``path``: a tar, plain or compressed (else it is copied as it is).

    :raises CopyError: a zstd file (Python's tarfile cannot read it here).
    """
    kind = compression(path)
    if kind == "zstd":
        raise CopyError(f"ADD of a zstd-compressed archive ({path.name}) is not supported by the native builder")
    try:
        with tarfile.open(path, "r:*") as archive:
            return archive.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _result(mode: int, uid: int, gid: int, size: int, mtime: float) -> os.stat_result:
    return os.stat_result((mode, 0, 0, 1, uid, gid, size, int(mtime), int(mtime), int(mtime)))


class ArchiveSource(Source):
    """The members of one local tar archive, as a folder's contents; file contents spooled into
    ``spool`` (a private folder the caller removes)."""

    def __init__(self, path: Path, spool: Path) -> None:
        self.path = path
        self.spool = spool
        budget = LayerBudget.from_env()
        self.limit = min(budget.max_bytes, max(int(budget.max_ratio * path.stat().st_size), RATIO_FLOOR))

    def owned(self) -> bool:
        return True

    def match(self, pattern: str) -> list[tuple[str, ...]]:
        return [()]

    def _spooled(self, handle: IO[bytes] | None, number: int, total: int) -> tuple[Path, int]:
        target = self.spool / str(number)
        with target.open("wb") as out:
            while handle is not None and (chunk := handle.read(CHUNK)):
                total += len(chunk)
                if total > self.limit:
                    raise CopyError(f"{self.path.name}: the archive unpacks to more than {self.limit} bytes "
                                    "(COMPOSER_LAYER_MAX_BYTES, COMPOSER_LAYER_MAX_RATIO)")
                out.write(chunk)
        return target, total

    def walk(self, parts: tuple[str, ...]) -> Iterator[Item]:
        found: dict[tuple[str, ...], Item] = {}
        now = time.time()
        total = 0
        with tarfile.open(self.path, "r:*") as archive:
            for member in archive:
                name = posixpath.normpath("/" + member.name).lstrip("/")
                if not name or name == ".":
                    continue
                here = tuple(name.split("/"))
                if here[-1].startswith(".wh."):
                    continue
                for depth in range(1, len(here)):  # parents the archive does not list
                    found.setdefault(here[:depth], Item(here[:depth], _result(stat.S_IFDIR | 0o755, 0, 0, 0, now),
                                                        None))
                mode = member.mode & 0o7777
                if member.isdir():
                    found[here] = Item(here, _result(stat.S_IFDIR | mode, member.uid, member.gid, 0, member.mtime),
                                       None)
                elif member.issym():
                    found[here] = Item(here, _result(stat.S_IFLNK | 0o777, member.uid, member.gid, 0, member.mtime),
                                       None, link=member.linkname)
                elif member.isfile() or member.islnk():
                    try:
                        handle = archive.extractfile(member)
                    except (KeyError, tarfile.TarError):  # a hard link to a member that is not there
                        continue
                    spooled, total = self._spooled(handle, len(found), total)
                    size = spooled.stat().st_size
                    found[here] = Item(here, _result(stat.S_IFREG | mode, member.uid, member.gid, size,
                                                     member.mtime), spooled)
        yield Item((), _result(stat.S_IFDIR | 0o755, 0, 0, 0, now), None)
        for key in sorted(found):
            yield found[key]


@dataclass(frozen=True, slots=True)
class Fetched:
    path: Path
    name: str
    mtime: float | None


class _Redirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise CopyError(f"{req.full_url}: redirected to {newurl}, not http(s)")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def parse_checksum(text: str) -> tuple[str, str] | None:
    """``--checksum``'s algorithm and hex digest (None when not given).

    :raises CopyError: an unknown algorithm or a malformed digest.
    """
    if not text:
        return None
    algorithm, colon, digest = text.partition(":")
    if not colon or algorithm not in ALGORITHMS:
        raise CopyError(f"invalid checksum {text!r} (sha256:, sha384: or sha512: and a hex digest)")
    size = hashlib.new(algorithm).digest_size * 2
    if len(digest) != size or any(char not in "0123456789abcdef" for char in digest):
        raise CopyError(f"invalid checksum {text!r}: {size} lower-case hex digits are expected")
    return algorithm, digest


def fetch(url: str, folder: Path, checksum: str, timeout: float = 60.0) -> Fetched:
    """Download ``url`` into a new file in ``folder``.

    :raises CopyError: not http(s), the request failed, or the checksum does not match (the file
        is removed then).
    """
    expected = parse_checksum(checksum)
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise CopyError(f"{url}: only http and https URLs can be added")
    opener = urllib.request.build_opener(_Redirects)
    target = folder / f"add-url.{os.getpid()}.{hashlib.sha256(url.encode()).hexdigest()[:16]}.{time.monotonic_ns()}"
    digest = hashlib.new(expected[0] if expected else "sha256")
    try:
        with opener.open(urllib.request.Request(url, headers={"User-Agent": "composer"}), timeout=timeout) as reply, \
                target.open("wb") as out:
            while chunk := reply.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
            modified = reply.headers.get("Last-Modified")
            final = reply.geturl()
    except CopyError:
        target.unlink(missing_ok=True)
        raise
    except urllib.error.HTTPError as exc:
        target.unlink(missing_ok=True)
        exc.close()
        raise CopyError(f"failed to fetch {url}: invalid response status {exc.code} ({exc.reason})") from None
    except (OSError, ValueError) as exc:
        target.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or exc
        raise CopyError(f"failed to fetch {url}: {reason}") from None
    if expected is not None and digest.hexdigest() != expected[1]:
        target.unlink(missing_ok=True)
        raise CopyError(f"{url}: digest mismatch {expected[0]}:{digest.hexdigest()}: expected "
                        f"{expected[0]}:{expected[1]}")
    os.chmod(target, 0o600)
    mtime = None
    if modified:
        try:
            mtime = email.utils.parsedate_to_datetime(modified).timestamp()
        except (TypeError, ValueError):
            mtime = None
    if mtime is not None:
        os.utime(target, (mtime, mtime))
    name = posixpath.basename(urllib.parse.urlsplit(final).path.rstrip("/")) or "index.html"
    return Fetched(target, name, mtime)


class FetchedSource(Source):
    """A downloaded file as a COPY source: one file named as the URL says, root's, mode 0600."""

    def __init__(self, fetched: Fetched) -> None:
        self.fetched = fetched

    def match(self, pattern: str) -> list[tuple[str, ...]]:
        return [(self.fetched.name,)]

    def walk(self, parts: tuple[str, ...]) -> Iterator[Item]:
        info = os.lstat(self.fetched.path)
        mtime = self.fetched.mtime if self.fetched.mtime is not None else time.time()
        yield Item((), _result(stat.S_IFREG | 0o600, 0, 0, info.st_size, mtime), self.fetched.path)
