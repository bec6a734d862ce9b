"""composer/cli/pages.py on real memory: the pages a forked child writes are found through
/proc/self/pagemap, and copying them ahead makes them the child's own before it writes them."""

from __future__ import annotations

import marshal
import os
import sys
from collections.abc import Callable

import pytest

from composer.cli import pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/pagemap is Linux's")

PAGES = 64


def in_child(work: Callable[[], list[int]]) -> list[int]:
    """``work()``'s value, computed in a forked child (which shares this process's memory)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            os.write(write_end, marshal.dumps(work()))
        finally:
            os._exit(0)
    os.close(write_end)
    data = b""
    while chunk := os.read(read_end, 1 << 16):
        data += chunk
    os.close(read_end)
    os.waitpid(pid, 0)
    return list(marshal.loads(data))


def page_numbers(buffers: list[bytearray]) -> set[int]:
    import ctypes

    return {ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b)) // pages.PAGE_SIZE for b in buffers}


def test_the_pages_a_child_writes_are_reported() -> None:
    buffers = [bytearray(pages.PAGE_SIZE * 2) for _ in range(PAGES)]  # two pages each: one starts inside
    wanted = page_numbers(buffers)
    regions = pages.private_writable_regions()

    def write_half() -> list[int]:
        for buffer in buffers[: PAGES // 2]:
            buffer[pages.PAGE_SIZE] = 1  # in the buffer's second page, which it holds whole
        return sorted(pages.pages_of(pages.written_pages(regions)))

    written = set(in_child(write_half))
    written_buffers = {number + 1 for number in page_numbers(buffers[: PAGES // 2])}
    untouched = {number + 1 for number in page_numbers(buffers[PAGES // 2:])}
    assert written_buffers <= written
    assert not (untouched - written_buffers) & written
    assert wanted  # the buffers were found at all


def test_copied_pages_are_the_childs_own_before_it_writes() -> None:
    buffers = [bytearray(pages.PAGE_SIZE * 2) for _ in range(PAGES)]
    second_pages = {number + 1 for number in page_numbers(buffers)}
    regions = pages.private_writable_regions()

    def copy_then_look() -> list[int]:
        asked = pages.copy_ahead(second_pages)
        assert asked == len(second_pages) * pages.PAGE_SIZE
        return sorted(pages.pages_of(pages.written_pages(regions)))

    own = set(in_child(copy_then_look))
    assert second_pages <= own  # copied by the kernel although nothing was written


def test_nothing_to_copy_is_a_no_op() -> None:
    assert pages.copy_ahead(set()) == 0
    assert pages.pages_of(pages.written_pages([])) == set()
