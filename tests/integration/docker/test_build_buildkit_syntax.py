"""BuildKit syntax on the docker backend, through the CLI against the real engine: a Dockerfile
with heredocs, a cache mount and a build secret is built by the native builder and loaded into
the engine (composer.backends.docker.native_build); its base image comes from the engine (the
test busybox exists nowhere else). The engine's own BuildKit (frontend 1.2) refuses heredocs, so
the classic builder or ``DOCKER_BUILDKIT=1 docker build`` could not build this file here. The
same Dockerfile builds on the native backend in tests/integration/native/test_build_mounts.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.test_images import Images, folder, images, ok
from tests.integration.native.test_build_mounts import HEREDOC_AND_CACHE
from tests.support.isolation import remove_cgroup_parent

__all__ = ["folder", "images"]


def composer(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", *args], cwd=folder,
                          capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def run_in(api: Any, image: str, script: str) -> str:
    container = api.create_container(image, command=["sh", "-c", script], network_disabled=True)
    try:
        api.start(container)
        api.wait(container, timeout=60)
        return str(api.logs(container).decode())
    finally:
        api.remove_container(container, force=True)


def test_heredoc_cache_mount_and_secret_build_on_the_docker_backend(
        folder: Path, docker_api: Any, busybox_image: str, images: Images, tmp_path: Path,
        request: pytest.FixtureRequest) -> None:
    image = images.add(f"{folder.name}-app")
    (folder / "Dockerfile").write_text(HEREDOC_AND_CACHE.format(base=busybox_image, tag=folder.name))
    (folder / "compose.yaml").write_text("""
services:
  app:
    build:
      context: .
      secrets: [token]
secrets:
  token:
    environment: BUILD_TOKEN
""")
    # COMPOSER_SERVER=0: a command server would outlive the test, its forkserver keeping a spare
    # monitor in the test's cgroup parent (which then cannot be removed)
    env = {"BUILD_TOKEN": "s3cr3t-value", "COMPOSER_SERVER": "0", "COMPOSER_ROOT": str(tmp_path / "native-root"),
           "COMPOSER_RUN_ROOT": str(tmp_path / "native-run"), "COMPOSER_CGROUP_PARENT": f"composer-test-{folder.name}"}
    request.addfinalizer(lambda: remove_cgroup_parent(env["COMPOSER_CGROUP_PARENT"]))
    ok(composer(folder, "build", env=env))
    out = run_in(docker_api, image, "cat /greeting /seen /token-length; ls -a /cache 2>&1 | head -1")
    assert out.splitlines() == ["hello from a heredoc", "1", "12", "ls: /cache: No such file or directory"]
    history = docker_api.history(image)
    assert not any("s3cr3t-value" in str(entry) for entry in history)
    # the cache mount persists in the native store: a changed step runs again and finds it
    changed = HEREDOC_AND_CACHE.format(base=busybox_image, tag=folder.name)
    (folder / "Dockerfile").write_text(changed.replace("hello from a heredoc", "hello again")
                                       .replace("echo run", "echo again"))
    ok(composer(folder, "build", env=env))
    assert run_in(docker_api, image, "cat /greeting /seen").splitlines() == ["hello again", "2"]
    # nothing of the build is left in the native store: the image is the engine's
    from composer.backends.native.image.store import ImageStore

    store = ImageStore(tmp_path / "native-root")
    assert [record.reference for record in store.images()] == [f"docker.io/{busybox_image}"]  # the base, loaded
    report = store.gc()
    assert (report.blobs, report.layers) == (0, 0)  # no blob or layer only the built image used


def test_without_buildkit_syntax_the_classic_builder_builds(folder: Path, docker_api: Any, busybox_image: str,
                                                            images: Images) -> None:
    images.add(f"{folder.name}-app")
    (folder / "Dockerfile").write_text(f"FROM {busybox_image}\nRUN echo plain > /plain\n")
    (folder / "compose.yaml").write_text("services:\n  app:\n    build: .\n")
    result = ok(composer(folder, "build", env={}))
    assert "Step 1/" in result.stderr  # the classic builder's output


@pytest.mark.parametrize("line", ["COPY --link Dockerfile /x", "COPY --exclude=*.md . /x/"])
def test_other_buildkit_flags_take_the_native_builder(line: str) -> None:
    from composer.backends.docker.native_build import buildkit_features
    from composer.contract.backend import BuildSpec
    from composer.spec.models.service import ServiceConfig

    service = ServiceConfig.model_validate({"name": "app", "build": {"context": "/", "dockerfile_inline":
                                                                     f"FROM scratch\n{line}\n"}})
    assert buildkit_features(BuildSpec("p", service, "p-app", {})) == [line.split()[1].split("=")[0]]
