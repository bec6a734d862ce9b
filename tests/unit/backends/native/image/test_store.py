"""The image store: atomic blobs and layers, crash leftovers completed or discarded, index, gc, locks."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from composer.backends.native.image import oci
from composer.backends.native.image.store import ImageRecord, ImageStore, default_root, flock
from composer.errors import DigestMismatchError, ImageStoreError

DATA = os.urandom(300_000)
DIGEST = oci.sha256_digest(DATA)


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore.open(tmp_path / "root")


def test_default_root() -> None:
    assert default_root({}) == Path("/var/lib/composer")
    assert default_root({"COMPOSER_ROOT": "/x/y"}) == Path("/x/y")


def test_unwritable_root_is_one_line_error() -> None:
    with pytest.raises(ImageStoreError, match="cannot create the image store at /proc/composer"):
        ImageStore.open("/proc/composer")


def test_ingest_and_resume_after_a_kill(store: ImageStore) -> None:
    # A killed download leaves incoming/<hex> with a prefix of the blob: the next ingest resumes there.
    (store.root / "incoming" / oci.digest_hex(DIGEST)).write_bytes(DATA[:100_000])
    with store.ingest(DIGEST, len(DATA)) as writer:
        assert writer is not None
        assert writer.offset == 100_000
        writer.write(DATA[100_000:])
        writer.commit()
    assert store.read_blob(DIGEST) == DATA
    assert not any((store.root / "incoming").iterdir())
    with store.ingest(DIGEST, len(DATA)) as again:
        assert again is None  # present: nothing to do


def test_interrupted_ingest_keeps_the_partial_file(store: ImageStore) -> None:
    with store.ingest(DIGEST, len(DATA)) as writer:
        assert writer is not None
        writer.write(DATA[:5000])
    assert not store.has_blob(DIGEST)
    assert (store.root / "incoming" / oci.digest_hex(DIGEST)).stat().st_size == 5000


def test_corrupt_content_is_rejected_and_dropped(store: ImageStore) -> None:
    (store.root / "incoming" / oci.digest_hex(DIGEST)).write_bytes(b"X" * 1000)  # a bad partial file
    with store.ingest(DIGEST, len(DATA)) as writer:
        assert writer is not None
        writer.write(DATA[1000:])
        with pytest.raises(DigestMismatchError, match=f"blob {DIGEST} failed verification"):
            writer.commit()
    assert not store.has_blob(DIGEST)
    assert not any((store.root / "incoming").iterdir())
    with store.ingest(DIGEST, 10) as short:
        assert short is not None
        with pytest.raises(DigestMismatchError, match="more than the 10 bytes"):
            short.write(b"x" * 11)


def test_oversized_partial_restarts(store: ImageStore) -> None:
    (store.root / "incoming" / oci.digest_hex(DIGEST)).write_bytes(DATA + b"extra")
    with store.ingest(DIGEST, len(DATA)) as writer:
        assert writer is not None
        assert writer.offset == 0


def test_write_blob(store: ImageStore) -> None:
    assert store.write_blob(b"{}") == oci.sha256_digest(b"{}")
    with pytest.raises(DigestMismatchError):
        store.write_blob(b"{}", "sha256:" + "0" * 64)
    with pytest.raises(ImageStoreError, match="not in the image store"):
        store.read_blob("sha256:" + "1" * 64)


def _populate(text: str) -> object:
    def populate(diff: Path) -> int:
        (diff / "f").write_text(text)
        return len(text)
    return populate


def test_add_layer_discards_a_crashed_unpack(store: ImageStore) -> None:
    chain = "sha256:" + "c" * 64
    leftover = store.root / "incoming" / f"layer-{'c' * 64}" / "diff"
    leftover.mkdir(parents=True)
    (leftover / "half-written").write_text("junk")
    layer = store.add_layer(chain, chain, None, _populate("done"))  # type: ignore[arg-type]
    assert sorted(p.name for p in layer.path.iterdir()) == ["f"]
    assert store.link_path(chain).resolve() == layer.path.resolve()
    assert len(layer.link) == 20
    assert (store.root / "l" / layer.link).is_symlink()
    assert not any((store.root / "incoming").iterdir())


def test_failed_populate_leaves_nothing(store: ImageStore) -> None:
    chain = "sha256:" + "d" * 64

    def fail(diff: Path) -> int:
        (diff / "partial").write_text("x")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store.add_layer(chain, chain, None, fail)
    assert not store.has_layer(chain)
    assert not any((store.root / "layers").iterdir())
    assert not any((store.root / "incoming").iterdir())


def test_a_layer_without_metadata_is_not_a_layer(store: ImageStore) -> None:
    # A crash between mkdir and rename can leave layers/<hex> without layer.json: redone.
    chain = "sha256:" + "e" * 64
    (store.layer_root(chain) / "diff").mkdir(parents=True)
    assert not store.has_layer(chain)
    store.add_layer(chain, chain, None, _populate("ok"))  # type: ignore[arg-type]
    assert store.has_layer(chain)
    assert (store.layer(chain).path / "f").read_text() == "ok"


def test_concurrent_unpacks_of_one_layer_run_once(store: ImageStore) -> None:
    chain = "sha256:" + "f" * 64
    calls: list[int] = []

    def slow(diff: Path) -> int:
        calls.append(1)
        time.sleep(0.2)
        (diff / "f").write_text("x")
        return 1

    threads = [threading.Thread(target=store.add_layer, args=(chain, chain, None, slow)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert store.has_layer(chain)


def _image(store: ImageStore, name: str, layer_text: str) -> ImageRecord:
    diff_id = "sha256:" + hashlib.sha256(layer_text.encode()).hexdigest()
    store.add_layer(diff_id, diff_id, None, _populate(layer_text))  # type: ignore[arg-type]
    layer_blob = store.write_blob(layer_text.encode())
    config = store.write_blob(json.dumps({"rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode())
    manifest = store.write_blob(json.dumps({"schemaVersion": 2, "config": {"digest": config},
                                            "layers": [{"digest": layer_blob}]}).encode())
    return ImageRecord(name, manifest, config, pulled=time.time())


def test_index_put_get_remove_and_gc(store: ImageStore) -> None:
    kept = _image(store, "docker.io/library/kept:latest", "kept")
    dropped = _image(store, "docker.io/library/dropped:latest", "dropped")
    store.put(kept)
    store.put(dropped)
    assert [r.reference for r in store.images()] == [dropped.reference, kept.reference]
    assert store.get(kept.reference) == kept
    assert [layer.path.joinpath("f").read_text() for layer in store.layers(kept)] == ["kept"]
    assert store.remove(dropped.reference)
    assert not store.remove(dropped.reference)
    (store.root / "tmp" / ".images.json.123.tmp").write_text("{half")  # a killed index write
    (store.root / "incoming" / "abc").write_text("partial")
    report = store.gc()
    assert (report.blobs, report.layers) == (3, 1)
    assert store.get(kept.reference) == kept
    assert [layer.path.joinpath("f").read_text() for layer in store.layers(kept)] == ["kept"]
    assert store.has_blob(kept.manifest)
    assert not store.has_blob(dropped.manifest)
    assert not any((store.root / "tmp").iterdir())
    assert not any((store.root / "incoming").iterdir())
    assert len(list((store.root / "l").iterdir())) == 1


def test_put_refuses_missing_content(store: ImageStore) -> None:
    with pytest.raises(ImageStoreError, match="is not in the store"):
        store.put(ImageRecord("x", "sha256:" + "1" * 64, "sha256:" + "2" * 64))
    assert store.images() == []


def test_damaged_index_is_one_line_error(store: ImageStore) -> None:
    (store.root / "images.json").write_text("{not json")
    with pytest.raises(ImageStoreError, match="is damaged"):
        store.images()


def test_gc_waits_for_sessions(store: ImageStore) -> None:
    with store.session(), flock(store.root / "locks" / "store.lock", blocking=False) as got:
        assert got is False  # gc would wait
    with flock(store.root / "locks" / "store.lock", blocking=False) as got:
        assert got is True
