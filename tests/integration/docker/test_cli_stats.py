"""``stats`` on the docker backend, side by side with v2 on the same containers: the table's
columns, ``--format json``'s fields, a template, ``-a`` with a stopped container, a busy container's
CPU and a memory limit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project

V2 = Path(sys.executable).parent / "docker-compose"


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    folder = tmp_path / f"cs{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  busy:
    image: {busybox_image}
    command: ["sh", "-c", "while :; do :; done"]
    mem_limit: 64m
    init: true
  idle:
    image: {busybox_image}
    command: ["sleep", "600"]
    init: true
  done:
    image: {busybox_image}
    command: ["true"]
""")
    yield folder
    remove_project(docker_api, folder.name)


def run(folder: Path, *args: str, v2: bool = False) -> str:
    command = [str(V2)] if v2 else [sys.executable, "-m", "composer"]
    done = subprocess.run([*command, "-p", folder.name, *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, (command, args, done.stderr)
    return done.stdout


def test_stats_as_v2_shows_them(folder: Path) -> None:
    if not V2.exists() and shutil.which("docker-compose") is None:
        pytest.fail("the v2 binary (docker-compose) is missing beside the interpreter")
    run(folder, "up", "-d")
    ours = run(folder, "stats", "--no-stream").splitlines()
    theirs = run(folder, "stats", "--no-stream", v2=True).splitlines()
    assert re.split(r"\s{2,}", ours[0]) == re.split(r"\s{2,}", theirs[0]) == [
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    assert len(ours) == len(theirs) == 3  # the running ones: busy and idle

    rows = {row["Name"]: row for row in map(json.loads, run(folder, "stats", "--no-stream", "--format", "json")
                                             .splitlines())}
    v2_rows = {row["Name"]: row for row in map(json.loads, run(folder, "stats", "--no-stream", "--format", "json",
                                                                  v2=True).splitlines())}
    assert set(rows) == set(v2_rows) == {f"{folder.name}-busy-1", f"{folder.name}-idle-1"}
    for name, row in rows.items():
        theirs_row = v2_rows[name]
        assert list(row) == list(theirs_row)  # the same fields, in the same order
        for field in ("Container", "ID", "Name"):
            assert row[field] == theirs_row[field]
        assert row["MemUsage"].split(" / ")[1] == theirs_row["MemUsage"].split(" / ")[1]
    busy = rows[f"{folder.name}-busy-1"]
    sys.stdout.write(f"\nstats busy: ours {busy}\n            v2's {v2_rows[f'{folder.name}-busy-1']}\n")
    assert busy["MemUsage"].endswith(" / 64MiB")
    assert float(busy["CPUPerc"].rstrip("%")) > 5.0  # a busy loop, sampled over half a second
    assert busy["PIDs"] == v2_rows[f"{folder.name}-busy-1"]["PIDs"] == "2"  # init and the loop

    template = "table {{.Name}}\\t{{.PIDs}}"
    assert run(folder, "stats", "--no-stream", "--format", template, "idle") == \
        run(folder, "stats", "--no-stream", "--format", template, "idle", v2=True)
    everything = run(folder, "stats", "--no-stream", "-a", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}")
    assert f"{folder.name}-done-1 0B / 0B 0" in everything.splitlines()
    assert run(folder, "stats", "--no-stream", "--no-trunc", "--format", "{{.ID}}", "idle").strip() == \
        rows[f"{folder.name}-idle-1"]["Container"]
