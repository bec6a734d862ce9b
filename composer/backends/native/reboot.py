"""After a reboot: reclaim what the old boot left and bring back the containers Docker brings back.

/run is a tmpfs: a reboot empties the run root (config.json, state, networks, supervisors' files)
while the store keeps every container's writable layer and log. So each container's store folder
also holds what it takes to restore it (records.py, written at create)::

    <store>/containers/<id>/container.json   its config.json, the texts of its hostname, hosts
                                              and resolv.conf, and the state of each network it
                                              is attached to (bridge, pools) when it was made
    <store>/containers/<id>/stopped          present while it is stopped by the user (stop, kill)

and the store records, for each run root that used it, that run root's cgroup parent and the
boot it last ran in (``<store>/runs/<hash of the run root>.json``: ``run_root``,
``cgroup_parent``, ``boot_id``; also how the test suite's residue fixture finds every run root of
a store). The first command that opens the native backend after a new boot id
(``recover_if_rebooted``, under ``<store>/runs/<hash>.lock``) restores each container of this run
root as a stopped one (its run folder and files again, its networks' bridges and rules again,
with the same subnets), with its last exit as dockerd restores it: a container that had exited
keeps its exit code (and OOM kill), kept in ``<store>/containers/<id>/exit.json`` by its monitor;
one that was running when the machine went down exited with 255 (moby's restore: no exit status
from containerd). One that never ran stays "created".

Then it starts those dockerd starts (moby's daemon.restore: ``c.ShouldRestart()`` of a container
that has been started before, the restart manager's rule, which is the supervisor's
``restart_wanted``): ``always`` (even after a manual stop), ``unless-stopped`` unless the user
stopped it (``stopped``), ``on-failure`` when its last exit code is not 0 and its
``max_attempts`` (counted until that exit) are not used up. As dockerd's, the rule weighs a
manual stop for ``unless-stopped`` alone: an ``on-failure`` container stopped with a non-zero
code (137) comes back. The restarts of a container running at the reboot are not kept (its
exit record is only written when it exits): it gets its ``max_attempts`` anew.
What the old boot left in the run root (a run root on a disk survives) is dropped first: its
processes and cgroups died with the kernel.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from pathlib import Path
from typing import Any

from composer.backends.native.records import ETC, RECORD, STOPPED, read, run_record, write_run_record
from composer.backends.native.runtime.init import STORE_EXIT, state_json
from composer.owner import boot_id

RUN_STATE = ("state.json", "exit.json", "supervise.json", "health.json", "lock", "monitor.log")


def recover_if_rebooted(run_root: Path, store_root: Path, cgroup_parent: str) -> list[str]:
    """Restore the run root after a reboot (see the module doc); what was restored and started, as
    lines for a warning. Cheap when the recorded boot id is this one's (one small read). Without a
    record no container of this run root was made with this store (the first create writes it:
    records.record_container): nothing to restore, and nothing is written (a ``ps`` or ``config``
    of nothing leaves nothing on the host)."""
    current = boot_id()
    path = run_record(store_root, run_root)
    recorded = read(path)
    if recorded is None or recorded.get("boot_id") == current or not store_root.is_dir():
        return []
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        record = read(path)
        if (record or {}).get("boot_id") == current:
            return []
        restored = []
        containers_dir = store_root / "containers"
        roots = (str(run_root.resolve()) + "/", str(run_root) + "/")
        for data_dir in sorted(containers_dir.iterdir()) if containers_dir.is_dir() else []:
            saved = read(data_dir / RECORD)
            if saved is None or not str(saved.get("run_dir", "")).startswith(roots):
                continue
            _restore(saved, data_dir)
            restored.append((data_dir, saved))
        write_run_record(store_root, run_root, cgroup_parent)
    finally:
        os.close(fd)
    return _start_wanted(run_root, store_root, cgroup_parent, restored)


def _last_exit(data_dir: Path) -> dict[str, Any]:
    """The exit the container's monitor kept in the store, or Docker's 255 for one that was
    running when the machine went down (or whose record a crash lost)."""
    kept = read(data_dir / STORE_EXIT)
    if kept is not None and isinstance(kept.get("exit_code"), int):
        return kept
    return {"exit_code": 255, "signal": None, "oom_killed": False, "restart_count": 0}


def _ran(record: dict[str, Any]) -> bool:
    """Whether the container ever ran (its log exists): Docker's HasBeenStartedBefore."""
    return Path(str(record.get("log_path") or "/nonexistent")).exists()


def _restore(record: dict[str, Any], data_dir: Path) -> None:
    """The container's run folder as create left it (the old boot's state files dropped), with
    its last exit."""
    from composer.backends.native.runtime.api import private_project_dir

    run_dir = Path(str(record["run_dir"]))
    private_project_dir(run_dir.parent.parent, str(record["project"]))
    for stale in ("supervisor.pid", "supervisor.sock", "supervisor.lock", "dns"):
        with contextlib.suppress(OSError):
            path = run_dir.parent / stale
            if path.is_dir():
                from composer.backends.native.trees import remove_tree

                remove_tree(path)
            else:
                path.unlink()
    with contextlib.suppress(FileExistsError):
        run_dir.mkdir(mode=0o700)
    for name in RUN_STATE:
        (run_dir / name).unlink(missing_ok=True)
    for name, text in (record.get("saved_etc") or {}).items():
        if name in ETC:
            (run_dir / name).write_text(text)
            (run_dir / name).chmod(0o644)
    if _ran(record):  # it ran in the old boot: it had exited, or it exited with the machine
        last = _last_exit(data_dir)
        state_json(str(run_dir / "exit.json"), {
            "exit_code": int(last["exit_code"]), "signal": last.get("signal"),
            "oom_killed": bool(last.get("oom_killed")), "started": last.get("started"),
            "finished": last.get("finished") or time.time(), "rebooted": True})
    # stopped as far as any supervisor can tell: one adopting the project must not restart it;
    # the containers started below have it cleared by their start
    state_json(str(run_dir / "supervise.json"), {"manual_stop": True, "restart_count": 0, "restarting": False})
    config = {k: v for k, v in record.items() if k not in ("saved_etc", "saved_networks")}
    state_json(str(run_dir / "config.json"), config)


def _ensure_networks(record: dict[str, Any]) -> None:
    """The container's networks as they were (bridge, subnets, rules, DNS), when they are gone."""
    from composer.backends.native.network import ipam
    from composer.backends.native.network.manager import NetworkManager, _atomic_json

    settings = record.get("network") or {}
    if settings.get("mode") != "bridge":
        return
    manager = NetworkManager(settings["run_root"])
    projects = set()
    for name, state in (record.get("saved_networks") or {}).items():
        with manager._locked():
            if manager.network(name) is not None:
                continue
            pools = [ipam.Pool.from_json(p) for p in state.get("pools") or []]
            manager._setup_bridge(str(state["bridge"]), pools, internal=bool(state.get("internal")))
            _atomic_json(manager._path(name), state)
        projects.add(str(state["project"]))
    for project in projects:
        manager._dns_sync(project)


def _start_wanted(run_root: Path, store_root: Path, cgroup_parent: str,
                  restored: list[tuple[Path, dict[str, Any]]]) -> list[str]:
    from composer.backends.native.image.store import ImageStore
    from composer.backends.native.lifecycle import NativeContainers
    from composer.backends.native.runtime.supervisor import restart_wanted
    from composer.contract.backend import ContainerRef
    from composer.errors import ComposerError

    lines = []
    wanted = []
    for data_dir, record in restored:
        policy = record.get("restart") or {}
        last = _last_exit(data_dir)
        manually_stopped = policy.get("name") == "unless-stopped" and (data_dir / STOPPED).exists()
        if _ran(record) and restart_wanted(policy, int(last["exit_code"]), int(last.get("restart_count") or 0),
                                           manually_stopped):
            wanted.append(record)
        lines.append(f"container {record['name']} restored after a reboot")
    if not wanted:
        return lines
    containers = NativeContainers(ImageStore(store_root), run_root, cgroup_parent)
    try:
        for record in wanted:
            try:
                _ensure_networks(record)
                containers.start(ContainerRef(str(record["id"]), str(record["name"])))
                lines.append(f"container {record['name']} started (restart: {record['restart']['name']})")
            except (ComposerError, OSError) as exc:
                lines.append(f"container {record['name']} could not be started after the reboot: {exc}")
    finally:
        containers.release()
    return lines
