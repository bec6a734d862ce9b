"""``commit`` and ``export`` on the docker backend, against the real engine (the native backend
refuses both in one line: tests/integration/native/test_commands.py)."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    folder = tmp_path / f"cs{uuid.uuid4().hex[:10]}"
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  box:
    image: {busybox_image}
    command: ["sleep", "600"]
    init: true
    volumes: [data:/data]
volumes:
  data:
""")
    yield folder
    remove_project(docker_api, folder.name)


def run(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run([sys.executable, "-m", "composer", *args], cwd=folder, capture_output=True, timeout=120,
                          check=False)
    if check:
        assert done.returncode == 0, (args, done.stderr)
    return done


def test_commit_makes_an_image_of_the_container(folder: Path, docker_api: Any) -> None:
    run(folder, "up", "-d")
    run(folder, "exec", "-T", "box", "sh", "-c", "echo committed > /marker")
    reference = f"composer-test/commit-{folder.name}:snap"
    try:
        run(folder, "commit", "-m", "a message", "-a", "someone", "-c", "ENV FOO=bar", "box", reference)
        image = docker_api.inspect_image(reference)
        assert (image["Comment"], image["Author"]) == ("a message", "someone")
        assert "FOO=bar" in image["Config"]["Env"]
        container = docker_api.create_container(reference, ["cat", "/marker"])
        try:
            docker_api.start(container)
            assert docker_api.wait(container)["StatusCode"] == 0
            assert docker_api.logs(container) == b"committed\n"
        finally:
            docker_api.remove_container(container, force=True)
    finally:
        docker_api.remove_image(reference, force=True)


def test_export_writes_the_filesystem_without_the_volumes(folder: Path) -> None:
    run(folder, "up", "-d")
    run(folder, "exec", "-T", "box", "sh", "-c", "echo exported > /marker; echo inside > /data/in-volume")
    target = folder / "box.tar"
    run(folder, "export", "box", "-o", str(target))
    with tarfile.open(target) as archive:
        names = archive.getnames()
        marker = archive.extractfile("marker")
        assert marker is not None
        assert marker.read() == b"exported\n"
    assert "data/in-volume" not in names  # a volume is not the container's filesystem
    assert not (folder / "box.tar.partial").exists()
    streamed = run(folder, "export", "box").stdout
    assert len(streamed) == target.stat().st_size
    missing = run(folder, "export", "nope", "-o", str(folder / "no.tar"), check=False)
    assert missing.returncode != 0
    assert not (folder / "no.tar").exists()
    assert not (folder / "no.tar.partial").exists()
