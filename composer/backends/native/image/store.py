"""The native backend's content-addressed image store.

Layout under the root (COMPOSER_ROOT, ``/var/lib/composer`` by default)::

    blobs/sha256/<hex>        manifests, indexes, configs and layer blobs, each verified before it lands
    layers/<chain hex>/       one unpacked layer per ChainID: diff/ (overlayfs form) and layer.json
    l/<short>                 symlink -> ../layers/<chain hex>/diff; short names keep overlay's
                              lowerdir= option (one page) small for images of many layers
    images.json               the index: reference -> manifest, config, pull time
    incoming/                 partial downloads (kept, so an interrupted pull resumes) and layers
                              being unpacked (discarded and redone)
    tmp/                      temporary files of atomic writes, and trash being deleted
    locks/                    fcntl lock files
    cache/steps/<key>.json    the native builder's step cache (composer.backends.native.build.cache):
                              each record's "blobs" and "chains" are kept by gc like an image's

Consistency: a name under ``blobs/`` or ``layers/`` only ever appears by ``rename(2)`` of content
that was complete, verified and fsynced; the index is rewritten whole (temp + fsync + rename) and
names only content that is already there. A kill -9 at any point leaves, at worst, files under
``incoming/`` and ``tmp/``: the next pull resumes or redoes them and ``gc`` removes them.

Concurrency: every user of the store holds ``store.lock`` shared (``gc`` holds it exclusive);
each blob and each layer has its own lock while it is written, so two pulls of images that share
layers download and unpack each layer once; the index has its own lock for read-modify-write.

Room for later: a native builder writes layers through ``add_layer`` (any populate function) and
images through ``put``; a rootless root is just another ``ImageStore(root)`` whose layers use the
``user.overlay.*`` whiteout form (``whiteout_format``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from composer import durable, faults
from composer.backends.native.image import oci
from composer.backends.native.trees import remove_tree as remove_tree  # re-exported: its users import it from here
from composer.durable import fsync_dir as fsync_dir  # re-exported: its users import it from here
from composer.errors import DigestMismatchError, ImageStoreError

DEFAULT_ROOT = "/var/lib/composer"
BACKEND = "native"
INDEX_VERSION = 1
SHORT_LINK_LENGTH = 20  # hex digits of the ChainID in l/<short>: 80 bits


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """COMPOSER_ROOT, or ``/var/lib/composer``."""
    env = os.environ if environ is None else environ
    return Path(env.get("COMPOSER_ROOT") or DEFAULT_ROOT)


def _error(message: str, operation: str = "store", hint: str | None = None) -> ImageStoreError:
    return ImageStoreError(message, backend_name=BACKEND, operation=operation, hint=hint)


NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def out_of_space(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) is a full disk or quota: ENOSPC, EDQUOT."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def store_full(root: Path, what: str, operation: str) -> ImageStoreError:
    """The one line for a store that ran out of space while ``what``; what was written in part is
    gone (a partial download under incoming/ stays: the next pull resumes it)."""
    return _error(f"the image store {root} is full: no space left on device while {what}", operation,
                  hint="free space on its filesystem (or set COMPOSER_ROOT elsewhere) and run the command again")


def syncfs(path: Path | str) -> None:
    """Flush the filesystem holding ``path`` (syncfs(2)); os.sync() where libc lacks it."""
    import ctypes
    import ctypes.util

    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        if getattr(libc, "syncfs", None) is None or libc.syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, tmp_dir: Path | None = None, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` so that readers see the old content or the new one, never a part
    (composer.durable.write_file: a temp name of its own, fsync, rename, fsync of the folder)."""
    durable.write_file(path, data, mode=mode, tmp_dir=tmp_dir)


@contextlib.contextmanager
def flock(path: Path, *, exclusive: bool = True, blocking: bool = True) -> Iterator[bool]:
    """Hold an fcntl lock on ``path`` (created if missing); yields False when not ``blocking`` and
    someone else holds it. Separate opens conflict, so this also excludes threads of one process."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        flags = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | (0 if blocking else fcntl.LOCK_NB)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


class ImageRecord(NamedTuple):
    """One entry of the index: what a reference resolved to when it was pulled or loaded."""

    reference: str  # fully qualified, e.g. docker.io/library/busybox:latest
    manifest: str  # digest of the image manifest (the platform-specific one)
    config: str  # digest of the image config (the image ID)
    index_digest: str | None = None  # digest of the index or manifest list it was chosen from
    platform: str = "linux/amd64"
    pulled: float = 0.0  # time.time() of the pull or load
    source: str = "pull"  # pull, load, build...

    def to_json(self) -> dict[str, Any]:
        return self._asdict()

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ImageRecord:
        return cls(str(data["reference"]), str(data["manifest"]), str(data["config"]),
                   data.get("index_digest"), str(data.get("platform") or "linux/amd64"),
                   float(data.get("pulled") or 0.0), str(data.get("source") or "pull"))


class Layer(NamedTuple):
    chain_id: str
    diff_id: str
    parent: str | None
    size: int  # bytes of the uncompressed tar
    link: str  # the short name under l/
    path: Path  # the diff/ directory


class GcReport(NamedTuple):
    blobs: int
    layers: int
    bytes_freed: int


class BlobWriter:
    """A blob being written into ``incoming/``; resumes a partial file left by an earlier run.

    ``offset`` is how many bytes are already there (ask the registry for the rest with a Range
    header); ``write`` hashes as it goes; ``commit`` checks size and digest and renames the blob
    into place. Use through ``ImageStore.ingest`` only."""

    def __init__(self, store: ImageStore, digest: str, size: int | None) -> None:
        self.store = store
        self.digest = digest
        self.size = size
        self.path = store.root / "incoming" / oci.digest_hex(digest)
        self._hash = hashlib.sha256()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.offset = 0
        try:
            while chunk := os.read(self._fd, 1 << 20):
                self._hash.update(chunk)
                self.offset += len(chunk)
        except BaseException:
            os.close(self._fd)
            raise
        if size is not None and self.offset > size:
            self.restart()

    def restart(self) -> None:
        """Drop what is there (the server ignored our Range, or the partial file is bad)."""
        os.ftruncate(self._fd, 0)
        os.lseek(self._fd, 0, os.SEEK_SET)
        self._hash = hashlib.sha256()
        self.offset = 0

    def write(self, data: bytes) -> None:
        if self.size is not None and self.offset + len(data) > self.size:
            self.discard()
            raise DigestMismatchError(f"blob {self.digest}: more than the {self.size} bytes announced",
                                      backend_name=BACKEND, operation="pull")
        self._hash.update(data)
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        self.offset += len(data)

    def commit(self) -> Path:
        """Verify and move into ``blobs/``.

        :raises DigestMismatchError: wrong size or digest; the partial file is removed.
        """
        actual = "sha256:" + self._hash.hexdigest()
        if (self.size is not None and self.offset != self.size) or actual != self.digest:
            self.discard()
            got = f"{self.offset} bytes" if self.size is not None and self.offset != self.size else actual
            raise DigestMismatchError(f"blob {self.digest} failed verification: got {got}",
                                      backend_name=BACKEND, operation="pull")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        target = self.store.blob_path(self.digest)
        os.chmod(self.path, 0o644)
        os.replace(self.path, target)
        fsync_dir(target.parent)
        return target

    def discard(self) -> None:
        self.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class ImageStore:
    """The store at ``root``. Cheap to construct; ``open`` creates the layout."""

    def __init__(self, root: Path | str, *, whiteout_format: str = "overlay") -> None:
        self.root = Path(root)
        self.whiteout_format = whiteout_format
        # Content-addressed, so never stale: image configs by digest (every container create reads
        # its image's config three times). The index is kept with the stat it was read under.
        self._configs: dict[str, dict[str, Any]] = {}
        self._index: tuple[tuple[int, int, int], dict[str, Any]] | None = None

    @classmethod
    def open(cls, root: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> ImageStore:
        """The store at ``root`` (default: ``default_root(environ)``), its directories created.

        :raises ImageStoreError: the root cannot be created or written.
        """
        store = cls(root if root is not None else default_root(environ))
        try:
            store.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            for sub in ("blobs/sha256", "layers", "l", "incoming", "tmp", "locks"):
                (store.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise _error(f"cannot create the image store at {store.root}: {exc.strerror}",
                         hint="set COMPOSER_ROOT to a writable directory") from None
        return store

    # --- locking -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def session(self) -> Iterator[None]:
        """Hold the store shared (pulls, loads, builds); ``gc`` waits for every session to end."""
        with flock(self.root / "locks" / "store.lock", exclusive=False):
            yield

    def _item_lock(self, name: str) -> contextlib.AbstractContextManager[bool]:
        return flock(self.root / "locks" / f"{name}.lock")

    # --- blobs ---------------------------------------------------------------------------------

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / oci.digest_hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def read_blob(self, digest: str) -> bytes:
        """:raises ImageStoreError: the blob is not in the store."""
        try:
            return self.blob_path(digest).read_bytes()
        except FileNotFoundError:
            raise _error(f"blob {digest} is not in the image store at {self.root}") from None

    def write_blob(self, data: bytes, digest: str | None = None) -> str:
        """Store a small blob (manifest, config) and return its digest.

        :raises DigestMismatchError: ``digest`` was given and ``data`` does not match it.
        """
        actual = oci.sha256_digest(data)
        if digest is not None and actual != digest:
            raise DigestMismatchError(f"blob {digest} failed verification: got {actual}",
                                      backend_name=BACKEND, operation="pull")
        path = self.blob_path(actual)
        if not path.is_file():
            atomic_write(path, data, tmp_dir=self.root / "tmp")
        return actual

    @contextlib.contextmanager
    def ingest(self, digest: str, size: int | None = None) -> Iterator[BlobWriter | None]:
        """Write a blob by streaming: yields None when it is (or becomes, by another writer) present,
        else a BlobWriter holding the blob's lock. Leaving without ``commit`` keeps the partial
        file for the next attempt."""
        oci.digest_hex(digest)
        if self.has_blob(digest):
            yield None
            return
        with self._item_lock(f"blob-{oci.digest_hex(digest)}"):
            if self.has_blob(digest):
                yield None
                return
            writer = BlobWriter(self, digest, size)
            try:
                yield writer
            finally:
                writer.close()

    # --- layers --------------------------------------------------------------------------------

    def layer_root(self, chain_id: str) -> Path:
        return self.root / "layers" / oci.digest_hex(chain_id)

    def has_layer(self, chain_id: str) -> bool:
        return (self.layer_root(chain_id) / "layer.json").is_file()

    def layer(self, chain_id: str) -> Layer:
        """:raises ImageStoreError: the layer is not unpacked in the store."""
        root = self.layer_root(chain_id)
        try:
            meta = json.loads((root / "layer.json").read_bytes())
        except (FileNotFoundError, ValueError):
            raise _error(f"layer {chain_id} is not in the image store at {self.root}") from None
        self._ensure_link(chain_id)
        return Layer(chain_id, meta["diff_id"], meta.get("parent"), int(meta.get("size") or 0), meta["link"],
                     root / "diff")

    def link_path(self, chain_id: str) -> Path:
        return self.root / "l" / oci.digest_hex(chain_id)[:SHORT_LINK_LENGTH]

    def _ensure_link(self, chain_id: str) -> None:
        link = self.link_path(chain_id)
        target = f"../layers/{oci.digest_hex(chain_id)}/diff"
        with contextlib.suppress(OSError):
            if os.readlink(link) == target:
                return
        tmp = self.root / "tmp" / f"link.{os.getpid()}.{secrets.token_hex(4)}"
        os.symlink(target, tmp)
        os.replace(tmp, link)

    def add_layer(self, chain_id: str, diff_id: str, parent: str | None,
                  populate: Callable[[Path], int]) -> Layer:
        """Unpack a layer once: ``populate(diff_dir)`` fills an empty directory and returns the
        uncompressed size; the directory becomes ``layers/<chain>`` only when it returns. Another
        thread or process unpacking the same ChainID waits and then finds it done; a directory
        left by a killed run is discarded and redone."""
        if self.has_layer(chain_id):
            return self.layer(chain_id)
        hexid = oci.digest_hex(chain_id)
        with self._item_lock(f"layer-{hexid}"):
            if self.has_layer(chain_id):
                return self.layer(chain_id)
            work = self.root / "incoming" / f"layer-{hexid}"
            remove_tree(work)
            work.mkdir(mode=0o700)
            diff = work / "diff"
            diff.mkdir(mode=0o755)
            try:
                size = populate(diff)
                faults.point("store.layer.extracted")
                meta = {"chain_id": chain_id, "diff_id": diff_id, "parent": parent, "size": size,
                        "link": hexid[:SHORT_LINK_LENGTH], "whiteouts": self.whiteout_format,
                        "created": time.time()}
                atomic_write(work / "layer.json", json.dumps(meta, indent=1).encode())
                syncfs(work)
                target = self.layer_root(chain_id)
                if target.exists():  # a directory without layer.json: left by a crash in a rename
                    self._trash(target)
                os.rename(work, target)
                fsync_dir(target.parent)
            except BaseException:
                remove_tree(work)
                raise
            return self.layer(chain_id)

    def _trash(self, path: Path) -> None:
        trash = self.root / "tmp" / f"trash.{os.getpid()}.{secrets.token_hex(4)}"
        os.rename(path, trash)
        remove_tree(trash)

    # --- the index -----------------------------------------------------------------------------

    def _read_index(self) -> dict[str, Any]:
        path = self.root / "images.json"
        try:
            data = json.loads(path.read_bytes())
        except FileNotFoundError:
            return {"version": INDEX_VERSION, "images": {}}
        except ValueError as exc:
            raise _error(f"the image index {path} is damaged: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("images"), dict):
            raise _error(f"the image index {path} is damaged: no images object")
        return data

    def _write_index(self, data: dict[str, Any]) -> None:
        durable.write_file(self.root / "images.json", json.dumps(data, indent=1, sort_keys=True).encode(),
                           tmp_dir=self.root / "tmp", mode=0o600, fault="store.index.writing")

    def _current_index(self) -> dict[str, Any]:
        """The index for reading only (never mutated): re-read when the file changed."""
        try:
            info = os.stat(self.root / "images.json")
        except FileNotFoundError:
            return self._read_index()
        key = (info.st_ino, info.st_size, info.st_mtime_ns)
        if self._index is None or self._index[0] != key:
            self._index = (key, self._read_index())
        return self._index[1]

    def get(self, reference: str) -> ImageRecord | None:
        entry = self._current_index()["images"].get(reference)
        return ImageRecord.from_json(entry) if isinstance(entry, dict) else None

    def images(self) -> list[ImageRecord]:
        return [ImageRecord.from_json(entry) for _, entry in sorted(self._current_index()["images"].items())]

    def put(self, record: ImageRecord) -> None:
        """Point ``record.reference`` at its manifest; the manifest, config and every layer must be
        in the store already (so the index never names missing content).

        :raises ImageStoreError: some of that content is missing.
        """
        for digest in (record.manifest, record.config):
            if not self.has_blob(digest):
                raise _error(f"cannot tag {record.reference}: blob {digest} is not in the store")
        for chain in self.chain_ids(record):
            if not self.has_layer(chain):
                raise _error(f"cannot tag {record.reference}: layer {chain} is not unpacked")
        with self._item_lock("index"):
            data = self._read_index()
            data["images"][record.reference] = record.to_json()
            self._write_index(data)

    def remove(self, reference: str) -> bool:
        """Untag; content stays until ``gc``. Returns whether the reference was there."""
        with self._item_lock("index"):
            data = self._read_index()
            found = data["images"].pop(reference, None) is not None
            if found:
                self._write_index(data)
        return found

    # --- images --------------------------------------------------------------------------------

    def manifest(self, record: ImageRecord) -> dict[str, Any]:
        return oci.load_json(self.read_blob(record.manifest), f"manifest {record.manifest}")

    def config(self, record: ImageRecord) -> dict[str, Any]:
        """The image's config (shared: callers must not change it)."""
        found = self._configs.get(record.config)
        if found is None:
            found = self._configs[record.config] = oci.load_json(self.read_blob(record.config),
                                                                 f"config {record.config}")
        return found

    def chain_ids(self, record: ImageRecord) -> list[str]:
        diff_ids = (self.config(record).get("rootfs") or {}).get("diff_ids") or []
        return oci.chain_ids([str(d) for d in diff_ids])

    def layers(self, record: ImageRecord) -> list[Layer]:
        """The image's unpacked layers, bottom first (reverse it for overlay's lowerdir=)."""
        return [self.layer(chain) for chain in self.chain_ids(record)]

    # --- garbage collection --------------------------------------------------------------------

    def cache_references(self) -> tuple[set[str], set[str]]:
        """The blob digests and ChainIDs the builder's cache records keep (``cache/steps/``):
        roots for gc as the index's images are."""
        blobs: set[str] = set()
        chains: set[str] = set()
        folder = self.root / "cache" / "steps"
        if not folder.is_dir():
            return blobs, chains
        for path in folder.glob("*.json"):
            with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
                data = json.loads(path.read_bytes())
                blobs.update(str(digest) for digest in data.get("blobs") or [])
                chains.update(str(chain) for chain in data.get("chains") or [])
        return blobs, chains

    def gc(self) -> GcReport:
        """Remove every blob and layer no index entry reaches, partial downloads and leftovers.
        Waits until no session holds the store."""
        with flock(self.root / "locks" / "store.lock", exclusive=True):
            keep_blobs: set[str] = set()
            keep_layers: set[str] = set()
            for record in self.images():
                keep_blobs.update(d for d in (record.index_digest, record.manifest, record.config) if d)
                with contextlib.suppress(ImageStoreError, ValueError, KeyError, TypeError):
                    keep_blobs.update(str(layer["digest"]) for layer in self.manifest(record).get("layers") or [])
                with contextlib.suppress(ImageStoreError, ValueError, KeyError, TypeError):
                    keep_layers.update(oci.digest_hex(chain) for chain in self.chain_ids(record))
            cached_blobs, cached_chains = self.cache_references()
            keep_blobs |= cached_blobs
            keep_layers.update(oci.digest_hex(chain) for chain in cached_chains if chain.startswith("sha256:"))
            keep_hex = {oci.digest_hex(d) for d in keep_blobs if d.startswith("sha256:")}
            blobs = freed = layers = 0
            for path in (self.root / "blobs" / "sha256").iterdir():
                if path.name not in keep_hex:
                    freed += path.lstat().st_size
                    path.unlink()
                    blobs += 1
            for path in (self.root / "layers").iterdir():
                if path.name not in keep_layers:
                    self._trash(path)
                    layers += 1
            for sub in ("l",):
                for path in (self.root / sub).iterdir():
                    if not path.exists():  # dangling: its layer is gone
                        path.unlink()
            for sub in ("incoming", "tmp", "locks"):
                for path in (self.root / sub).iterdir():
                    if path.name != "store.lock":
                        remove_tree(path)
            return GcReport(blobs, layers, freed)

