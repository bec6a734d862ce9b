"""The residue check the native tests run after every test (``composer system check``'s checker,
composer.backends.native.residue), over every run root the test session made.

The session's run roots are found through their stores: every store under pytest's base temp
folder records the run roots that used it (``<store>/runs/*.json``, composer.backends.native.
reboot), with their cgroup parents. A finding counts when a second look a moment later still
sees it (a process of a concurrent session between two steps of its own teardown is not ours
to judge), and the test fails with the findings printed, one line each as ``system check``
prints them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from composer.backends.native.records import run_roots
from composer.backends.native.residue import Scope, check
from composer.contract.system import Finding

SETTLE_SECONDS = 1.0  # between the two looks
MAX_DEPTH = 5
STORE_PARTS = frozenset({"blobs", "layers", "l", "containers", "volumes", "incoming", "tmp", "locks", "seccomp",
                         "networks"})


def stores(base: Path) -> Iterator[Path]:
    """Folders under ``base`` that are image stores with a run root on record (not descending
    into any store's content, nor deeper than MAX_DEPTH)."""
    base_depth = len(base.parts)
    for folder, subfolders, _ in os.walk(base):
        path = Path(folder)
        if (path / "runs").is_dir() and (path / "blobs").is_dir():
            yield path
            subfolders[:] = []
            continue
        if len(path.parts) - base_depth >= MAX_DEPTH:
            subfolders[:] = []
        else:
            subfolders[:] = [s for s in subfolders if s not in STORE_PARTS]


def scopes(base: Path) -> list[Scope]:
    """The session's run roots (those under ``base``: a test whose CLI ran with the default
    /run/composer shares it with the host, which is not the session's to judge)."""
    found = []
    for store in stores(base):
        for record in run_roots(store):
            run_root = Path(record["run_root"])
            if run_root.is_relative_to(base.resolve()):
                found.append(Scope(run_root, store, str(record.get("cgroup_parent") or "composer")))
    return found


def residue(base: Path) -> list[Finding]:
    """What the session's run roots hold that no project accounts for (looked at twice)."""
    first = [f for scope in scopes(base) for f in check(scope)]
    if not first:
        return []
    time.sleep(SETTLE_SECONDS)
    again = {(f.kind, f.name) for scope in scopes(base) for f in check(scope)}
    return [f for f in first if (f.kind, f.name) in again]


def report(findings: list[Finding]) -> str:
    return "composer system check found residue:\n" + "\n".join(
        f"  {f.kind} {f.name}: {f.reason}" + (f" (project {f.project})" if f.project else "") for f in findings)


_REPORTED: set[tuple[str, str]] = set()  # a finding fails the first test after which it is seen, only that one


@pytest.fixture(autouse=True)
def system_check(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """After the test (and its own fixtures' teardown): fail it on residue, findings printed."""
    yield
    found = [f for f in residue(tmp_path_factory.getbasetemp()) if (f.kind, f.name) not in _REPORTED]
    _REPORTED.update((f.kind, f.name) for f in found)
    if found:
        pytest.fail(report(found), pytrace=False)
