"""The pull's progress reports: at most one per interval, the first and the last byte always."""

from __future__ import annotations

import io

from composer.backends.native.image.pull import _MeteredReader, throttled


def test_throttled_reports_the_first_and_last_byte_and_one_per_interval() -> None:
    now = [0.0]
    told: list[int] = []
    progress = throttled(told.append, 1000, interval=0.1, clock=lambda: now[0])
    for current in range(0, 1001, 10):  # 101 chunks over 0.25 s
        progress(current)
        now[0] += 0.0025
    assert told[0] == 0
    assert told[-1] == 1000
    assert len(told) == 4  # 0, then 0.1 s and 0.2 s later, then the last byte
    assert told == sorted(told)


def test_metered_reader_tells_how_far_the_blob_was_read() -> None:
    told: list[int] = []
    reader = _MeteredReader(io.BytesIO(b"x" * 100), told.append)
    assert reader.read(4) == b"xxxx"
    reader.seek(0, io.SEEK_END)  # apply_layer measures the blob: no report
    reader.seek(0)
    while reader.read(30):
        pass
    assert told == [4, 30, 60, 90, 100]
