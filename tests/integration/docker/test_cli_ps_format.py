"""``ps --format`` (json, Go templates, table TEMPLATE), ``--no-trunc`` and ``--orphans`` on the
docker backend, side by side with v2 on the same containers."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project

V2 = str(Path(sys.executable).parent / "docker-compose")
# every field but the times (which move between two commands), Labels and Mounts (compared as sets)
SHARED = ["Command", "CreatedAt", "ExitCode", "Health", "ID", "Image", "LocalVolumes", "Name", "Names",
          "Networks", "Ports", "Project", "Publishers", "Service", "Size", "State"]


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    folder = tmp_path / f"cp{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  web:
    image: {busybox_image}
    command: ["sh", "-c", "echo a long command line, longer than twenty; exec sleep 600"]
    init: true
    ports: ["127.0.0.1::80"]
    volumes: [data:/data, ./here:/here]
  old:
    image: {busybox_image}
    command: ["sleep", "600"]
    init: true
volumes:
  data:
""")
    yield folder
    remove_project(docker_api, folder.name)


def run(folder: Path, *args: str, v2: bool = False) -> str:
    command = [V2] if v2 else [sys.executable, "-m", "composer"]
    # no -p: the project (and its name) from the folder; v2 ignores --orphans=false under -p
    done = subprocess.run([*command, *args], cwd=folder, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, (command, args, done.stderr)
    return done.stdout


def untimed(text: str) -> list[str]:
    """The lines with their times (which move between two commands) blotted out, and the columns' padding with them
    (a column is as wide as its widest time: "Less than a second ago" in one run, "2 seconds ago" in the next)."""
    times = r"(Up |)(About a minute|Less than a second|[0-9]+ seconds?)( ago|)"
    return [re.sub(r"\s{2,}", "  ", re.sub(times, "T", line)).rstrip() for line in text.splitlines()]


def both(folder: Path, *args: str) -> tuple[str, str]:
    return run(folder, *args), run(folder, *args, v2=True)


def test_ps_formats_as_v2(folder: Path) -> None:
    run(folder, "up", "-d")
    for trunc in ((), ("--no-trunc",)):
        ours, theirs = both(folder, "ps", "--format", "json", *trunc)
        ours_rows = [json.loads(line) for line in ours.splitlines()]
        theirs_rows = [json.loads(line) for line in theirs.splitlines()]
        assert len(ours_rows) == len(theirs_rows) == 2  # one object a line
        for mine, v2s in zip(ours_rows, theirs_rows, strict=True):
            assert {key: mine[key] for key in SHARED} == {key: v2s[key] for key in SHARED}
            for listed in ("Labels", "Mounts"):  # in the engine's order in v2
                assert sorted(mine[listed].split(",")) == sorted(v2s[listed].split(",")), listed
            # v2's fields, in its order; OOMKilled is composer's own (docker inspect's State.OOMKilled)
            assert [key for key in mine if key != "OOMKilled"] == list(v2s)
    template = "{{.Name}} {{.Service}} {{.State}} {{.ID}} {{.Command}} {{json .Publishers}}"
    ours, theirs = both(folder, "ps", "--format", template)
    assert ours == theirs
    table = "table {{.Name}}\\t{{.Service}}\\t{{.Command}}\\t{{.Ports}}"
    ours, theirs = both(folder, "ps", "--format", table)
    assert ours.splitlines() == [line.rstrip() for line in theirs.splitlines()]
    ours, theirs = both(folder, "ps", "--no-trunc")
    assert "longer than twenty; exec sleep 600" in ours
    assert untimed(ours) == untimed(theirs)

    # an orphan: a service no longer in the file
    compose = (folder / "compose.yaml").read_text()
    (folder / "compose.yaml").write_text(compose[:compose.index("  old:")] + compose[compose.index("volumes:\n"):])
    ours, theirs = both(folder, "ps", "--format", "{{.Service}}")
    assert (ours, theirs) == ("old\nweb\n", "old\nweb\n")
    ours, theirs = both(folder, "ps", "--orphans=false", "--format", "{{.Service}}")
    assert (ours, theirs) == ("web\n", "web\n")


def test_an_unknown_field_or_action_is_one_line(folder: Path) -> None:
    run(folder, "up", "-d", "old")
    for template in ("{{.Nope}}", "{{range .}}x{{end}}"):
        done = subprocess.run([sys.executable, "-m", "composer", "-p", folder.name, "ps", "--format", template],
                              cwd=folder, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode != 0
        assert len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert "Traceback" not in done.stderr
