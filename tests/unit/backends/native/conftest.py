"""Fixtures for the native image tests (pure parts; no registry)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def root_only() -> None:
    """Device nodes, trusted.* xattrs and chown need root; under CI=true their absence fails."""
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true and these tests need root (mknod, trusted.* xattrs, chown)")
        pytest.skip("needs root (mknod, trusted.* xattrs, chown)")
