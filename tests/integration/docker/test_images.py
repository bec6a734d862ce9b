"""Images end to end, through the CLI, against the real engine and a local registry: pull with
per-layer progress, pull on ``up``, build (args, target, labels, dockerfile_inline, a failing
step), push and pull back. Every image a test creates is removed in a finalizer."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.integration.registry import LocalRegistry


def composer(folder: Path, *args: str, progress: str = "plain") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", "--progress", progress, *args], cwd=folder,
                          capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    if result.returncode != 0:
        pytest.fail(f"composer {' '.join(result.args[5:])} exited {result.returncode}: {result.stderr}")
    return result


def json_events(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def image_exists(api: Any, reference: str) -> bool:
    import docker.errors

    try:
        api.inspect_image(reference)
    except docker.errors.ImageNotFound:
        return False
    return True


def remove_image(api: Any, reference: str) -> None:
    import docker.errors

    try:
        api.remove_image(reference, force=True)
    except docker.errors.NotFound:
        pass


class Images:
    """Image references a test creates (locally); all removed at the end."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.references: list[str] = []

    def add(self, reference: str) -> str:
        self.references.append(reference)
        return reference

    def remove_all(self) -> None:
        for reference in reversed(self.references):
            remove_image(self.api, reference)


@pytest.fixture
def images(docker_api: Any) -> Iterator[Images]:
    created = Images(docker_api)
    yield created
    created.remove_all()


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any, images: Images) -> Iterator[Path]:
    """A project folder with a unique name; the project's containers and networks are removed after,
    before the test's images (set up first, so torn down last: an image still used by a container
    would only lose its tag and stay behind, dangling)."""
    name = f"img{uuid.uuid4().hex[:8]}"
    path = tmp_path / name
    path.mkdir()
    yield path
    remove_project(docker_api, name)


@pytest.fixture
def pushed(local_registry: LocalRegistry, docker_api: Any, busybox_image: str, images: Images) -> str:
    """A fresh reference in the local registry, absent locally: busybox plus a layer of its own
    (an image whose config is still local would pull without any layer message)."""
    import io

    from tests.integration import registry

    token = uuid.uuid4().hex[:8]
    built = images.add(f"composer-it/unique:{token}")
    dockerfile = io.BytesIO(f"FROM {busybox_image}\nRUN echo {token} > /token\n".encode())
    for message in docker_api.build(fileobj=dockerfile, tag=built, rm=True, decode=True):
        assert "error" not in message, message
    reference = images.add(local_registry.reference(f"composer-it/pull{token}"))
    registry.push(docker_api, built, reference)
    remove_image(docker_api, built)
    assert not image_exists(docker_api, reference)
    return reference


def test_pull_shows_layer_progress_and_the_image_is_then_present(
    folder: Path, docker_api: Any, pushed: str
) -> None:
    (folder / "compose.yaml").write_text(f"services:\n  app:\n    image: {pushed}\n")
    result = ok(composer(folder, "pull", progress="json"))
    events = json_events(result.stderr)
    layers = [e for e in events if e.get("parent_id") == f"image:{pushed}"]
    assert layers, result.stderr
    assert all(e["id"].startswith("layer:") for e in layers)
    assert any(e["status"] == "done" and e["text"] == "Pull complete" for e in layers), layers
    assert events[-1]["id"] == f"image:{pushed}"
    assert events[-1]["status"] == "done"
    assert image_exists(docker_api, pushed)


def test_pull_of_a_missing_image_fails_with_one_line_unless_ignored(
    folder: Path, local_registry: LocalRegistry
) -> None:
    missing = local_registry.reference(f"composer-it/missing{uuid.uuid4().hex[:8]}")
    (folder / "compose.yaml").write_text(f"services:\n  app:\n    image: {missing}\n")
    result = composer(folder, "pull", progress="quiet")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("composer: ")]
    assert len(errors) == 1, result.stderr
    assert missing in errors[0]
    assert ok(composer(folder, "pull", "--ignore-pull-failures", progress="quiet")).returncode == 0


def test_up_pulls_a_missing_image_through_the_same_path(folder: Path, docker_api: Any, pushed: str) -> None:
    (folder / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {pushed}\n    command: [sleep, '300']\n    init: true\n")
    result = ok(composer(folder, "up", "-d", progress="json"))
    events = json_events(result.stderr)
    assert any(e.get("parent_id") == f"image:{pushed}" and e["text"] == "Pull complete" for e in events)
    containers = docker_api.containers(filters={"label": f"com.docker.compose.project={folder.name}"})
    assert [c["Image"] for c in containers] == [pushed]


DOCKERFILE = """FROM {base} AS base
ARG GREETING=unset
LABEL greeting=$GREETING
ENV GREETING=$GREETING
FROM base AS prod
LABEL stage=prod
FROM base AS debug
LABEL stage=debug
"""


def test_build_with_args_and_target(folder: Path, docker_api: Any, busybox_image: str, images: Images) -> None:
    image = images.add(f"{folder.name}-app")
    extra = images.add(f"composer-it/{folder.name}:extra")
    (folder / "Dockerfile").write_text(DOCKERFILE.format(base=busybox_image))
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    build:
      context: .
      target: prod
      args: {{GREETING: from-file}}
      labels: {{team: composer}}
      tags: ["{extra}"]
""")
    result = ok(composer(folder, "build", "--build-arg", "GREETING=from-cli"))
    assert "Step 1/" in result.stderr
    config = docker_api.inspect_image(image)["Config"]
    assert config["Labels"]["greeting"] == "from-cli"
    assert config["Labels"]["stage"] == "prod"
    assert config["Labels"]["team"] == "composer"
    assert config["Labels"]["com.docker.compose.project"] == folder.name
    assert config["Labels"]["com.docker.compose.service"] == "app"
    assert "GREETING=from-cli" in config["Env"]
    assert docker_api.inspect_image(extra)["Id"] == docker_api.inspect_image(image)["Id"]
    ok(composer(folder, "build"))
    assert docker_api.inspect_image(image)["Config"]["Labels"]["greeting"] == "from-file"


def test_build_honours_dockerignore(folder: Path, docker_api: Any, busybox_image: str, images: Images) -> None:
    image = images.add(f"{folder.name}-app")
    (folder / "kept.txt").write_text("kept\n")
    (folder / "secret.txt").write_text("secret\n")
    (folder / ".dockerignore").write_text("secret.txt\n")
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\nCOPY . /ctx/\nRUN ls /ctx > /listing.txt\n")
    (folder / "compose.yaml").write_text("services:\n  app:\n    build: .\n    command: [cat, /listing.txt]\n")
    ok(composer(folder, "build", "-q"))
    container = docker_api.create_container(image, command=["cat", "/listing.txt"])
    try:
        docker_api.start(container)
        docker_api.wait(container, timeout=60)
        listing = docker_api.logs(container).decode().split()
    finally:
        docker_api.remove_container(container, force=True)
    assert "kept.txt" in listing
    assert "secret.txt" not in listing


def test_dockerfile_inline_and_up_builds_a_missing_image(
    folder: Path, docker_api: Any, busybox_image: str, images: Images
) -> None:
    image = images.add(f"{folder.name}-app")
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    build:
      context: .
      dockerfile_inline: |
        FROM {busybox_image}
        LABEL inline=yes
    command: [sleep, '300']
    init: true
""")
    assert not image_exists(docker_api, image)
    ok(composer(folder, "up", "-d"))
    assert docker_api.inspect_image(image)["Config"]["Labels"]["inline"] == "yes"
    first = docker_api.inspect_image(image)["Id"]
    # present now: a second up builds nothing; --no-build never builds
    result = ok(composer(folder, "up", "-d", "--no-build"))
    assert "Building" not in result.stderr
    result = ok(composer(folder, "up", "-d", "--build"))
    assert "Building" in result.stderr
    assert docker_api.inspect_image(image)["Id"] == first  # same layers, from the cache


def test_a_failing_step_is_a_one_line_error(folder: Path, busybox_image: str, images: Images) -> None:
    images.add(f"{folder.name}-broken")
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN exit 3\n")
    (folder / "compose.yaml").write_text("services:\n  broken:\n    build: .\n")
    result = composer(folder, "build", progress="quiet")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("composer: ")]
    assert len(errors) == 1, result.stderr
    assert 'service "broken"' in errors[0]
    assert "RUN exit 3" in errors[0]
    assert "non-zero code: 3" in errors[0]


def test_multiple_platforms_are_refused(folder: Path, busybox_image: str) -> None:
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\n")
    (folder / "compose.yaml").write_text(
        "services:\n  app:\n    build:\n      context: .\n      platforms: [linux/amd64, linux/arm64]\n")
    result = composer(folder, "build", progress="quiet")
    assert result.returncode == 1
    assert "multi-platform" in result.stderr


def test_push_then_pull_back(
    folder: Path, docker_api: Any, busybox_image: str, local_registry: LocalRegistry, images: Images
) -> None:
    name = f"composer-it/push{uuid.uuid4().hex[:8]}"
    reference = images.add(local_registry.reference(name))
    extra = images.add(local_registry.reference(name, "v2"))
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    image: {reference}
    build:
      context: .
      dockerfile_inline: |
        FROM {busybox_image}
        LABEL pushed=yes
      tags: ["{extra}"]
  plain:
    image: {busybox_image}
""")
    ok(composer(folder, "build", "-q"))
    result = ok(composer(folder, "push", progress="json"))
    events = json_events(result.stderr)
    assert {"image:" + reference, "image:" + extra} <= {e["id"] for e in events if e["text"] == "Pushed"}
    assert local_registry.tags(name) == ["latest", "v2"]
    remove_image(docker_api, reference)
    remove_image(docker_api, extra)
    assert not image_exists(docker_api, reference)
    ok(composer(folder, "pull", "app", progress="quiet"))
    assert docker_api.inspect_image(reference)["Config"]["Labels"]["pushed"] == "yes"


def test_no_build_with_a_missing_build_only_image_fails_like_v2(folder: Path, busybox_image: str) -> None:
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\n")
    (folder / "compose.yaml").write_text("services:\n  app:\n    build: .\n    command: [sleep, '300']\n")
    result = composer(folder, "up", "-d", "--no-build", progress="quiet")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("composer: ")]
    assert len(errors) == 1, result.stderr
    assert f"No such image: {folder.name}-app" in errors[0]


def test_pull_progress_counts_a_layers_bytes_as_native_does(folder: Path, docker_api: Any,
                                                          local_registry: LocalRegistry, images: Images) -> None:
    """dockerd's Downloading and Extracting counts reach ``--progress json`` as the native backend's
    do (tests/integration/native/test_pull_progress.py): current/total/percent against the blob's
    size, the same Event fields, drawn by the same renderers."""
    import os

    from composer.backends.native.image import oci
    from composer.backends.native.image.registry import CredentialStore, RegistryClient, RegistryConfig
    from tests.support import oci_images as oi

    image = oi.make_image([oi.busybox_layer(), oi.tar_bytes([oi.file("big", os.urandom(16 << 20))])])
    reference = images.add(local_registry.reference(f"composer-it/progress{uuid.uuid4().hex[:8]}"))
    oi.push_image(RegistryClient(RegistryConfig(), CredentialStore(Path("/nonexistent")), operation="push"),
                  reference, image)
    (folder / "compose.yaml").write_text(f"services:\n  app:\n    image: {reference}\n")
    events = json_events(ok(composer(folder, "pull", progress="json")).stderr)
    digest = image.layer_digests[1]
    layer = [e for e in events if e["id"] == f"layer:{oci.digest_hex(digest)[:12]}"]
    for phase in ("Downloading", "Extracting"):
        counted = [e for e in layer if e["text"] == phase]
        assert counted, layer
        assert all(e["total"] == len(image.blobs[digest]) for e in counted)
        assert [e["percent"] for e in counted] == [e["current"] * 100 // e["total"] for e in counted]
    assert layer[-1]["text"] == "Pull complete"
