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
from typing import IO

from composer.backends.native.image import oci
from composer.backends.native.image.layers import CHUNK, apply_layer
from composer.backends.native.image.store import ImageStore, remove_tree

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"


@dataclass(frozen=True, slots=True)
class BuiltLayer:
    diff_id: str
    descriptor: oci.Descriptor  # the compressed blob, as the manifest lists it


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


class LayerWriter:
    """A layer being written as a tar in the store's ``tmp/``; ``commit`` stores it."""

    def __init__(self, store: ImageStore) -> None:
        self.store = store
        self.path = store.root / "tmp" / f"build-layer.{os.getpid()}.{secrets.token_hex(6)}.tar"
        self._file = self.path.open("wb")
        self.tar = tarfile.open(fileobj=self._file, mode="w", format=tarfile.PAX_FORMAT)
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
                with gzip.GzipFile(fileobj=hashing, mode="wb", mtime=0) as target:
                    while chunk := source.read(CHUNK):
                        diff.update(chunk)
                        target.write(chunk)
            diff_id = "sha256:" + diff.hexdigest()
            digest = "sha256:" + hashing.hash.hexdigest()
            with self.store.ingest(digest, hashing.size) as writer:
                if writer is not None:
                    with compressed.open("rb") as source:
                        while chunk := source.read(CHUNK):
                            writer.write(chunk)
                    writer.commit()
            chain = oci.chain_ids([parent_chain, diff_id])[1] if parent_chain else diff_id
            blob = self.store.blob_path(digest)

            def populate(directory: Path) -> int:
                with blob.open("rb") as handle:
                    return apply_layer(handle, directory, compression="gzip", diff_id=diff_id,
                                       what=f"built layer {digest}")

            self.store.add_layer(chain, diff_id, parent_chain, populate)
            return BuiltLayer(diff_id, oci.Descriptor(LAYER_MEDIA_TYPE, digest, hashing.size))
        finally:
            self.discard()
            remove_tree(compressed)

    def discard(self) -> None:
        with contextlib.suppress(Exception):
            self.tar.close()
        with contextlib.suppress(Exception):
            self._file.close()
        remove_tree(self.path)

