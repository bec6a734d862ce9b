"""The project's events file: lines appended whole, bounded by rotation, and followed through
rotation and through the project's folder going and coming back."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from composer.backends.native.runtime import eventlog

CONFIG = {"id": "c" * 64, "name": "p-web-1", "image_ref": "busybox", "image": "docker.io/library/busybox:latest",
          "labels": {"team": "blue", "com.docker.compose.service": "web"}}


def test_a_line_carries_dockers_attributes(tmp_path: Path) -> None:
    eventlog.record(tmp_path, "die", CONFIG, exitCode="3")
    line = json.loads((tmp_path / eventlog.FILE).read_text())
    assert (line["action"], line["id"], line["type"]) == ("die", "c" * 64, "container")
    assert line["attributes"] == {"team": "blue", "com.docker.compose.service": "web", "image": "busybox",
                                  "name": "p-web-1", "exitCode": "3"}
    assert (tmp_path / eventlog.FILE).stat().st_mode & 0o777 == 0o600


def test_a_missing_folder_loses_the_event_not_the_operation(tmp_path: Path) -> None:
    eventlog.record(tmp_path / "gone", "destroy", CONFIG)
    assert not (tmp_path / "gone").exists()


def test_the_file_is_bounded_and_the_follower_reads_through_rotation(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(eventlog, "MAX_BYTES", 2000)
    follower = eventlog.Follower(tmp_path)
    seen = []
    for index in range(40):
        eventlog.record(tmp_path, "start", CONFIG, n=str(index))
        if index % 3 == 0:
            seen += follower.poll()
    seen += follower.poll()
    assert [int(event["attributes"]["n"]) for event in seen] == list(range(40))
    assert (tmp_path / eventlog.ROTATED).is_file()
    total = sum(path.stat().st_size for path in tmp_path.iterdir())
    assert total < 2 * 2000 + 1000, total  # two generations at most
    follower.close()


def test_the_follower_starts_at_the_end_and_survives_the_folder_going(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    eventlog.record(folder, "create", CONFIG)
    follower = eventlog.Follower(folder)
    assert follower.poll() == []  # what was there before it started is not its
    eventlog.record(folder, "destroy", CONFIG)
    shutil.rmtree(folder)
    assert [event["action"] for event in follower.poll()] == ["destroy"]
    assert follower.poll() == []
    folder.mkdir()
    eventlog.record(folder, "create", CONFIG)
    eventlog.record(folder, "start", CONFIG)
    assert [event["action"] for event in follower.poll()] == ["create", "start"]
    follower.close()


def test_a_partial_line_waits_for_its_end(tmp_path: Path) -> None:
    follower = eventlog.Follower(tmp_path)
    line = json.dumps({"action": "start", "attributes": {}}) + "\n"
    with open(tmp_path / eventlog.FILE, "a") as f:
        f.write(line[:10])
        f.flush()
        assert follower.poll() == []
        f.write(line[10:])
    assert [event["action"] for event in follower.poll()] == ["start"]
    follower.close()


def test_a_line_cut_by_a_killed_writer_costs_no_later_event(tmp_path: Path) -> None:
    follower = eventlog.Follower(tmp_path)
    with open(tmp_path / eventlog.FILE, "ab") as f:
        f.write(b'{"action":"sta')  # killed here
    eventlog.record(tmp_path, "die", CONFIG, exitCode="0")
    assert [event["action"] for event in follower.poll()] == ["die"]
    follower.close()
