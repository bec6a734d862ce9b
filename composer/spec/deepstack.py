"""Run the loader where a deeply nested Compose file cannot crash the interpreter.

Every stage of the loader walks the tree recursively, and Compose v2 reads files nested 3,000
levels deep (go-yaml refuses beyond 10,000 flow levels and 10,000 block levels: ``limits``
refuses the same, so a tree is at most 20,000 levels deep). CPython's default recursion limit
(1,000) stops at about 500 levels, and raising the limit on the main thread is not safe:
recursion through C code (pickle, json, repr, ``==`` on dicts) uses the C stack, and the main
thread's 8 MiB overflows (a segfault, not a RecursionError) long before that.

So a load runs on a thread of its own with a large stack (reserved, not used: only the pages
a deep file touches are ever allocated) and, while it runs, a recursion limit that stack can
hold. Measured on CPython 3.11: the loader, the renderer and binding take 2 to 2.5 frames per
level (10,000 levels load with a limit of 25,000), so 100,000 holds 20,000 levels twice over;
the costliest C recursion (json, repr, pickle) takes under 2 KiB of stack per level, so the
256 MiB stack holds 100,000 levels of it (json and pickle at 120,000 end in RecursionError).

A nested call (the renderer calling the loader) runs inline on the thread it is on.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

from composer.errors import SourceLocation, SpecError

STACK_BYTES = 256 << 20
RECURSION_LIMIT = 100_000

T = TypeVar("T")

_state = threading.local()
_limit_lock = threading.Lock()
_running = 0
_saved_limit = 0


def _raise_limit() -> None:
    global _running, _saved_limit
    with _limit_lock:
        if _running == 0:
            _saved_limit = sys.getrecursionlimit()
            sys.setrecursionlimit(max(_saved_limit, RECURSION_LIMIT))
        _running += 1


def _restore_limit() -> None:
    global _running
    with _limit_lock:
        _running -= 1
        if _running == 0:
            sys.setrecursionlimit(_saved_limit)


def run_deep(function: Callable[[], T], files: Sequence[str] = ()) -> T:
    """``function()``, run on a thread whose stack holds the raised recursion limit.

    Its exception, if any, is raised here. The recursion limit is the interpreter's, so other
    threads see it raised while a load runs; the main thread waits in ``join`` meanwhile.

    :raises SpecError: the limit was reached all the same (``yamlio`` refuses nesting beyond
        10,000 levels first, so this is a last resort); it names ``files``, the project's.
    """
    if getattr(_state, "deep", False):
        return function()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        _state.deep = True
        try:
            outcome.append(function())
        except RecursionError:
            where = SourceLocation(", ".join(files)) if files else None
            failure.append(SpecError("the project is nested too deeply to load", location=where))
        except BaseException as error:  # handed to the caller's thread, raised there
            failure.append(error)

    worker = threading.Thread(target=work, name="composer-loader", daemon=True)
    started = False
    _raise_limit()
    try:
        with _limit_lock:  # threading.stack_size is process-wide too: set it for this start only
            previous = threading.stack_size(STACK_BYTES)
            try:
                worker.start()
                started = True
            except RuntimeError:  # no room for the stack (ulimit -v): the default limits below
                pass
            finally:
                threading.stack_size(previous)
        if started:
            worker.join()
    finally:
        _restore_limit()
    if not started:
        work()  # inline, at the default recursion limit: a deep file ends in the SpecError below
        _state.deep = False
    if failure:
        raise failure[0]
    return outcome[0]
