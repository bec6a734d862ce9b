"""What the store keeps so that a reboot loses no container (reboot.py reads it back), and that the
residue check and the test suite's fixture use to find every run root of a store::

    <store>/containers/<id>/container.json   its config.json, the texts of its hostname, hosts
                                              and resolv.conf, and the state of each network it
                                              is attached to (bridge, pools) when it was made
    <store>/containers/<id>/stopped          present while it is stopped by the user (stop, kill)
    <store>/runs/<hash of the run root>.json  ``run_root``, ``cgroup_parent``, ``boot_id``: each
                                              run root that used the store, and its last boot

Written by the runtime (``record_container`` at create) and the lifecycle (``remember_stop``);
imports nothing of the backend's beyond the network state it copies.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

from composer.backends.native.runtime.init import atomic_json
from composer.owner import boot_id

RUNS = "runs"
RECORD = "container.json"
STOPPED = "stopped"
ETC = ("hostname", "hosts", "resolv.conf")


def read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def run_record(store_root: Path, run_root: Path) -> Path:
    """Where the store records ``run_root`` (its cgroup parent, its last boot)."""
    digest = hashlib.sha256(str(run_root.resolve()).encode()).hexdigest()[:16]
    return store_root / RUNS / f"{digest}.json"


def run_roots(store_root: Path) -> list[dict[str, Any]]:
    """Every run root the store records: ``run_root``, ``cgroup_parent``, ``boot_id``."""
    folder = store_root / RUNS
    if not folder.is_dir():
        return []
    return [r for p in sorted(folder.glob("*.json")) if (r := read(p)) is not None and r.get("run_root")]


def write_run_record(store_root: Path, run_root: Path, cgroup_parent: str) -> None:
    path = run_record(store_root, run_root)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    atomic_json(str(path), {"run_root": str(run_root.resolve()), "cgroup_parent": cgroup_parent,
                            "boot_id": boot_id()})


def record_container(config: dict[str, Any], data_dir: Path, *, etc_dir: Path | None = None) -> None:
    """Write ``container.json`` into the container's store folder (at create: config.json is
    written), and the run root's record into the store when it has none."""
    from composer.backends.native.network.manager import NetworkManager

    run_dir = Path(str(config["run_dir"]))
    store_root = data_dir.parent.parent
    if not run_record(store_root, run_dir.parent.parent).exists():
        write_run_record(store_root, run_dir.parent.parent, str(config["cgroup"]).rpartition("/")[0])
    etc = {}
    for file in ETC:
        with contextlib.suppress(OSError):
            etc[file] = ((etc_dir or run_dir) / file).read_text()  # etc_dir: where create writes them
    networks = {}
    settings = config.get("network") or {}
    if settings.get("mode") == "bridge":
        manager = NetworkManager(settings["run_root"])
        for attachment in settings.get("attachments") or []:
            network = attachment.get("network") if isinstance(attachment, dict) else None
            state = manager.network(str(network)) if network else None
            if state is not None:
                networks[str(network)] = {**state, "endpoints": {}, "releasing": {}, "users": []}
    atomic_json(str(data_dir / RECORD), {**config, "saved_etc": etc, "saved_networks": networks})


def remember_stop(data_dir: Path, stopped: bool) -> None:
    """Record (or forget) that the user stopped the container: ``unless-stopped`` then stays down
    after a reboot."""
    marker = data_dir / STOPPED
    if stopped:
        with contextlib.suppress(FileNotFoundError):
            marker.touch()
    else:
        marker.unlink(missing_ok=True)
