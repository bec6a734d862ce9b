"""A native container's log files: Docker's json-file lines, rotated as Docker's ``json-file``
and ``local`` drivers rotate them, and read back across the rotated files in order.

Files, oldest last: ``<log>.<max_file - 1>`` ... ``<log>.2``, ``<log>.1``, ``<log>`` (the one
written). With ``compress``, ``<log>.2`` and older are gzip files (``.gz``): the newest rotated
file stays plain so that a reader following the log finds the rest of the file it was reading
under its new name (same inode). Docker compresses ``.1`` too; the bound on the disk is the same
(``max_size`` x ``max_file``), and the compression runs at rotation, in the monitor (level 1:
about 0.1 s per 20 MB, once per 20 MB written, while the container's pipe buffers its output).

The writer side runs in the monitor (``init.py``, ``python -S``): ``os`` only; gzip is imported
when a file is compressed or read.
"""

from __future__ import annotations

import os

TYPE_CHECKING = False  # typing costs the monitor's start-up
if TYPE_CHECKING:
    from typing import Any

# Docker's local driver defaults (moby daemon/logger/local: defaultMaxFileSize, defaultMaxFileCount,
# defaultCompressLogs); native uses the size and count for json-file too unless max-size is set.
DEFAULT_MAX_SIZE = 20 * 1024 * 1024
DEFAULT_MAX_FILE = 5


def rotated_name(path: str, index: int, compress: bool) -> str:
    return f"{path}.{index}.gz" if compress and index >= 2 else f"{path}.{index}"


class RotatingFile:
    """The log as the monitor appends to it: rotated before a write that would take it past
    ``max_size`` bytes (0: never), keeping ``max_file`` files in all (1: the file is emptied)."""

    def __init__(self, path: str, max_size: int = 0, max_file: int = 1, compress: bool = False) -> None:
        self.path, self.max_size, self.max_file, self.compress = path, max_size, max(max_file, 1), compress
        self.fd = self._open()
        self.size = os.fstat(self.fd).st_size

    def _open(self, truncate: bool = False) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        return os.open(self.path, flags, 0o600)

    def write(self, data: bytes) -> None:
        """Append whole lines; what does not fit goes to the next file (a line longer than
        ``max_size`` alone in one)."""
        while self.max_size and self.size + len(data) > self.max_size:
            cut = data.rfind(b"\n", 0, self.max_size - self.size) + 1
            if not cut and not self.size:
                cut = data.find(b"\n") + 1 or len(data)
            if cut:
                self._append(data[:cut])
                data = data[cut:]
            self.rotate()
        if data:
            self._append(data)

    def _append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a pipe-sized write to a file is whole, but a short write must not lose the rest
            written = os.write(self.fd, view)
            view = view[written:]
        self.size += len(data)

    def rotate(self) -> None:
        os.close(self.fd)
        if self.max_file > 1:
            path, compress = self.path, self.compress
            for index in range(self.max_file - 1, 1, -1):  # .N-2 -> .N-1 ... .1 -> .2 (compressed on the way)
                source, target = rotated_name(path, index - 1, compress), rotated_name(path, index, compress)
                if not os.path.exists(source):
                    continue
                if index == 2 and compress:
                    _gzip(source, target)
                    os.unlink(source)
                else:
                    os.replace(source, target)
            os.replace(path, f"{path}.1")
        self.fd = self._open(truncate=True)
        self.size = 0

    def close(self) -> None:
        os.close(self.fd)


def _gzip(source: str, target: str) -> None:
    import gzip
    import shutil

    partial = target + ".tmp"
    with open(source, "rb") as plain, gzip.open(partial, "wb", compresslevel=1) as packed:
        shutil.copyfileobj(plain, packed, 1 << 20)
    os.replace(partial, target)


def log_files(path: str) -> list[str]:
    """The log's files, oldest first, the current one last (when it exists)."""
    folder, base = os.path.split(path)
    found: list[tuple[int, str]] = []
    try:
        names = os.listdir(folder or ".")
    except FileNotFoundError:
        return []
    for name in names:
        if not name.startswith(base + "."):
            continue
        index = name[len(base) + 1:].removesuffix(".gz")
        if index.isdigit():
            found.append((int(index), os.path.join(folder, name)))
    files = [name for _, name in sorted(found, reverse=True)]
    return [*files, path] if os.path.exists(path) else files


def read_file(name: str) -> bytes:
    """A log file's bytes (a rotated ``.gz`` one decompressed); b"" when it went away meanwhile."""
    try:
        if name.endswith(".gz"):
            import gzip

            with gzip.open(name, "rb") as packed:
                return packed.read()
        with open(name, "rb") as f:
            return f.read()
    except (FileNotFoundError, EOFError):
        return b""


def _complete(data: bytes) -> bytes:
    return data[:data.rfind(b"\n") + 1]


class Cursor:
    """Where a reader is in the log: the current file (its inode) and the offset read up to. Each
    ``read`` returns the complete lines written since, across a rotation in between (the rest of
    the file it was reading is then ``<log>.1``)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.inode: int | None = None
        self.offset = 0

    def read(self, tail: int | None = None) -> list[bytes]:
        """The new lines; on the first read every file's (the last ``tail`` lines only, when given)."""
        lines: list[bytes] = []
        first = self.inode is None
        try:
            f = open(self.path, "rb")
        except FileNotFoundError:
            f = None
        inode = os.fstat(f.fileno()).st_ino if f is not None else None
        if first:
            older = [name for name in log_files(self.path) if name != self.path]
            lines = self._older(older, tail)
        elif inode != self.inode:
            previous = f"{self.path}.1"
            try:
                if os.stat(previous).st_ino == self.inode:
                    with open(previous, "rb") as old:
                        old.seek(self.offset)
                        lines = _complete(old.read()).splitlines()
            except FileNotFoundError:
                pass
            self.offset = 0
        if f is None:
            self.inode = self.inode if not first else 0
            return lines[-tail:] if tail is not None and tail > 0 else ([] if tail == 0 else lines)
        with f:
            self.inode = inode
            f.seek(self.offset)
            data = _complete(f.read())
        self.offset += len(data)
        lines += data.splitlines()
        if first and tail is not None:
            return lines[-tail:] if tail > 0 else []
        return lines

    @staticmethod
    def _older(names: list[str], tail: int | None) -> list[bytes]:
        """The rotated files' lines, oldest first (from the newest back, only as many as ``tail``)."""
        if tail == 0:
            return []
        found: list[bytes] = []
        for name in reversed(names):
            found = _complete(read_file(name)).splitlines() + found
            if tail is not None and len(found) >= tail:
                break
        return found


def read_all(path: str) -> bytes:
    """Every complete line of the log, oldest first."""
    return b"".join(_complete(read_file(name)) for name in log_files(path))


def settings(data: dict[str, Any] | None) -> dict[str, Any]:
    """The ``logging`` of a container's configuration, with the defaults of a configuration
    written before it existed (json-file, rotated at Docker's local defaults)."""
    data = data or {}
    return {"driver": data.get("driver", "json-file"), "max_size": int(data.get("max_size", DEFAULT_MAX_SIZE)),
            "max_file": int(data.get("max_file", DEFAULT_MAX_FILE)), "compress": bool(data.get("compress", False))}
