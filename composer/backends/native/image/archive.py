"""Image archives: ``image save`` writes what ``docker load`` reads, ``image load`` reads what
``docker save`` writes and OCI image layouts.

Saving writes one tar that is both a docker-archive and an OCI image layout, as Docker 25+ does:
``blobs/sha256/<hex>`` holds each config, each layer as an *uncompressed* tar (so its digest is
its diff_id, whatever compression the registry used) and an OCI manifest per image; ``index.json``
and ``oci-layout`` make the layout; ``manifest.json`` (Config, RepoTags, Layers) and
``repositories`` are what every ``docker load`` reads. The archive is written to a temp file next
to the target and renamed, so a failed save leaves no partial file.

Loading accepts a tar (plain or gzip/bzip2/xz), from a file or from stdin (spooled to the store's
``tmp/`` first: docker-archives put manifest.json last). With ``manifest.json`` it is a
docker-archive: each layer (plain or compressed, symlinked duplicates resolved) is stored as an
uncompressed blob checked against its diff_id, and the image gets an OCI manifest of its own.
Without it, ``index.json`` and ``oci-layout`` make an OCI layout: blobs are copied as they are
(digests checked), indexes resolved to linux/amd64, names taken from the
``io.containerd.image.name`` or ``org.opencontainers.image.ref.name`` annotations. Everything is
read and checked before the store is written, and the index entries are written last.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import posixpath
import secrets
import shutil
import tarfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, NamedTuple, cast

from composer.backends.native.image import oci
from composer.backends.native.image.layers import CHUNK, LayerBudget, apply_layer, decompressed, detect_compression
from composer.backends.native.image.push import find_record
from composer.backends.native.image.store import ImageRecord, ImageStore, remove_tree
from composer.errors import DigestMismatchError, ImageStoreError
from composer.image_reference import parse

BACKEND = "native"
MTIME = 0
MAX_JSON = 16 << 20
CONTAINERD_NAME = "io.containerd.image.name"
OCI_REF_NAME = "org.opencontainers.image.ref.name"


class ArchiveError(ImageStoreError):
    """An archive cannot be read or written: not a tar, no manifest, a missing or corrupt member."""


def _error(message: str, operation: str = "load") -> ArchiveError:
    return ArchiveError(message, backend_name=BACKEND, operation=operation)


# --- save -------------------------------------------------------------------------------------------


class _Hashing:
    """Reads ``inner``, hashing and counting what it hands out."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size)
        self.hash.update(data)
        self.count += len(data)
        return data


def _info(name: str, size: int = 0, kind: bytes = tarfile.REGTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mtime, info.mode = size, kind, MTIME, 0o644 if kind == tarfile.REGTYPE else 0o755
    return info


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    archive.addfile(_info(name, len(data)), io.BytesIO(data))


class _Saved(NamedTuple):
    record: ImageRecord
    config: bytes
    diff_ids: list[str]
    blobs: list[oci.Descriptor]  # the stored layer blobs, in the same order


def _collect(store: ImageStore, references: Sequence[str]) -> list[_Saved]:
    found: list[_Saved] = []
    for text in references:
        record = find_record(store, text)
        config = store.read_blob(record.config)
        manifest = store.manifest(record)
        diff_ids = [str(d) for d in (oci.load_json(config, "config").get("rootfs") or {}).get("diff_ids") or []]
        blobs = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        if len(blobs) != len(diff_ids):
            raise _error(f"{text}: {len(blobs)} layers for {len(diff_ids)} diff_ids", "save")
        for blob in blobs:
            if not store.has_blob(blob.digest):
                raise _error(f"{text}: layer blob {blob.digest} is not in the store (pull the image again)", "save")
        found.append(_Saved(record, config, diff_ids, blobs))
    return found


def save(store: ImageStore, references: Sequence[str], output: IO[bytes]) -> None:
    """Write the images ``references`` (as the store names them) as one archive to ``output``.

    :raises ImageReferenceError: a malformed reference.
    :raises ImageNotFoundError: an image is not in the store.
    :raises DigestMismatchError: a stored blob no longer matches its digest.
    """
    if not references:
        raise _error("image save needs at least one image", "save")
    with store.session():
        images = _collect(store, references)
        with tarfile.open(fileobj=output, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK) as archive:
            _add_bytes(archive, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
            for directory in ("blobs", "blobs/sha256"):
                archive.addfile(_info(directory, kind=tarfile.DIRTYPE))
            written: set[str] = set()
            manifests: list[dict[str, Any]] = []
            docker_manifest: list[dict[str, Any]] = []
            repositories: dict[str, dict[str, str]] = {}
            for image in images:
                layer_paths = []
                sizes: dict[str, int] = {}
                chains = oci.chain_ids(image.diff_ids)
                for diff_id, blob, chain in zip(image.diff_ids, image.blobs, chains, strict=True):
                    name = f"blobs/sha256/{oci.digest_hex(diff_id)}"
                    layer_paths.append(name)
                    sizes[diff_id] = store.layer(chain).size
                    if diff_id not in written:
                        _add_layer(archive, store, name, blob, diff_id, sizes[diff_id])
                        written.add(diff_id)
                config_name = f"blobs/sha256/{oci.digest_hex(image.record.config)}"
                if image.record.config not in written:
                    _add_bytes(archive, config_name, image.config)
                    written.add(image.record.config)
                manifest = json.dumps({
                    "schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                    "config": {"mediaType": oci.OCI_CONFIG, "digest": image.record.config,
                               "size": len(image.config)},
                    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": sizes[d]}
                               for d in image.diff_ids]}, separators=(",", ":")).encode()
                digest = oci.sha256_digest(manifest)
                if digest not in written:
                    _add_bytes(archive, f"blobs/sha256/{oci.digest_hex(digest)}", manifest)
                    written.add(digest)
                ref = parse(image.record.reference)
                tag = ref.familiar() if ref.tag is not None else ""
                manifests.append({"mediaType": oci.OCI_MANIFEST, "digest": digest, "size": len(manifest),
                                  "annotations": {CONTAINERD_NAME: str(ref),
                                                  **({OCI_REF_NAME: ref.tag} if ref.tag else {})}})
                docker_manifest.append({"Config": config_name, "RepoTags": [tag] if tag else [],
                                        "Layers": layer_paths})
                if ref.tag is not None and image.diff_ids:
                    repository = ref._replace(tag=None, digest=None).familiar()
                    repositories.setdefault(repository, {})[ref.tag] = oci.digest_hex(image.diff_ids[-1])
            _add_bytes(archive, "index.json", json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_INDEX,
                                                          "manifests": manifests}).encode())
            _add_bytes(archive, "manifest.json", json.dumps(docker_manifest).encode())
            _add_bytes(archive, "repositories", json.dumps(repositories).encode())


def _add_layer(archive: tarfile.TarFile, store: ImageStore, name: str, blob: oci.Descriptor, diff_id: str,
               size: int) -> None:
    """The layer's uncompressed tar (``size`` bytes), decompressed from the stored blob as it is
    written and checked against ``diff_id``."""
    path = store.blob_path(blob.digest)
    with path.open("rb") as raw:
        head = raw.read(4)
        raw.seek(0)
        compression = detect_compression(head, oci.LAYER_COMPRESSION.get(blob.media_type))
        with decompressed(raw, compression, f"layer {blob.digest}") as plain:
            reader = _Hashing(plain)
            try:
                archive.addfile(_info(name, size), cast(IO[bytes], reader))
            except OSError as exc:  # tarfile: "unexpected end of data"
                raise DigestMismatchError(f"layer {diff_id}: the stored blob {blob.digest} is damaged: {exc}",
                                          backend_name=BACKEND, operation="save") from None
            if reader.read(1) or "sha256:" + reader.hash.hexdigest() != diff_id:
                raise DigestMismatchError(f"layer {diff_id}: the stored blob {blob.digest} does not match it",
                                          backend_name=BACKEND, operation="save")


def save_to_path(store: ImageStore, references: Sequence[str], target: Path) -> None:
    """``save`` into ``target`` through a temp file in its directory, renamed when complete."""
    tmp = target.parent / f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    try:
        with tmp.open("wb") as output:
            save(store, references, output)
            output.flush()
            os.fsync(output.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise _error(f"cannot write {target}: {exc.strerror or exc}", "save") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


# --- load -------------------------------------------------------------------------------------------


class _Planned(NamedTuple):
    """One image of an archive, checked and ready to go into the store."""

    references: list[str]  # fully qualified
    manifest: bytes
    config: bytes
    diff_ids: list[str]
    layers: list[tuple[str, oci.Descriptor]]  # (member name, descriptor of the stored blob)
    index_bytes: bytes | None
    uncompressed: bool  # docker-archive: each blob is stored uncompressed, as its diff_id


class _Archive:
    """A tar read by member name (``./`` prefixes dropped, symlinks resolved)."""

    def __init__(self, archive: tarfile.TarFile) -> None:
        self.archive = archive
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in archive.getmembers():
            self.members[posixpath.normpath(member.name.lstrip("/")).removeprefix("./")] = member

    def member(self, name: str) -> tarfile.TarInfo:
        key = posixpath.normpath(name.lstrip("/"))
        for _ in range(16):
            member = self.members.get(key)
            if member is None:
                raise _error(f"the archive has no {name}")
            if member.issym():
                key = posixpath.normpath(posixpath.join(posixpath.dirname(key), member.linkname))
                continue
            if member.islnk():
                key = posixpath.normpath(member.linkname.lstrip("/"))
                continue
            if not member.isfile():
                raise _error(f"{name} in the archive is not a file")
            return member
        raise _error(f"{name} in the archive: too many links")

    def has(self, name: str) -> bool:
        return name in self.members

    def open(self, name: str) -> IO[bytes]:
        handle = self.archive.extractfile(self.member(name))
        if handle is None:
            raise _error(f"cannot read {name} from the archive")
        return handle

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        if self.member(name).size > limit:
            raise _error(f"{name} in the archive is larger than {limit} bytes")
        with self.open(name) as handle:
            return handle.read()

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name))
        except ValueError as exc:
            raise _error(f"{name} in the archive is not valid JSON: {exc}") from None


def _qualify(name: str) -> str:
    return str(parse(name))


def _plan_docker(archive: _Archive) -> list[_Planned]:
    entries = archive.json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise _error("manifest.json in the archive lists no images")
    planned: list[_Planned] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise _error("manifest.json in the archive has an entry without Config")
        config = archive.read(entry["Config"])
        diff_ids = _diff_ids(config, entry["Config"])
        layer_names = [str(name) for name in entry.get("Layers") or []]
        if len(layer_names) != len(diff_ids):
            raise _error(f"{entry['Config']}: {len(layer_names)} layers for {len(diff_ids)} diff_ids")
        layers = []
        for name, diff_id in zip(layer_names, diff_ids, strict=True):
            archive.member(name)
            layers.append((name, oci.Descriptor("application/vnd.oci.image.layer.v1.tar", diff_id, 0)))
        references = [_qualify(str(tag)) for tag in entry.get("RepoTags") or []]
        if not references:
            raise _error(f"image {oci.sha256_digest(config)} in the archive has no name (RepoTags is empty)")
        planned.append(_Planned(references, b"", config, diff_ids, layers, None, True))
    return planned


def _diff_ids(config: bytes, what: str) -> list[str]:
    try:
        data = oci.load_json(config, what)
        diff_ids = [str(d) for d in (data.get("rootfs") or {}).get("diff_ids") or []]
        for diff_id in diff_ids:
            oci.digest_hex(diff_id)
    except (ValueError, AttributeError) as exc:
        raise _error(f"{what}: not an image config: {exc}") from None
    return diff_ids


def _blob_name(digest: str) -> str:
    try:
        return f"blobs/sha256/{oci.digest_hex(digest)}"
    except ValueError as exc:
        raise _error(str(exc)) from None


def _read_blob(archive: _Archive, descriptor: oci.Descriptor) -> bytes:
    data = archive.read(_blob_name(descriptor.digest))
    if oci.sha256_digest(data) != descriptor.digest:
        raise DigestMismatchError(f"blob {descriptor.digest} in the archive does not match its digest",
                                  backend_name=BACKEND, operation="load")
    return data


def _plan_oci(archive: _Archive) -> list[_Planned]:
    index_bytes = archive.read("index.json")
    index = oci.load_json(index_bytes, "index.json")
    planned: list[_Planned] = []
    for raw in index.get("manifests") or []:
        try:
            descriptor = oci.Descriptor.from_json(raw)
        except (ValueError, AttributeError) as exc:
            raise _error(f"index.json: bad descriptor: {exc}") from None
        annotations = raw.get("annotations") or {}
        name = str(annotations.get(CONTAINERD_NAME) or "")
        ref_name = str(annotations.get(OCI_REF_NAME) or "")
        if not name and ref_name:
            name = ref_name
        if not name:
            raise _error(f"manifest {descriptor.digest} in the OCI layout has no name "
                         f"(no {CONTAINERD_NAME} or {OCI_REF_NAME} annotation)")
        if ":" not in name and "/" not in name and "@" not in name and not ref_name.count("/"):
            if name == ref_name:  # a bare tag ("1.0"): nothing names the repository
                raise _error(f"manifest {descriptor.digest} in the OCI layout is named only {name!r}, without a "
                             "repository")
        data = _read_blob(archive, descriptor)
        chosen_index: bytes | None = None
        if descriptor.media_type in oci.INDEX_TYPES:
            from composer.backends.native.image.registry import choose_platform

            chosen = choose_platform(oci.load_json(data, f"index {descriptor.digest}"), oci.Platform())
            if chosen is None:
                raise _error(f"{name}: no linux/amd64 manifest in the OCI layout's index")
            chosen_index, data = data, _read_blob(archive, chosen)
        manifest = oci.load_json(data, "manifest")
        try:
            config_desc = oci.Descriptor.from_json(manifest["config"])
            layer_descs = [oci.Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise _error(f"{name}: bad manifest: {exc}") from None
        config = _read_blob(archive, config_desc)
        diff_ids = _diff_ids(config, f"config {config_desc.digest}")
        if len(diff_ids) != len(layer_descs):
            raise _error(f"{name}: {len(layer_descs)} layers for {len(diff_ids)} diff_ids")
        for layer in layer_descs:
            if oci.LAYER_COMPRESSION.get(layer.media_type) is None:
                raise _error(f"{name}: layer {layer.digest} has unsupported media type {layer.media_type!r}")
            archive.member(_blob_name(layer.digest))
        planned.append(_Planned([_qualify(name)], data, config, diff_ids,
                                [(_blob_name(layer.digest), layer) for layer in layer_descs], chosen_index, False))
    if not planned:
        raise _error("index.json in the OCI layout lists no images")
    return planned


def _plan(archive: _Archive) -> list[_Planned]:
    if archive.has("manifest.json"):
        return _plan_docker(archive)
    if archive.has("index.json") and archive.has("oci-layout"):
        return _plan_oci(archive)
    raise _error("not a docker-archive (no manifest.json) nor an OCI layout (no index.json and oci-layout)")


def _ingest(store: ImageStore, archive: _Archive, name: str, descriptor: oci.Descriptor, uncompressed: bool) -> None:
    """The member ``name`` into the store as ``descriptor.digest`` (decompressed first when the
    blob must be the uncompressed tar), checked as it is written."""
    with store.ingest(descriptor.digest) as writer:
        if writer is None:
            return
        writer.restart()
        with archive.open(name) as source:
            if uncompressed:
                head = source.read(4)
                source.seek(0)
                meter = LayerBudget.from_env().meter(archive.member(name).size, f"layer {name}")
                with decompressed(source, detect_compression(head, None), f"layer {name}") as plain:
                    while chunk := plain.read(CHUNK):
                        meter.add_stream(len(chunk))  # a gzip bomb in a docker-archive
                        writer.write(chunk)
            else:
                while chunk := source.read(CHUNK):
                    writer.write(chunk)
        try:
            writer.commit()
        except DigestMismatchError:
            raise DigestMismatchError(f"layer {name} in the archive does not match {descriptor.digest}",
                                      backend_name=BACKEND, operation="load") from None


def _store_image(store: ImageStore, archive: _Archive, image: _Planned) -> list[ImageRecord]:
    chains = oci.chain_ids(image.diff_ids)
    descriptors: list[dict[str, Any]] = []
    for position, (name, descriptor) in enumerate(image.layers):
        diff_id, chain = image.diff_ids[position], chains[position]
        if not (image.uncompressed and store.has_layer(chain) and store.has_blob(diff_id)):
            _ingest(store, archive, name, descriptor, image.uncompressed)
        blob = store.blob_path(descriptor.digest)
        size = blob.stat().st_size
        descriptors.append({**descriptor.to_json(), "size": size})
        compression = "" if image.uncompressed else oci.LAYER_COMPRESSION.get(descriptor.media_type, "")

        def populate(directory: Path, blob: Path = blob, compression: str = compression, diff_id: str = diff_id,
                     what: str = f"layer {descriptor.digest}") -> int:
            with blob.open("rb") as handle:
                return apply_layer(handle, directory, compression=compression, diff_id=diff_id, what=what)

        store.add_layer(chain, diff_id, chains[position - 1] if position else None, populate)
    config_digest = store.write_blob(image.config)
    manifest = image.manifest
    if image.uncompressed:
        manifest = json.dumps({"schemaVersion": 2, "mediaType": oci.OCI_MANIFEST,
                               "config": {"mediaType": oci.OCI_CONFIG, "digest": config_digest,
                                          "size": len(image.config)},
                               "layers": descriptors}, separators=(",", ":")).encode()
    manifest_digest = store.write_blob(manifest)
    index_digest = store.write_blob(image.index_bytes) if image.index_bytes is not None else None
    platform = _platform(image.config)
    now = time.time()
    return [ImageRecord(reference, manifest_digest, config_digest, index_digest, platform, now, "load")
            for reference in image.references]


def _platform(config: bytes) -> str:
    data = oci.load_json(config, "config")
    parts = [str(data.get("os") or "linux"), str(data.get("architecture") or "amd64")]
    if data.get("variant"):
        parts.append(str(data["variant"]))
    return "/".join(parts)


@contextlib.contextmanager
def _open_tar(source: Path | IO[bytes], spool_dir: Path) -> Iterator[tarfile.TarFile]:
    """The tar at ``source`` (a path, or a stream spooled to ``spool_dir`` first)."""
    spool: Path | None = None
    try:
        if isinstance(source, Path):
            path = source
        else:
            spool = spool_dir / f"load.{os.getpid()}.{secrets.token_hex(4)}.tar"
            with spool.open("wb") as handle:
                shutil.copyfileobj(source, handle, CHUNK)
            path = spool
        try:
            archive = tarfile.open(path, mode="r:*")
        except FileNotFoundError:
            raise _error(f"{path}: no such file") from None
        except IsADirectoryError:
            raise _error(f"{path} is a directory, not an archive") from None
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise _error(f"{'stdin' if spool else path} is not a tar archive: {exc}") from None
        with archive:
            yield archive
    finally:
        if spool is not None:
            remove_tree(spool)


def load(store: ImageStore, source: Path | IO[bytes]) -> list[ImageRecord]:
    """Load every image of the archive ``source`` (a path or a binary stream); their index entries.

    :raises ArchiveError: not an archive composer understands, or a member is missing.
    :raises DigestMismatchError: a blob or layer does not match its digest.
    :raises UnsafeLayerError: a layer would write outside its directory.
    :raises ImageReferenceError: an image name in the archive is malformed.
    """
    with store.session(), _open_tar(source, store.root / "tmp") as tar:
        try:
            archive = _Archive(tar)
            planned = _plan(archive)
            records = [record for image in planned for record in _store_image(store, archive, image)]
        except (tarfile.TarError, EOFError) as exc:
            raise _error(f"the archive is damaged: {exc}") from None
        except OSError as exc:
            raise _error(f"reading the archive failed: {exc.strerror or exc}") from None
        for record in records:
            store.put(record)
        return records
