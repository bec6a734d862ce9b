"""Log rotation as the monitor does it, in a tmp directory: the files kept, their order, gzip
from the second rotated file on, and a reader that follows the log across rotations without
losing or repeating a line."""

from __future__ import annotations

import gzip
from pathlib import Path

from composer.backends.native.runtime.logfiles import Cursor, RotatingFile, log_files, read_all


def lines(first: int, last: int) -> list[bytes]:
    return [b"line %04d" % n for n in range(first, last)]


def test_rotation_keeps_max_file_files_of_at_most_max_size(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=100, max_file=3)
    for line in lines(0, 100):
        writer.write(line + b"\n")
    writer.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["container.log", "container.log.1", "container.log.2"]
    assert all(p.stat().st_size <= 100 for p in tmp_path.iterdir())
    kept = read_all(str(log)).splitlines()
    assert kept == lines(100 - len(kept), 100)  # the newest lines, in order, none lost in between
    assert len(kept) >= 20


def test_compress_gzips_the_older_rotated_files_and_reads_them_back(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=100, max_file=4, compress=True)
    for line in lines(0, 100):
        writer.write(line + b"\n")
    writer.close()
    assert [Path(name).name for name in log_files(str(log))] == [
        "container.log.3.gz", "container.log.2.gz", "container.log.1", "container.log"]
    assert gzip.decompress((tmp_path / "container.log.2.gz").read_bytes()).endswith(b"\n")
    kept = read_all(str(log)).splitlines()
    assert kept == lines(100 - len(kept), 100)


def test_one_file_is_emptied_instead_of_rotated(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=50, max_file=1)
    for line in lines(0, 20):
        writer.write(line + b"\n")
    writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["container.log"]
    assert log.read_bytes().splitlines()[-1] == b"line 0019"


def test_a_follower_reads_across_rotations_in_order(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=200, max_file=5, compress=True)
    cursor = Cursor(str(log))
    seen: list[bytes] = cursor.read()
    for start in range(0, 300, 7):  # a few lines between reads: at most one rotation each time
        for line in lines(start, min(start + 7, 300)):
            writer.write(line + b"\n")
        seen += cursor.read()
    writer.close()
    assert seen == lines(0, 300)


def test_the_first_read_takes_the_tail_from_the_rotated_files_too(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=100, max_file=5, compress=True)
    for line in lines(0, 40):
        writer.write(line + b"\n")
    assert Cursor(str(log)).read(tail=25) == lines(15, 40)
    assert Cursor(str(log)).read(tail=0) == []
    cursor = Cursor(str(log))
    assert cursor.read(tail=3) == lines(37, 40)
    writer.write(b"line 0040\n")
    assert cursor.read() == [b"line 0040"]
    writer.close()


def test_a_large_write_is_split_at_lines_so_no_file_passes_max_size(tmp_path: Path) -> None:
    log = tmp_path / "container.log"
    writer = RotatingFile(str(log), max_size=100, max_file=50)
    writer.write(b"".join(line + b"\n" for line in lines(0, 60)))  # 600 bytes at once
    writer.write(b"x" * 250 + b"\n")  # longer than a file: alone in one
    writer.write(b"after\n")
    writer.close()
    sizes = sorted(p.stat().st_size for p in tmp_path.iterdir())
    assert sizes[-1] == 251
    assert max(sizes[:-1]) <= 100, sizes
    assert read_all(str(log)).splitlines() == [*lines(0, 60), b"x" * 250, b"after"]
