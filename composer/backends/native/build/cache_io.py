"""``build.cache_to`` / ``build.cache_from`` of ``type=local``: the native builder's step cache
(composer.backends.native.build.cache) exported to a folder and imported from one, with
BuildKit's options: ``type=local,dest=DIR[,mode=min|max][,tag=T]`` and
``type=local,src=DIR[,tag=T|,digest=sha256:...]``. ``mode=min`` (the default, as BuildKit's)
exports the steps of the image's own layers (the final stage, and the stages it is FROM);
``mode=max`` every step this build went through, all stages.

The format: BuildKit's *layout*, our own *records*. The folder is an OCI image layout, as
BuildKit's local cache is (``oci-layout``, ``index.json`` naming a manifest per tag by its
``org.opencontainers.image.ref.name`` annotation, ``blobs/sha256/<hex>``); the manifest lists the
layer blobs as they are in the store, and its config is a document of ours, media type
``application/vnd.composer.native.buildcache.v1+json``::

    {"version": 1, "records": [{"key": "sha256:...", "description": "RUN make",
      "diff_ids": [...], "layers": [<descriptor>...], "empty": false, "created": "<RFC 3339>"}]}

one record per step, as the store's ``cache/steps/`` holds them. Why not BuildKit's cache config
(``application/vnd.buildkit.cacheconfig.v0``): its records are keyed by BuildKit's LLB digests,
which only BuildKit's solver computes; our keys are composer.backends.native.build.cache_key's.
Writing BuildKit's media type with our keys would let BuildKit read a cache it can never hit (and
us read BuildKit's records we can never hit), so the config says what it is; BuildKit's importer
finds no cache config it knows in it, and ours refuses one that is not ours in one line. The
layout is kept so that the usual tools (``oras``, ``skopeo``, a CI cache action) move the folder
as they move BuildKit's, and the blobs are the same gzip layers an image push sends.

Export writes the blobs it lacks (content addressed, by rename), then the config and manifest,
then replaces ``index.json``'s entry for the tag, holding the folder locked (flock on the folder
itself: two services exporting to one folder take turns; the last export of a tag wins, as in
BuildKit, so give each service its own tag or folder to keep both).

Import reads the index, the manifest and the config when the build starts, and a step whose key is
not in the store's cache but is in an imported config is taken from it: its new blobs are copied
into the store through ``ImageStore.ingest`` (size and sha256 checked before the blob lands), each
unpacked as a pulled layer is (``apply_layer``: diff_id checked, entries kept inside the layer),
and the record is written into the store's cache, so the step reports ``CACHED`` and the image has
the ID the exporting build gave it. The folder is untrusted input: every file is opened without
following a link (a link, a FIFO, a device or a folder where a file should be is refused), only by
a digest's hex under ``blobs/sha256/``, JSON documents are size-limited, every blob's digest is
checked (the manifest and config too), a record must name blobs its manifest lists and extend its
parent step's layers, and every failure is one line naming the folder. What the check cannot give
is authenticity: a record that is well formed but made by someone else decides what the step's
layer is (as with BuildKit's cache import), so import only caches you trust the writer of.

A folder without ``index.json`` (or without the tag) imports nothing, as BuildKit's local importer
on a CI runner's first build.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import json
import os
import re
import secrets
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from composer.backends.native.build.cache import StepResult
from composer.backends.native.image import oci
from composer.backends.native.image.layers import CHUNK, apply_layer
from composer.backends.native.image.store import ImageStore, fsync_dir
from composer.errors import ComposerError

CONFIG_TYPE = "application/vnd.composer.native.buildcache.v1+json"
BUILDKIT_CONFIG_TYPE = "application/vnd.buildkit.cacheconfig.v0"
REF_NAME = "org.opencontainers.image.ref.name"
FORMAT_VERSION = 1
MAX_JSON = 16 << 20  # index, manifest and config: a cache of many thousand steps stays below
DEFAULT_TAG = "latest"
CREATED = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z")  # as the builder writes them
IMPORT_OPTIONS = ("type", "src", "tag", "digest")
EXPORT_OPTIONS = ("type", "dest", "mode", "tag")


class CacheRefused(Exception):
    """A cache type or option the native builder does not have (its message names it)."""


class CacheIOError(Exception):
    """A malformed cache entry, or a cache folder that cannot be read or written (one line)."""


@dataclass(frozen=True, slots=True)
class LocalCache:
    """One ``type=local`` entry: the folder, the tag, and (export) the mode or (import) a digest."""

    path: Path
    tag: str = DEFAULT_TAG
    mode: str = "min"
    digest: str = ""


@dataclass(frozen=True, slots=True)
class Record:
    key: str
    description: str
    result: StepResult


def parse_entry(text: str, *, export: bool) -> LocalCache:
    """A ``cache_from`` (``export`` False) or ``cache_to`` entry, as buildx parses them: CSV of
    ``key=value``; a bare word is a registry reference (``type=registry,ref=<word>``). Relative
    folders are relative to the current folder, as buildx takes them.

    :raises CacheRefused: another type than local, or an option this builder lacks.
    :raises CacheIOError: malformed.
    """
    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise CacheIOError(f"{text!r}: not a CSV list of key=value") from None
    if len(fields) == 1 and "=" not in fields[0]:
        raise CacheRefused(f"type=registry ({fields[0]})")
    options: dict[str, str] = {}
    for item in fields:
        key, equals, value = item.strip().partition("=")
        if not equals:
            raise CacheIOError(f"{text!r}: {item!r} is not key=value")
        options[key.strip().lower()] = value.strip()
    kind = options.get("type")
    if not kind:
        raise CacheIOError(f"{text!r}: type= is missing")
    if kind != "local":
        raise CacheRefused(f"type={kind}")
    allowed = EXPORT_OPTIONS if export else IMPORT_OPTIONS
    for key in options:
        if key not in allowed:
            raise CacheRefused(f"type=local option {key}=")
    folder = options.get("dest" if export else "src") or ""
    if not folder:
        raise CacheIOError(f"{text!r}: {'dest' if export else 'src'}= is missing")
    mode = options.get("mode", "min")
    if mode not in ("min", "max"):
        raise CacheIOError(f"{text!r}: mode={mode}: min or max expected")
    digest = options.get("digest", "")
    if digest:
        try:
            oci.digest_hex(digest)
        except ValueError as exc:
            raise CacheIOError(f"{text!r}: {exc}") from None
    tag = options.get("tag") or DEFAULT_TAG
    return LocalCache(Path(os.path.abspath(folder)), tag, mode, digest)


# --- export --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _write_new(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``path`` whole by rename (a reader never sees a part of it)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def _file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


def records_json(records: Iterable[Record]) -> dict[str, Any]:
    return {"version": FORMAT_VERSION, "records": [
        {"key": record.key, "description": record.description, "diff_ids": list(record.result.diff_ids),
         "layers": [layer.to_json() for layer in record.result.layers], "empty": record.result.empty,
         "created": record.result.created} for record in records]}


def export(store: ImageStore, records: list[Record], target: LocalCache) -> str:
    """Write ``records`` and their layers' blobs into ``target``'s folder under its tag; the
    manifest's digest.

    :raises CacheIOError: the folder cannot be written, or a blob is no longer in the store.
    """
    layers: dict[str, oci.Descriptor] = {}
    for record in records:
        for layer in record.result.layers:
            layers.setdefault(layer.digest, layer)
    config = json.dumps(records_json(records), separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
        "config": {"mediaType": CONFIG_TYPE, "digest": oci.sha256_digest(config), "size": len(config)},
        "layers": [layer.to_json() for layer in layers.values()]}, separators=(",", ":")).encode()
    manifest_digest = oci.sha256_digest(manifest)
    folder = target.path
    try:
        blobs = folder / "blobs" / "sha256"
        blobs.mkdir(parents=True, exist_ok=True)
        with _locked(folder):
            for layer in layers.values():
                path = blobs / oci.digest_hex(layer.digest)
                with contextlib.suppress(OSError):
                    if stat.S_ISREG(path.lstat().st_mode) and path.lstat().st_size == layer.size:
                        continue  # there (the importer checks its digest before any use)
                _write_new(path, _file_chunks(store.blob_path(layer.digest)))
            for data in (config, manifest):
                path = blobs / oci.digest_hex(oci.sha256_digest(data))
                if not path.is_file():
                    _write_new(path, [data])
            layout = folder / "oci-layout"
            if not layout.is_file():
                _write_new(layout, [b'{"imageLayoutVersion":"1.0.0"}'])
            index = _index_for_update(folder)
            entries = [entry for entry in index["manifests"] if not (
                isinstance(entry, dict) and (entry.get("annotations") or {}).get(REF_NAME) == target.tag)]
            entries.append({"mediaType": oci.OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest),
                            "annotations": {REF_NAME: target.tag}})
            index["manifests"] = entries
            _write_new(folder / "index.json", [json.dumps(index, indent=1).encode()])
            fsync_dir(blobs)
            fsync_dir(folder)
    except OSError as exc:
        raise CacheIOError(f"cache_to {folder}: {exc.strerror or exc}") from None
    return manifest_digest


def _index_for_update(folder: Path) -> dict[str, Any]:
    """The folder's index to add a tag to (an unreadable one is replaced, as nothing it names can be used)."""
    try:
        data = json.loads((folder / "index.json").read_bytes())
    except (OSError, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("manifests"), list):
        return {"schemaVersion": 2, "mediaType": oci.OCI_INDEX, "manifests": []}
    return data


# --- import --------------------------------------------------------------------------------------


class _Folder:
    """A cache folder read as untrusted: files opened without following links, regular files only."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _fail(self, message: str) -> CacheIOError:
        return CacheIOError(f"cache_from {self.path}: {message}")

    @contextlib.contextmanager
    def open(self, *parts: str) -> Iterator[IO[bytes]]:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        fds: list[int] = []
        try:
            fds.append(os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
            for part in parts[:-1]:
                fds.append(os.open(part, flags | os.O_DIRECTORY, dir_fd=fds[-1]))
            fd = os.open(parts[-1], flags | os.O_NONBLOCK, dir_fd=fds[-1])
        except OSError as exc:
            for opened in fds:
                os.close(opened)
            if exc.errno == errno.ELOOP:  # a link where a file or folder should be
                raise self._fail(f"{'/'.join(parts)} is a symbolic link") from None
            raise
        for opened in fds:
            os.close(opened)
        handle = os.fdopen(fd, "rb")
        with handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise self._fail(f"{'/'.join(parts)} is not a regular file")
            yield handle

    def read(self, parts: tuple[str, ...], limit: int = MAX_JSON) -> bytes:
        with self.open(*parts) as handle:
            data = handle.read(limit + 1)
        if len(data) > limit:
            raise self._fail(f"{'/'.join(parts)} is larger than {limit} bytes")
        return data

    def blob(self, digest: str, limit: int = MAX_JSON) -> bytes:
        data = self.read(("blobs", "sha256", oci.digest_hex(digest)), limit)
        if oci.sha256_digest(data) != digest:
            raise self._fail(f"blob {digest} failed verification: got {oci.sha256_digest(data)}")
        return data


def _json(data: bytes, what: str, fail: Any) -> dict[str, Any]:
    try:
        return oci.load_json(data, what)
    except ValueError as exc:
        raise fail(str(exc)) from None


class ImportedCache:
    """The records of one ``cache_from`` folder, read when the build starts; blobs read on use."""

    def __init__(self, source: LocalCache) -> None:
        self.source = source
        self.folder = _Folder(source.path)
        self.records: dict[str, Record] = {}
        self.manifest = ""

    @classmethod
    def load(cls, source: LocalCache) -> ImportedCache:
        """:raises CacheIOError: the index, manifest or config is malformed or fails its digest."""
        cache = cls(source)
        try:
            cache._load()
        except OSError as exc:
            raise cache.folder._fail(exc.strerror or str(exc)) from None
        return cache

    def _load(self) -> None:
        fail = self.folder._fail
        try:
            index = _json(self.folder.read(("index.json",)), "index.json", fail)
        except FileNotFoundError:
            return  # nothing exported there yet: nothing to import
        except NotADirectoryError:
            raise fail("not a folder") from None
        entries = index.get("manifests")
        if not isinstance(entries, list):
            raise fail("index.json has no manifests list")
        chosen: oci.Descriptor | None = None
        for entry in entries:
            if not isinstance(entry, dict):
                raise fail("index.json: a manifest entry is not an object")
            annotations = entry.get("annotations")
            annotations = annotations if isinstance(annotations, dict) else {}
            wanted = (entry.get("digest") == self.source.digest) if self.source.digest else (
                annotations.get(REF_NAME) == self.source.tag)
            if wanted:
                try:
                    chosen = oci.Descriptor.from_json(entry)
                except ValueError as exc:
                    raise fail(f"index.json: {exc}") from None
        if chosen is None:
            return  # the tag is not there: nothing to import
        self.manifest = chosen.digest
        manifest = _json(self.folder.blob(chosen.digest), f"manifest {chosen.digest}", fail)
        try:
            config_ref = oci.Descriptor.from_json(manifest.get("config") or {})
            listed = {layer.digest: layer for layer in (oci.Descriptor.from_json(item)
                                                        for item in manifest.get("layers") or [])}
        except (ValueError, TypeError, AttributeError) as exc:
            raise fail(f"manifest {chosen.digest}: {exc}") from None
        if config_ref.media_type == BUILDKIT_CONFIG_TYPE:
            raise fail("a cache BuildKit exported (its records are keyed by BuildKit's solver; the native "
                       "builder reads the caches it exports)")
        if config_ref.media_type != CONFIG_TYPE:
            raise fail(f"manifest {chosen.digest}: config media type {config_ref.media_type!r} is not "
                       f"{CONFIG_TYPE}")
        config = _json(self.folder.blob(config_ref.digest), f"config {config_ref.digest}", fail)
        if config.get("version") != FORMAT_VERSION or not isinstance(config.get("records"), list):
            raise fail(f"config {config_ref.digest}: not version {FORMAT_VERSION} with a records list")
        for item in config["records"]:
            record = _record(item, listed, fail)
            self.records.setdefault(record.key, record)

    def find(self, key: str) -> Record | None:
        return self.records.get(key)

    def materialize(self, store: ImageStore, record: Record, parent_diff_ids: list[str],
                    parent_layers: list[oci.Descriptor]) -> None:
        """Put ``record``'s layers into ``store`` (blobs checked, layers unpacked as pulled ones).

        :raises CacheIOError: the record does not extend the parent's layers, a blob is missing or
            fails its digest, or a layer does not unpack to its diff_id.
        """
        result = record.result
        fail = self.folder._fail
        grows = 0 if result.empty else 1
        if (list(result.diff_ids[:len(parent_diff_ids)]) != parent_diff_ids
                or list(result.layers[:len(parent_layers)]) != parent_layers
                or len(result.diff_ids) != len(parent_diff_ids) + grows):
            raise fail(f"the record of step {record.description!r} does not extend its parent step's layers")
        chains = oci.chain_ids(list(result.diff_ids))
        for position, (diff_id, layer) in enumerate(zip(result.diff_ids, result.layers, strict=True)):
            chain = chains[position]
            if store.has_layer(chain) and store.has_blob(layer.digest):
                continue
            try:
                self._ingest(store, layer)
                compression = oci.LAYER_COMPRESSION[layer.media_type]

                def populate(directory: Path, layer: oci.Descriptor = layer, diff_id: str = diff_id,
                             compression: str = compression) -> int:
                    with store.blob_path(layer.digest).open("rb") as blob:
                        return apply_layer(blob, directory, compression=compression, diff_id=diff_id,
                                           what=f"layer {layer.digest}")

                store.add_layer(chain, diff_id, chains[position - 1] if position else None, populate)
            except ComposerError as exc:
                raise fail(exc.message) from None
            except OSError as exc:
                raise fail(f"blob {layer.digest}: {exc.strerror or exc}") from None

    def _ingest(self, store: ImageStore, layer: oci.Descriptor) -> None:
        with store.ingest(layer.digest, layer.size) as writer:
            if writer is None:
                return
            writer.restart()  # a partial file in incoming/ is not trusted to be this folder's
            try:
                with self.folder.open("blobs", "sha256", oci.digest_hex(layer.digest)) as handle:
                    while chunk := handle.read(CHUNK):
                        writer.write(chunk)
            except BaseException:
                writer.discard()  # nothing of an unreadable folder stays in the store
                raise
            writer.commit()


def _record(item: Any, listed: dict[str, oci.Descriptor], fail: Any) -> Record:
    try:
        key = str(item["key"])
        oci.digest_hex(key)
        layers = tuple(oci.Descriptor.from_json(layer) for layer in item["layers"])
        diff_ids = tuple(str(d) for d in item["diff_ids"])
        for diff_id in diff_ids:
            oci.digest_hex(diff_id)
        empty, created = item["empty"], item["created"]
        if not isinstance(empty, bool) or not isinstance(item["description"], str):
            raise ValueError("empty or description has the wrong type")
        if not isinstance(created, str) or CREATED.fullmatch(created) is None:
            raise ValueError(f"created {created!r} is not an RFC 3339 UTC time")
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"a malformed record: {exc}") from None
    if len(layers) != len(diff_ids):
        raise fail(f"record {key}: {len(layers)} layers for {len(diff_ids)} diff_ids")
    for layer in layers:
        if listed.get(layer.digest) != layer:
            raise fail(f"record {key}: blob {layer.digest} is not in the manifest's layers")
        if layer.media_type not in oci.LAYER_COMPRESSION:
            raise fail(f"record {key}: layer media type {layer.media_type!r} is not a layer's")
    return Record(key, item["description"], StepResult(diff_ids, layers, empty, created))
