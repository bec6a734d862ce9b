"""``cp``: which side of a path names a container."""

from __future__ import annotations

from composer.cli.cp import split_container_path


def test_container_paths() -> None:
    assert split_container_path("db:/tmp/x") == ("db", "/tmp/x")
    assert split_container_path("./db:x") == (None, "./db:x")
    assert split_container_path("/abs/path") == (None, "/abs/path")
