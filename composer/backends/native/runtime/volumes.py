"""Named and anonymous volumes in the store: ``<store root>/volumes/<name>/``.

    volume.json   {"name", "labels", "created", "driver": "local", "anonymous"}
    _data/        the content, bind-mounted into containers (filled from the image's content at
                  the mount point on first use, by the container's helper: init.fill_volume)

Created by ``up`` (the project's volumes, with Compose's labels) or on first use (anonymous
volumes, labelled with the project and the container), removed by ``down -v`` / ``rm -v``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from composer.backends.native.image.store import remove_tree
from composer.backends.native.runtime.init import atomic_json
from composer.names import valid_container_name


def root(store_root: Path) -> Path:
    return store_root / "volumes"


def path(store_root: Path, name: str) -> Path:
    """:raises BackendError: ``name`` is not a valid volume name (Docker's rule, as its local driver)."""
    from composer.backends.native.runtime.api import checked_name

    return root(store_root) / checked_name("volume", name)


def data_dir(store_root: Path, name: str) -> Path:
    return path(store_root, name) / "_data"


def inspect(store_root: Path, name: str) -> dict[str, Any] | None:
    try:
        data = json.loads((path(store_root, name) / "volume.json").read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def create(store_root: Path, name: str, labels: Mapping[str, str], *, anonymous: bool = False) -> dict[str, Any]:
    """Create the volume (an existing one is returned as it is)."""
    found = inspect(store_root, name)
    if found is not None:
        return found
    folder = path(store_root, name)
    (folder / "_data").mkdir(mode=0o755, parents=True, exist_ok=True)
    record = {"name": name, "labels": dict(labels), "created": time.time(), "driver": "local",
              "anonymous": anonymous}
    atomic_json(str(folder / "volume.json"), record)
    return record


def anonymous_name() -> str:
    return secrets.token_hex(32)


def remove(store_root: Path, name: str) -> bool:
    folder = path(store_root, name)
    if not folder.exists():
        return False
    remove_tree(folder)
    return True


def listing(store_root: Path) -> list[dict[str, Any]]:
    folder = root(store_root)
    if not folder.is_dir():
        return []
    found = []
    for entry in sorted(os.listdir(folder)):
        if not valid_container_name(entry):  # not a volume's folder (none can have that name)
            continue
        record = inspect(store_root, entry)
        if record is not None:
            found.append(record)
    return found
