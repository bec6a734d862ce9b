"""The guest lane's fixture: ``boot_guests(n, packages=...)`` gives n booted guests for the test module.

    def test_something(boot_guests):
        manager, worker = boot_guests(2, packages=("docker.io",))
        worker.check("ping", "-c", "1", manager.address)

Each call boots its own guests on a bridge of their own (tests/vm/machine.py); all are powered off and
every namespace, tap and temporary folder removed after the module's last test, pass or fail.  Without
root, qemu or debootstrap the tests are skipped, and fail instead under CI=true.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.vm import prerequisites
from tests.vm.machine import BootGuests, Guest, Options, guests


@pytest.fixture(scope="module")
def boot_guests() -> Iterator[BootGuests]:
    prerequisites.require()
    with contextlib.ExitStack() as stack:
        def boot(count: int = 1, packages: Sequence[str] = (), shares: Sequence[Path] = ()) -> list[Guest]:
            options = Options(guests=count, packages=tuple(packages), shares=tuple(shares))
            return stack.enter_context(guests(options))

        yield boot
