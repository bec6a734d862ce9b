"""New layers into the store, by the path pulls take: an uncompressed tar (its digest is the
diff_id), gzip-compressed into a blob, and unpacked into ``layers/<chain>`` by ``apply_layer``
through ``ImageStore.add_layer`` (so a built layer is checked and stored exactly as a pulled one,
and ``composer push`` sends the blob as it is).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed import SupportsRead

from composer.backends.native.image import oci
from composer.backends.native.image.layers import CHUNK, apply_layer
from composer.backends.native.image.store import ImageStore, remove_tree

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
# gzip's default level, as BuildKit's and docker push's compressors (Go's gzip.DefaultCompression);
# GzipFile's own default, 9, took ~43 s on the 259 MiB layer of the mariadb stand-in's apt-get RUN
# (6: ~8 s) and made that cold build 2.9x BuildKit's, for a blob about 3% smaller
COMPRESS_LEVEL = 6


@dataclass(frozen=True, slots=True)
class BuiltLayer:
    diff_id: str
    descriptor: oci.Descriptor  # the compressed blob, as the manifest lists it
    chain_id: str
    new_blob: bool  # written by this commit (not in the store before)
    new_layer: bool


class _Hashing:
    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.inner.write(data)

    def flush(self) -> None:
        self.inner.flush()


class _ClampingTar(tarfile.TarFile):
    """A tar whose entries' mtimes are no later than ``clamp`` (SOURCE_DATE_EPOCH), as BuildKit's
    exporter with ``rewrite-timestamp=true``: what a RUN or COPY made during the build gets the
    epoch, older files keep their times."""

    clamp: int | None = None

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: SupportsRead[bytes] | None = None) -> None:
        if self.clamp is not None and tarinfo.mtime > self.clamp:
            tarinfo.mtime = self.clamp
        super().addfile(tarinfo, fileobj)


class LayerWriter:
    """A layer being written as a tar in the store's ``tmp/``; ``commit`` stores it. With
    ``clamp`` (SOURCE_DATE_EPOCH), no entry's mtime is later than it."""

    def __init__(self, store: ImageStore, *, clamp: int | None = None) -> None:
        self.store = store
        self.path = store.root / "tmp" / f"build-layer.{os.getpid()}.{secrets.token_hex(6)}.tar"
        self._file = self.path.open("wb")
        self.tar: tarfile.TarFile = _ClampingTar.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
        if isinstance(self.tar, _ClampingTar):
            self.tar.clamp = clamp
        self.entries = 0

    def add(self, info: tarfile.TarInfo, content: Path | None = None) -> None:
        info.uname = info.gname = ""
        self.entries += 1
        if content is not None and info.isreg():
            with content.open("rb") as handle:
                self.tar.addfile(info, handle)
        else:
            self.tar.addfile(info)

    def commit(self, parent_chain: str | None) -> BuiltLayer:
        """Store the layer (blob and unpacked form) on top of ``parent_chain``."""
        self.tar.close()
        self._file.close()
        diff = hashlib.sha256()
        compressed = self.path.with_suffix(".tar.gz")
        try:
            with self.path.open("rb") as source, compressed.open("wb") as raw:
                hashing = _Hashing(raw)
                with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0, compresslevel=COMPRESS_LEVEL) as target:
                    while chunk := source.read(CHUNK):
                        diff.update(chunk)
                        target.write(chunk)
            diff_id = "sha256:" + diff.hexdigest()
            digest = "sha256:" + hashing.hash.hexdigest()
            chain = oci.chain_ids([parent_chain, diff_id])[1] if parent_chain else diff_id
            # new: written by this commit, not by a concurrent build that made the same content (the
            # blob's and the layer's locks decide): only the writer may drop it if nothing records it
            new_blob = new_layer = False
            with self.store.ingest(digest, hashing.size) as writer:
                if writer is not None:
                    with compressed.open("rb") as source:
                        while chunk := source.read(CHUNK):
                            writer.write(chunk)
                    writer.commit()
                    new_blob = True
            blob = self.store.blob_path(digest)

            def populate(directory: Path) -> int:
                nonlocal new_layer
                new_layer = True
                with blob.open("rb") as handle:
                    return apply_layer(handle, directory, compression="gzip", diff_id=diff_id,
                                       what=f"built layer {digest}")

            self.store.add_layer(chain, diff_id, parent_chain, populate)
            return BuiltLayer(diff_id, oci.Descriptor(LAYER_MEDIA_TYPE, digest, hashing.size), chain, new_blob,
                              new_layer)
        finally:
            self.discard()
            remove_tree(compressed)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.tar.close()
        with contextlib.suppress(Exception):
            self._file.close()
        remove_tree(self.path)



def drop_unreferenced(store: ImageStore, blobs: set[str], chains: set[str]) -> None:
    """Remove those of ``blobs`` and ``chains`` that nothing reaches (the system check's rule,
    residue.referenced: the images, the step cache's records, the containers): a step that failed
    after its layer was stored, the config and manifest of the image a build's tag left. What a
    step recorded in the step cache (build.cache) stays until ``composer builder prune``."""
    from composer.backends.native.residue import referenced

    keep_hex, keep_layers = referenced(store, [])
    keep_blobs = {digest for digest in blobs if oci.digest_hex(digest) in keep_hex}
    keep_chains = {chain for chain in chains if oci.digest_hex(chain) in keep_layers}
    for digest in blobs - keep_blobs:
        with contextlib.suppress(FileNotFoundError):
            store.blob_path(digest).unlink()
    for chain in chains - keep_chains:
        root = store.layer_root(chain)
        trash = store.root / "tmp" / f"trash.{os.getpid()}.{secrets.token_hex(4)}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(root, trash)  # layer.json gone at once: never a half-removed layer
            remove_tree(trash)
        link = store.link_path(chain)
        with contextlib.suppress(OSError):
            if not link.exists():
                link.unlink()
