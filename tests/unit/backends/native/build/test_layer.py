"""A built layer's blob: gzip at the default level, as BuildKit and docker push write it."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

from composer.backends.native.build.layer import LAYER_MEDIA_TYPE, LayerWriter
from composer.backends.native.image.store import ImageStore


def test_a_committed_layer_is_gzip_at_the_default_level_and_holds_the_tar(tmp_path: Path) -> None:
    store = ImageStore.open(tmp_path / "store")
    content = tmp_path / "content"
    content.write_bytes(b"layer data\n" * 4096)
    writer = LayerWriter(store)
    info = tarfile.TarInfo("etc/data")
    info.size = content.stat().st_size
    writer.add(info, content)
    built = writer.commit(None)
    blob = store.blob_path(built.descriptor.digest).read_bytes()
    assert built.descriptor.media_type == LAYER_MEDIA_TYPE
    assert built.descriptor.size == len(blob)
    # gzip's header byte XFL: 2 at the best (slowest) level 9, 4 at the fastest level 1, 0 at the levels
    # between (RFC 1952; Go's compress/gzip, which BuildKit uses, writes it the same way)
    assert blob[:3] == b"\x1f\x8b\x08"
    assert blob[8] == 0
    tar = gzip.decompress(blob)
    assert built.diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(tar)) as archive:
        member = archive.extractfile("etc/data")
        assert member is not None
        assert member.read() == content.read_bytes()
