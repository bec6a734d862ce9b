"""build.hashes: file digests remembered by stat, and what the key cannot miss."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from composer.backends.native.build.hashes import FILE, RACY_SECONDS, ContentHashes, file_digest


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A store's root as the builder has it (its tmp/ exists)."""
    (tmp_path / "store" / "tmp").mkdir(parents=True)
    return tmp_path / "store"


@pytest.fixture
def old_file(tmp_path: Path) -> Path:
    """A file whose mtime and ctime are older than RACY_SECONDS (its digest is kept)."""
    path = tmp_path / "ctx" / "file.txt"
    path.parent.mkdir()
    path.write_bytes(b"one\n")
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    time.sleep(RACY_SECONDS + 0.2)
    return path


def test_a_kept_digest_answers_without_reading(root: Path, old_file: Path) -> None:
    hashes = ContentHashes(root)
    assert hashes.digest(old_file) == _sha(b"one\n")
    hashes.save()
    saved = json.loads(root.joinpath(*FILE).read_bytes())
    (key,) = saved["files"]
    # the next build answers from the file: a digest put there is what it says (nothing read)
    saved["files"][key] = "f" * 64
    root.joinpath(*FILE).write_text(json.dumps(saved))
    assert ContentHashes(root).digest(old_file) == "f" * 64


def test_an_edit_with_the_size_and_mtime_put_back_is_seen(root: Path, old_file: Path) -> None:
    hashes = ContentHashes(root)
    assert hashes.digest(old_file) == _sha(b"one\n")
    hashes.save()
    before = os.stat(old_file)
    old_file.write_bytes(b"two\n")
    os.utime(old_file, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (os.stat(old_file).st_size, os.stat(old_file).st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert ContentHashes(root).digest(old_file) == _sha(b"two\n")  # the ctime moved


def test_a_file_replaced_by_a_rename_is_another_file(root: Path, old_file: Path) -> None:
    hashes = ContentHashes(root)
    hashes.digest(old_file)
    hashes.save()
    before = os.stat(old_file)
    other = old_file.with_name("other")
    other.write_bytes(b"two\n")
    os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
    os.rename(other, old_file)
    assert ContentHashes(root).digest(old_file) == _sha(b"two\n")


def test_a_file_changed_just_before_it_was_hashed_is_not_kept(root: Path, tmp_path: Path) -> None:
    """Its next write could fall in the same ctime granule: it is read again next time."""
    path = tmp_path / "new.txt"
    path.write_bytes(b"fresh\n")
    hashes = ContentHashes(root)
    assert hashes.digest(path) == _sha(b"fresh\n")
    hashes.save()
    assert not root.joinpath(*FILE).exists()


def test_an_unreadable_cache_is_empty(root: Path, old_file: Path) -> None:
    root.joinpath(*FILE).parent.mkdir()
    root.joinpath(*FILE).write_text("{not json")
    hashes = ContentHashes(root)
    assert hashes.digest(old_file) == file_digest(old_file) == _sha(b"one\n")
    hashes.save()
    assert len(json.loads(root.joinpath(*FILE).read_bytes())["files"]) == 1
