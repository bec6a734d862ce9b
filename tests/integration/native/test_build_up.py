"""End to end: a compose project with a ``build:`` service brought up with ``composer up --build``
on the native backend (the image built by the native builder, no daemon, then run), and the
built image's config and history side by side with ``DOCKER_BUILDKIT=1 docker build`` of the same
Dockerfile on the real dockerd (the comparison of tests/integration/docker/test_dockerfile_config.py).
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.pull import pull
from composer.backends.native.image.store import ImageStore
from composer.backends.native.runtime.api import Runtime
from composer.events import ListSink
from tests.integration.docker.test_dockerfile_config import FIELDS, _docker, _history
from tests.integration.native.test_archive_push import docker_images, registry_manifests
from tests.integration.native.test_lifecycle import Env, eventually
from tests.integration.native.test_runtime import residue
from tests.integration.registry import LocalRegistry
from tests.integration.timeouts import scaled

__all__ = ["docker_images", "registry_manifests"]  # fixtures used here

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
                              cwd=tmp_path, env=env.environ, capture_output=True, text=True, timeout=scaled(120))

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
                           cwd=native_ctx.parent, env=env.environ, capture_output=True, text=True, timeout=scaled(120))
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


COPY_RULES = """\
ARG BASE
FROM $BASE
WORKDIR /srv/app
COPY run.sh conf ./
COPY conf /opt/conf-dir
COPY conf/ /opt/with-slash/
COPY run.sh /opt/renamed.sh
COPY run.sh conf/site.conf /opt/multi/
COPY --chown=1234:2345 --chmod=600 conf /opt/owned/deep/
COPY c*/*.conf /opt/wild/
COPY . /opt/whole
COPY link.sh /opt/followed
"""
COMPARED = ("srv", "opt")


def _docker_files(tag: str) -> dict[str, tuple[object, ...]]:
    container = _docker("create", tag).strip()
    try:
        exported = subprocess.run(["/usr/bin/docker", "export", container], capture_output=True, check=True).stdout
    finally:
        subprocess.run(["/usr/bin/docker", "rm", "-f", container], capture_output=True, check=False)
    files: dict[str, tuple[object, ...]] = {}
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        for member in archive:
            name = member.name.rstrip("/")
            if name.split("/")[0] not in COMPARED:
                continue
            data = archive.extractfile(member).read() if member.isreg() else b""  # type: ignore[union-attr]
            kind = "dir" if member.isdir() else "link" if member.issym() else "file"
            files[name] = (kind, oct(member.mode & 0o7777), member.uid, member.gid, hashlib.sha256(data).hexdigest(),
                           member.linkname)
    return files


def _native_files(rootfs: RootFS) -> dict[str, tuple[object, ...]]:
    files: dict[str, tuple[object, ...]] = {}

    def walk(parts: tuple[str, ...]) -> None:
        entry = rootfs.lookup(parts)
        assert entry is not None
        info = entry.info
        kind = "dir" if entry.is_dir else "link" if entry.is_link else "file"
        data = entry.host.read_bytes() if kind == "file" else b""
        files["/".join(parts)] = (kind, oct(stat.S_IMODE(info.st_mode)), info.st_uid, info.st_gid,
                                  hashlib.sha256(data).hexdigest(), os.readlink(entry.host) if kind == "link" else "")
        if entry.is_dir:
            for name in rootfs.listdir(parts):
                walk((*parts, name))

    for top in COMPARED:
        if rootfs.lookup((top,)) is not None:
            walk((top,))
    return files


def ignored_context(folder: Path) -> Path:
    """The context with a .dockerignore of moby's pattern kinds: **, an exception, a folder."""
    ctx = context(folder, COPY_RULES)  # the same Dockerfile for both: the base is a build argument
    (ctx / "docs" / "deep").mkdir(parents=True)
    for path in ("docs/a.md", "docs/deep/b.md", "docs/keep.md", "docs/deep/c.txt", "conf/x.tmp", "tmp/y"):
        (ctx / path).parent.mkdir(parents=True, exist_ok=True)
        (ctx / path).write_text(path + "\n")
    os.symlink("run.sh", ctx / "link.sh")
    (ctx / ".dockerignore").write_text("**/*.md\n!docs/keep.md\ntmp\nconf/*.tmp\n")
    return ctx


def test_copy_rules_give_buildkits_files(env: Env, tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    """The flattened files under /srv and /opt (type, mode, owner, content, link) equal BuildKit's."""
    ctx = ignored_context(tmp_path / "docker")
    tag = f"composer-native-copy:{uuid.uuid4().hex[:8]}"
    try:
        _docker("build", "-q", "-t", tag, "--build-arg", f"BASE={busybox_image}", ".", cwd=ctx)
        theirs = _docker_files(tag)
    finally:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, check=False)
    native_ctx = ignored_context(tmp_path / "native")
    (tmp_path / "native" / "compose.yaml").write_text("services:\n  web:\n    build:\n      context: ./web\n"
                                                      f"      args:\n        BASE: {env.image}\n")
    name = f"bf{uuid.uuid4().hex[:8]}"
    built = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "-p", name, "build"],
                           cwd=native_ctx.parent, env=env.environ, capture_output=True, text=True, timeout=scaled(120))
    assert built.returncode == 0, built.stderr
    store = ImageStore(env.root / "store")
    record = store.get(f"docker.io/library/{name}-web:latest")
    assert record is not None
    ours = _native_files(RootFS([layer.path for layer in store.layers(record)]))
    assert sorted(ours) == sorted(theirs)
    assert "opt/whole/docs/keep.md" in ours  # the exception
    assert "opt/whole/docs/deep/c.txt" in ours
    assert not {"opt/whole/docs/a.md", "opt/whole/docs/deep/b.md", "opt/whole/tmp", "opt/whole/conf/x.tmp"} & set(ours)
    assert ours["opt/whole/link.sh"][0] == "link"
    assert ours["opt/followed"][0] == "file"  # a named source that is a link is followed
    assert {path: ours[path] for path in ours if ours[path] != theirs[path]} == {}, \
        {path: theirs[path] for path in ours if ours[path] != theirs[path]}


def test_a_built_image_pushes_and_dockerd_runs_it(env: Env, tmp_path: Path, local_registry: LocalRegistry,
                                                  docker_api: Any, docker_images: list[str],
                                                  registry_manifests: list[tuple[str, str]]) -> None:
    """The built layers are in the store's format: ``composer push`` sends them and dockerd pulls and
    runs the image (the COPY'd and RUN-made files are there)."""
    context(tmp_path, DOCKERFILE.format(image=env.image, run="RUN --network=none echo pushed > /built\n"))
    repository = f"composer-test/built-{uuid.uuid4().hex[:8]}"
    target = local_registry.reference(repository, "1")
    docker_images.append(target)
    (tmp_path / "compose.yaml").write_text(f"services:\n  web:\n    image: {target}\n    build: ./web\n")
    name = f"bp{uuid.uuid4().hex[:8]}"
    for command in ("build", "push"):
        done = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "-p", name, command],
                              cwd=tmp_path, env=env.environ, capture_output=True, text=True, timeout=scaled(120))
        assert done.returncode == 0, (command, done.stderr)
    record = ImageStore(env.root / "store").get(target)
    assert record is not None
    registry_manifests.append((repository, record.manifest))
    for message in docker_api.pull(target.rsplit(":", 1)[0], tag="1", stream=True, decode=True):
        assert not message.get("error"), message
    assert docker_api.inspect_image(target)["Id"] == record.config
    output = subprocess.run(["/usr/bin/docker", "run", "--rm", "--network=none", target, "sh", "-c",
                             "cat /srv/app/conf/site.conf /built; stat -c %a /srv/app/run.sh"],
                            capture_output=True, text=True, timeout=scaled(120))
    assert (output.returncode, output.stdout) == (0, "site=on\npushed\n755\n"), output.stderr
