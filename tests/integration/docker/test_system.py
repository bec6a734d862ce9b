"""``composer --backend docker system df`` prints what ``docker system df`` prints (same engine,
same numbers, same table and JSON lines). Other work on the shared engine may change the numbers
between the two commands, so a few tries are allowed for one identical pair."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _pair(*args: str) -> tuple[str, str]:
    ours = subprocess.run([sys.executable, "-m", "composer", "--backend", "docker", "system", "df", *args],
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": ROOT})
    theirs = subprocess.run(["docker", "system", "df", *args], capture_output=True, text=True, check=True)
    return ours.stdout, theirs.stdout


@pytest.mark.parametrize("args", [(), ("--format", "json")], ids=["table", "json"])
def test_system_df_is_dockers(docker_api: Any, args: tuple[str, ...]) -> None:
    pairs = [_pair(*args) for _ in range(5)]
    assert any(ours == theirs for ours, theirs in pairs), pairs[-1]
