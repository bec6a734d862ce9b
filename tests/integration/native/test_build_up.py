"""End to end: a compose project with a ``build:`` service brought up with ``composer up --build``
on the native backend (the image built by the native builder, no daemon, then run), and the
built image's config and history side by side with ``DOCKER_BUILDKIT=1 docker build`` of the same
Dockerfile on the real dockerd (the comparison of tests/integration/docker/test_dockerfile_config.py).
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageStore
from composer.backends.native.runtime.api import Runtime
from composer.events import ListSink
from tests.integration.docker.test_dockerfile_config import FIELDS, _docker, _history
from tests.integration.native.test_lifecycle import Env, eventually
from tests.integration.native.test_runtime import residue
from tests.integration.registry import LocalRegistry

DOCKERFILE = """\
FROM {image}
ARG GREETING=hello
ENV APP_HOME=/srv/app
WORKDIR $APP_HOME
COPY --chmod=755 run.sh ./
COPY conf/ conf/
LABEL org.example.built-by=test
EXPOSE 8080
{run}CMD ["./run.sh"]
"""


@pytest.fixture
def env(local_registry: LocalRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    root = tmp_path / "env"
    root.mkdir()
    monkeypatch.setenv("COMPOSER_REGISTRY_CONFIG", str(root / "no-registries.json"))
    monkeypatch.delenv("COMPOSER_REGISTRY_MIRRORS", raising=False)
    store = ImageStore.open(root / "store")
    record = anyio.run(pull, local_registry.busybox, store, ListSink())
    parent = f"composer-test-{uuid.uuid4().hex[:8]}"
    yield Env(root, record.reference, parent)
    (root / "run" / "networks" / ".lock").unlink(missing_ok=True)
    (root / "run" / "networks").rmdir() if (root / "run" / "networks").is_dir() else None
    residue(Runtime(store, run_root=root / "run", cgroup_parent=parent))


def context(folder: Path, dockerfile: str) -> Path:
    ctx = folder / "web"
    (ctx / "conf").mkdir(parents=True)
    (ctx / "run.sh").write_text("#!/bin/sh\necho \"served from $APP_HOME: $(cat conf/site.conf) $(cat /built)\"\n"
                                "exec sleep 300\n")
    (ctx / "conf" / "site.conf").write_text("site=on\n")
    (ctx / "Dockerfile").write_text(dockerfile)
    return ctx


def test_up_build_runs_the_image_the_native_builder_made(env: Env, tmp_path: Path) -> None:
    context(tmp_path, DOCKERFILE.format(image=env.image, run="RUN --network=none echo \"$GREETING built\" > /built\n"))
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    build:\n      context: ./web\n"
                                           "      args:\n        GREETING: bonjour\n")
    name = f"bu{uuid.uuid4().hex[:8]}"

    def composer(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "-p", name, *args],
                              cwd=tmp_path, env=env.environ, capture_output=True, text=True, timeout=120)

    try:
        up = composer("up", "-d", "--build")
        assert up.returncode == 0, (up.stdout, up.stderr)
        logs = eventually(lambda: "served" in (out := composer("logs", "--no-color", "web").stdout) and out)
        assert "served from /srv/app: site=on bonjour built" in logs
        store = ImageStore(env.root / "store")
        record = store.get(f"docker.io/library/{name}-web:latest")
        assert record is not None
        assert record.source == "build"
        labels = store.config(record)["config"]["Labels"]
        assert labels["org.example.built-by"] == "test"
        assert labels["com.docker.compose.project"] == name  # v2's labels on a project's image
    finally:
        down = composer("down", "-v", "-t", "1")
        assert down.returncode == 0, down.stderr


def test_the_built_config_equals_buildkits(env: Env, tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    """COPY and metadata (Debian's BuildKit 0.8 frontend has no RUN --network, so no RUN here)."""
    ctx = context(tmp_path / "docker", DOCKERFILE.format(image=busybox_image, run=""))
    tag = f"composer-native-build:{uuid.uuid4().hex[:8]}"
    try:
        _docker("build", "-q", "-t", tag, ".", cwd=ctx)
        theirs = docker_api.inspect_image(tag)
        theirs_history = _history(docker_api, tag)
    finally:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, check=False)

    native_ctx = context(tmp_path / "native", DOCKERFILE.format(image=env.image, run=""))
    (tmp_path / "native" / "compose.yaml").write_text("services:\n  web:\n    build: ./web\n")
    name = f"bc{uuid.uuid4().hex[:8]}"
    built = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "-p", name, "build"],
                           cwd=native_ctx.parent, env=env.environ, capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    store = ImageStore(env.root / "store")
    record = store.get(f"docker.io/library/{name}-web:latest")
    assert record is not None
    ours = store.config(record)
    labels = dict(ours["config"].get("Labels") or {})
    for key in [key for key in labels if key.startswith("com.docker.compose.")]:
        del labels[key]  # v2's project labels: composer build adds them, plain docker build does not
    ours["config"]["Labels"] = labels
    for field in FIELDS:
        assert (field, ours["config"].get(field) or None) == (field, theirs["Config"].get(field) or None)
    assert [entry.get("created_by", "") for entry in ours["history"]] == theirs_history
    assert len(ours["rootfs"]["diff_ids"]) == len(theirs["RootFS"]["Layers"])
