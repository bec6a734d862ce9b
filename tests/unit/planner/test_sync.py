"""``watch``'s sync archive: files named by their container paths, a new folder's files with it."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from composer.planner.sync import sync_archive
from composer.planner.watch import PathMapping


def test_sync_archive(tmp_path: Path) -> None:
    (tmp_path / "new" / "deep").mkdir(parents=True)
    (tmp_path / "new" / "deep" / "f.txt").write_text("f")
    (tmp_path / "a.txt").write_text("a")
    mappings = (PathMapping(str(tmp_path / "a.txt"), "/srv/a.txt"), PathMapping(str(tmp_path / "new"), "/srv/new"),
                PathMapping(str(tmp_path / "new" / "deep" / "f.txt"), "/srv/new/deep/f.txt"),
                PathMapping(str(tmp_path / "gone.txt"), "/srv/gone.txt"))
    with tarfile.open(fileobj=io.BytesIO(sync_archive(mappings))) as archive:
        names = archive.getnames()
        member = archive.extractfile("srv/new/deep/f.txt")
        assert member is not None
        assert member.read() == b"f"
    assert names == ["srv/a.txt", "srv/new", "srv/new/deep", "srv/new/deep/f.txt"]  # once each; gone.txt left out
