"""``exec`` and ``run``: their environment flags."""

from __future__ import annotations

from composer.cli.exec_run import parse_env


def test_env_flags() -> None:
    assert parse_env(["A=1", "B", "C=x=y", "D"], {"B": "from-env"}) == {"A": "1", "B": "from-env", "C": "x=y"}
