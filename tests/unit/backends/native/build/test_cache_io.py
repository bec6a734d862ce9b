"""build.cache_from / cache_to entries as buildx parses them, and the folder's index and records
read as untrusted input (the layers' import is tests/integration/native/test_build_cache_io.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from composer.backends.native.build.cache import StepResult
from composer.backends.native.build.cache_io import (
    CONFIG_TYPE,
    CacheIOError,
    CacheRefused,
    ImportedCache,
    LocalCache,
    Record,
    export,
    parse_entry,
)
from composer.backends.native.image import oci
from composer.backends.native.image.store import ImageStore


def test_local_entries_parse_as_buildx_reads_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_entry("type=local,dest=cache,mode=max", export=True) == LocalCache(tmp_path / "cache", "latest",
                                                                                   "max")
    assert parse_entry('type=local,"src=/a b",tag=v1', export=False) == LocalCache(Path("/a b"), "v1")
    assert parse_entry("type=local,dest=/c", export=True).mode == "min"  # BuildKit's default


@pytest.mark.parametrize(("entry", "export", "message"), [
    ("app:cache", False, "type=registry (app:cache)"),
    ("type=registry,ref=r/c", True, "type=registry"),
    ("type=s3,bucket=b", True, "type=s3"),
    ("type=inline", True, "type=inline"),
    ("type=local,src=/c,compression=zstd", False, "type=local option compression="),
    ("type=local,dest=/c", False, "type=local option dest="),  # dest is cache_to's
])
def test_other_types_and_options_are_refused_naming_them(entry: str, export: bool, message: str) -> None:
    with pytest.raises(CacheRefused) as refused:
        parse_entry(entry, export=export)
    assert str(refused.value) == message


@pytest.mark.parametrize(("entry", "export", "message"), [
    ("type=local", True, "dest= is missing"),
    ("src=/c", False, "type= is missing"),
    ("type=local,dest=/c,mode=all", True, "mode=all: min or max expected"),
    ("type=local,src=/c,digest=md5:1", False, "unsupported digest"),
    ("type=local,/c", False, "is not key=value"),
])
def test_malformed_entries_are_one_line(entry: str, export: bool, message: str) -> None:
    with pytest.raises(CacheIOError, match=message) as failed:
        parse_entry(entry, export=export)
    assert "\n" not in str(failed.value)


def _exported(tmp_path: Path) -> tuple[Path, Record]:
    store = ImageStore.open(tmp_path / "store")
    blob = b"not really a layer"
    digest = store.write_blob(blob)
    layer = oci.Descriptor("application/vnd.oci.image.layer.v1.tar+gzip", digest, len(blob))
    record = Record("sha256:" + "a" * 64, "RUN true", StepResult(("sha256:" + "b" * 64,), (layer,), False,
                                                                 "2026-01-01T00:00:00Z"))
    folder = tmp_path / "cache"
    export(store, [record], LocalCache(folder))
    return folder, record


def test_an_export_reads_back_and_a_missing_folder_or_tag_imports_nothing(tmp_path: Path) -> None:
    folder, record = _exported(tmp_path)
    assert json.loads((folder / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    imported = ImportedCache.load(LocalCache(folder))
    assert imported.find(record.key) == record
    manifest = json.loads((folder / "blobs" / "sha256" / oci.digest_hex(imported.manifest)).read_text())
    assert manifest["config"]["mediaType"] == CONFIG_TYPE
    assert manifest["layers"] == [layer.to_json() for layer in record.result.layers]
    assert ImportedCache.load(LocalCache(folder, tag="other")).records == {}
    assert ImportedCache.load(LocalCache(tmp_path / "nowhere")).records == {}
    assert ImportedCache.load(LocalCache(folder, digest=imported.manifest)).find(record.key) == record


def _rewrite_config(folder: Path, change: object) -> None:
    """Change the config, and write the manifest and index that name it (all digests right)."""
    index = json.loads((folder / "index.json").read_text())
    blobs = folder / "blobs" / "sha256"
    manifest = json.loads((blobs / oci.digest_hex(index["manifests"][0]["digest"])).read_text())
    config = json.loads((blobs / oci.digest_hex(manifest["config"]["digest"])).read_text())
    assert callable(change)
    change(config, manifest)
    data = json.dumps(config).encode()
    (blobs / oci.digest_hex(oci.sha256_digest(data))).write_bytes(data)
    manifest["config"].update(digest=oci.sha256_digest(data), size=len(data))
    data = json.dumps(manifest).encode()
    (blobs / oci.digest_hex(oci.sha256_digest(data))).write_bytes(data)
    index["manifests"][0].update(digest=oci.sha256_digest(data), size=len(data))
    (folder / "index.json").write_text(json.dumps(index))


def _unlisted(config: dict[str, object], manifest: dict[str, object]) -> None:
    manifest["layers"] = []


def _buildkits(config: dict[str, object], manifest: dict[str, object]) -> None:
    manifest["config"]["mediaType"] = "application/vnd.buildkit.cacheconfig.v0"  # type: ignore[index]


def _bad_key(config: dict[str, object], manifest: dict[str, object]) -> None:
    config["records"][0]["key"] = "../../etc"  # type: ignore[index]


def _bad_created(config: dict[str, object], manifest: dict[str, object]) -> None:
    config["records"][0]["created"] = "yesterday\x1b[2J"  # type: ignore[index]


@pytest.mark.parametrize(("change", "message"), [
    (_unlisted, "is not in the manifest's layers"),
    (_bad_created, "is not an RFC 3339 UTC time"),
    (_buildkits, "a cache BuildKit exported"),
    (_bad_key, "a malformed record: unsupported digest"),
])
def test_a_doctored_folder_is_refused_in_one_line(tmp_path: Path, change: object, message: str) -> None:
    folder, _ = _exported(tmp_path)
    _rewrite_config(folder, change)
    with pytest.raises(CacheIOError, match=message) as failed:
        ImportedCache.load(LocalCache(folder))
    assert str(failed.value).startswith(f"cache_from {folder}: ")
    assert "\n" not in str(failed.value)


def test_a_changed_manifest_or_a_linked_index_is_refused(tmp_path: Path) -> None:
    folder, _ = _exported(tmp_path)
    index = json.loads((folder / "index.json").read_text())
    manifest = folder / "blobs" / "sha256" / oci.digest_hex(index["manifests"][0]["digest"])
    manifest.write_bytes(manifest.read_bytes().replace(b'"schemaVersion":2', b'"schemaVersion":3'))
    with pytest.raises(CacheIOError, match="failed verification"):
        ImportedCache.load(LocalCache(folder))
    (folder / "index.json").rename(tmp_path / "index.json")
    (folder / "index.json").symlink_to(tmp_path / "index.json")
    with pytest.raises(CacheIOError, match=r"index\.json is a symbolic link"):
        ImportedCache.load(LocalCache(folder))
