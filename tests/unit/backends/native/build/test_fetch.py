"""ADD's checksum syntax and archive detection by content."""

from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path

import pytest

from composer.backends.native.build.copy import CopyError
from composer.backends.native.build.fetch import compression, fetch, is_archive, parse_checksum


def test_checksums() -> None:
    assert parse_checksum("") is None
    assert parse_checksum("sha256:" + "a" * 64) == ("sha256", "a" * 64)
    assert parse_checksum("sha512:" + "0" * 128) == ("sha512", "0" * 128)
    with pytest.raises(CopyError, match="invalid checksum 'md5:"):
        parse_checksum("md5:" + "a" * 32)
    with pytest.raises(CopyError, match="64 lower-case hex digits"):
        parse_checksum("sha256:abc")


def test_archives_are_told_by_content(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("a")
        archive.addfile(info, io.BytesIO(b""))
    (tmp_path / "x.bin").write_bytes(gzip.compress(buffer.getvalue()))
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"hello"))
    (tmp_path / "plain.txt").write_text("hello")
    (tmp_path / "z.tar.zst").write_bytes(b"\x28\xb5\x2f\xfd" + b"\0" * 16)
    assert compression(tmp_path / "x.bin") == "gzip"
    assert is_archive(tmp_path / "x.bin")
    assert not is_archive(tmp_path / "text.gz")
    assert not is_archive(tmp_path / "plain.txt")
    with pytest.raises(CopyError, match="zstd-compressed archive"):
        is_archive(tmp_path / "z.tar.zst")


def test_only_http_and_https(tmp_path: Path) -> None:
    with pytest.raises(CopyError, match="only http and https"):
        fetch("file:///etc/passwd", tmp_path, "")
    assert list(tmp_path.iterdir()) == []
