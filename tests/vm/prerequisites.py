"""What the guest lane needs on the host, in one place: the harness, its tests and ``make test`` ask here."""

from __future__ import annotations

import os
import shutil

from tests.vm.accel import QEMU

TOOLS = {QEMU: "qemu-system-x86", "debootstrap": "debootstrap", "socat": "socat", "mkfs.ext4": "e2fsprogs"}


def missing() -> str:
    """Why guests cannot run here (one line), or "" when they can."""
    if os.geteuid() != 0:
        return "the guest lane needs root (network namespace, taps, debootstrap)"
    absent = [f"{tool} ({package})" for tool, package in TOOLS.items() if shutil.which(tool) is None]
    if absent:
        return f"the guest lane needs {', '.join(absent)}: make deps"
    return ""


def on_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def require() -> None:
    """In a test: skip it when guests cannot run here, and fail it instead under CI=true."""
    import pytest

    reason = missing()
    if reason and on_ci():
        pytest.fail(f"CI=true and {reason}")
    if reason:
        pytest.skip(reason)
