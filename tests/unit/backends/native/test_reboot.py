"""The reboot recovery's first step: recording a run root, and leaving a store alone that is not there."""

from __future__ import annotations

from pathlib import Path

from composer.backends.native import reboot, records
from composer.owner import boot_id


def test_a_run_root_is_recorded_once_with_this_boot(tmp_path: Path) -> None:
    store, run_root = tmp_path / "store", tmp_path / "run"
    store.mkdir()
    assert records.run_roots(store) == []
    assert reboot.recover_if_rebooted(run_root, store, "composer-x") == []  # nothing to restore, recorded
    assert records.run_roots(store) == [{"run_root": str(run_root.resolve()), "cgroup_parent": "composer-x",
                                        "boot_id": boot_id()}]
    assert records.run_record(store, run_root) != records.run_record(store, tmp_path / "other")


def test_a_missing_store_is_left_alone(tmp_path: Path) -> None:
    assert reboot.recover_if_rebooted(tmp_path / "run", tmp_path / "none", "composer") == []
    assert not (tmp_path / "none").exists()
