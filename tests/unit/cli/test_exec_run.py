"""``exec``, ``run`` and ``attach``: their environment flags and detach keys."""

from __future__ import annotations

import pytest

from composer.cli.exec_run import detach_keys, parse_env
from composer.errors import UsageError


def test_env_flags() -> None:
    assert parse_env(["A=1", "B", "C=x=y", "D"], {"B": "from-env"}) == {"A": "1", "B": "from-env", "C": "x=y"}


@pytest.mark.parametrize(("text", "keys"), [
    ("ctrl-p,ctrl-q", b"\x10\x11"),
    ("ctrl-x,x", b"\x18x"),
    ("ctrl-@,ctrl-_", b"\x00\x1f"),
    ("a", b"a"),
])
def test_detach_keys(text: str, keys: bytes) -> None:
    assert detach_keys(text) == keys


@pytest.mark.parametrize("text", ["ctrl-1", "ctrl-pq", "shift-a", ""])
def test_bad_detach_keys_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(UsageError, match="Unknown character"):
        detach_keys(text)
