"""The pages of the command server's memory that commands write, copied before a command needs them.

A worker is forked from the server and shares its memory copy-on-write: the first write to a shared
page (a reference count, a free list of the allocator, bytecode the interpreter specialises) makes
the kernel copy that page there and then. A ``run --rm`` writes ~2,500 of them (~10 MiB), 5-8 ms
of its time. So a worker reports, once its command is done, which of the server's pages it wrote
(those now mapped by it alone, per /proc/self/pagemap); the server keeps their union, and each
spare copies those pages (madvise MADV_POPULATE_WRITE) while it waits for a command, off the
command's path. The next command then writes to pages that are its own already.

Linux only (5.14 or later for MADV_POPULATE_WRITE); elsewhere, or when /proc is not readable,
every function here does nothing.
"""

from __future__ import annotations

import array
import os

MADV_POPULATE_WRITE = 23
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_PRESENT = 1 << 63
_EXCLUSIVE = 1 << 56  # mapped by this process alone: written since the fork (or never shared)
_SKIPPED = ("[vvar]", "[vdso]", "[vsyscall]", "[vvar_vclock]")

Regions = list[tuple[int, int]]  # [start, end) addresses


def private_writable_regions() -> Regions:
    """This process's private writable mappings: where copy-on-write happens."""
    regions: Regions = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            lines = maps.read().splitlines()
    except OSError:
        return regions
    for line in lines:
        fields = line.split(maxsplit=5)
        if len(fields) < 5 or fields[1][1] != "w" or fields[1][3] != "p":
            continue
        if len(fields) == 6 and fields[5].strip() in _SKIPPED:
            continue
        start, _, end = fields[0].partition("-")
        regions.append((int(start, 16), int(end, 16)))
    return regions


def written_pages(regions: Regions) -> array.array[int]:
    """The pages of ``regions`` this process has written since it was forked: runs of page
    numbers, as pairs (first page, count)."""
    runs = array.array("Q")
    try:
        pagemap = open("/proc/self/pagemap", "rb")  # closed below (the with), read per region
    except OSError:
        return runs
    with pagemap:
        for start, end in regions:
            first = start // PAGE_SIZE
            entries = array.array("Q")
            try:
                pagemap.seek(first * 8)
                entries.frombytes(pagemap.read((end - start) // PAGE_SIZE * 8))
            except (OSError, ValueError):
                continue
            _append_runs(runs, first, entries)
    return runs


def _append_runs(runs: array.array[int], first: int, entries: array.array[int]) -> None:
    wanted = _PRESENT | _EXCLUSIVE
    run_start = -1
    for offset, entry in enumerate(entries):
        if entry & wanted == wanted:
            if run_start < 0:
                run_start = offset
        elif run_start >= 0:
            runs.extend((first + run_start, offset - run_start))
            run_start = -1
    if run_start >= 0:
        runs.extend((first + run_start, len(entries) - run_start))


def pages_of(runs: array.array[int]) -> set[int]:
    return {page for index in range(0, len(runs) - 1, 2) for page in range(runs[index], runs[index] + runs[index + 1])}


def copy_ahead(pages: set[int]) -> int:
    """Make ``pages`` (page numbers) this process's own copies now; the number of bytes asked."""
    if not pages:
        return 0
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        madvise = libc.madvise
        madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    except (OSError, AttributeError):
        return 0
    total = 0
    ordered = sorted(pages)
    run_start = previous = ordered[0]
    for page in [*ordered[1:], -2]:
        if page == previous + 1:
            previous = page
            continue
        length = (previous - run_start + 1) * PAGE_SIZE
        madvise(run_start * PAGE_SIZE, length, MADV_POPULATE_WRITE)  # unmapped, an old kernel: a no-op
        total += length
        run_start = previous = page
    return total
