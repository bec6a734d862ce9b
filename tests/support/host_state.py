"""The session's own native state: every CLI the tests start runs with a run root and a cgroup
parent of the session's (set by tests/conftest.py, removed at its end), never the host's
/run/composer and ``composer`` cgroups, even when a test gives it a bare environment."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

PRIVATE = ("COMPOSER_RUN_ROOT", "COMPOSER_CGROUP_PARENT", "COMPOSER_SERVER_DIR")
REPO = Path(__file__).resolve().parents[2]


def make_private(base: str) -> dict[str, str]:
    """The session's run root (under ``base``) and cgroup parent (a name of its own)."""
    return {"COMPOSER_RUN_ROOT": os.path.join(base, "run"),
            "COMPOSER_CGROUP_PARENT": f"composer-suite-{uuid.uuid4().hex[:8]}"}


def cli_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """A bare environment for ``python -m composer`` with the session's private state (PRIVATE,
    from this process's environment) and ``extra``."""
    return {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO),
            **{key: os.environ[key] for key in PRIVATE if key in os.environ}, **(extra or {})}


def cgroup_folders(parent: str) -> list[Path]:
    """``parent``'s folder in each cgroup hierarchy mounted under /sys/fs/cgroup, where it exists."""
    root = Path("/sys/fs/cgroup")
    candidates = [root / parent, *(p / parent for p in root.iterdir() if p.is_dir())] if root.is_dir() else []
    return [p for p in candidates if p.is_dir()]


def remove_private(private: dict[str, str]) -> None:
    """The session's run root and its cgroup parent's empty folders (rmdir: a folder still holding a
    cgroup is a leak for the residue checks to report, not for this to hide)."""
    shutil.rmtree(private["COMPOSER_RUN_ROOT"], ignore_errors=True)
    deadline = time.monotonic() + 5  # a command server's spare monitor, dismissed, removes its cgroup
    while (folders := cgroup_folders(private["COMPOSER_CGROUP_PARENT"])) and time.monotonic() < deadline:
        for folder in folders:
            try:
                folder.rmdir()
            except OSError:
                time.sleep(0.1)
