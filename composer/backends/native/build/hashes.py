"""The content digests of the files the builder hashes for its cache keys (COPY/ADD sources, bind
mounts' sources), remembered by what ``stat`` says of each file, so a file unchanged since the
last build is not read again: BuildKit's content hash cache keeps its digests in the same way,
by the file's stat. ``<store root>/cache/hashes.json``, one entry per file.

What an entry is keyed by, and what that key cannot miss: the path, device and inode (a file
replaced by a rename, or another file system mounted there, is another file), size,
``mtime_ns`` and ``ctime_ns``. An edit whose size and mtime are put back (``touch -d``) still
changes the ctime, which no one can set; so do chmod, chown and link counts (a needless rehash).
What the ctime cannot show is an edit within the file system's timestamp granule of the hashing
(the kernel's coarse clock): a file changed less than ``RACY_SECONDS`` before it was hashed is
not remembered (git's "racily clean" entries), so its next write, however quick, is seen.

Concurrency: builds in parallel each write the whole file atomically (the last one's entries
win; a lost entry is only a rehash). An unreadable file is an empty cache. ``composer builder
prune --all`` removes it (build.cache.drop_records).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from composer import durable
from composer.backends.native.image.layers import CHUNK

FILE = ("cache", "hashes.json")  # under the store's root
VERSION = 1
RACY_SECONDS = 1.0  # a file changed this recently when hashed is not remembered
MAX_ENTRIES = 100_000  # the least recently used go first


def file_digest(path: Any) -> str:
    """The sha256 (hex) of a file's content, read whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _key(path: str, info: os.stat_result) -> str:
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{info.st_ctime_ns}:{path}"


class ContentHashes:
    """The digests known for ``store_root``; ``digest`` answers from them or reads the file,
    ``save`` writes what was learnt. Thread-safe (stages are hashed in parallel)."""

    def __init__(self, store_root: Path) -> None:
        self.path = store_root.joinpath(*FILE)
        self.tmp_dir = store_root / "tmp"
        self.lock = threading.Lock()
        self.known: dict[str, str] | None = None  # read on first use
        self.used: dict[str, str] = {}  # looked up or learnt by this build, kept first by save
        self.learnt = False

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict) or data.get("version") != VERSION or not isinstance(data.get("files"), dict):
            return {}
        return {str(key): str(value) for key, value in data["files"].items()}

    def digest(self, path: Path | str) -> str:
        """The sha256 (hex) of the file at ``path`` (links followed, as it is read)."""
        name = os.fspath(path)
        if not name.startswith("/") or "/." in name or "//" in name:  # the walk's paths are clean already
            name = os.path.abspath(name)
        before = os.stat(name)
        key = _key(name, before)
        with self.lock:
            if self.known is None:
                self.known = self._load()
            found = self.known.get(key)
            if found is not None:
                self.used[key] = found
                return found
        started = time.time()
        found = file_digest(name)
        after = os.stat(name)
        changed = max(after.st_mtime_ns, after.st_ctime_ns) / 1e9
        if _key(name, after) == key and changed < started - RACY_SECONDS:
            with self.lock:
                self.used[key] = found
                self.learnt = True
        return found

    def save(self) -> None:
        """Write the entries back, when this build learnt any (those it used last: the newest)."""
        with self.lock:
            if not self.learnt:
                return
            files = {key: value for key, value in self._load().items() if key not in self.used}
            files.update(self.used)
            if len(files) > MAX_ENTRIES:
                files = dict(list(files.items())[-MAX_ENTRIES:])
            self.learnt = False
        data = json.dumps({"version": VERSION, "files": files}, separators=(",", ":")).encode()
        with contextlib.suppress(OSError):  # a cache: a full disk costs rehashing, nothing else
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            # not fsynced: a crash loses entries at worst (durable.write_file is still atomic)
            durable.write_file(self.path, data, mode=0o600, tmp_dir=self.tmp_dir, sync=False)
