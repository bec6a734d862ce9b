"""``commit``'s REPOSITORY[:TAG]."""

from __future__ import annotations

from composer.cli.snapshot import split_reference


def test_split_reference() -> None:
    assert split_reference(None) == (None, None)
    assert split_reference("app") == ("app", None)
    assert split_reference("app:1.0") == ("app", "1.0")
    assert split_reference("localhost:5000/app") == ("localhost:5000/app", None)  # a port is no tag
    assert split_reference("localhost:5000/app:v2") == ("localhost:5000/app", "v2")
