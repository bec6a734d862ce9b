"""Fixtures for the end-to-end tests: the WordPress example on a real engine.

The stand-in images come from scripts/prepare-example-images (the same script ``make demo`` runs),
which caches them by recipe hash: the first run builds them (minutes), later runs find them. Under
CI=true anything missing (engine, root, debootstrap, docker-registry, chromium) fails the tests
instead of skipping them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.registry import free_port
from tests.integration.system_check import system_check  # noqa: F401  (autouse: residue after each test)

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "wordpress-mysql"
PREPARE = ROOT / "scripts" / "prepare-example-images"
OUTPUT = Path(__file__).resolve().parent / "out"
OFFICIAL_NAMES = ("mariadb:11", "wordpress:6-apache")
MIRROR = f"http://127.0.0.1:{os.environ.get('COMPOSER_REGISTRY_PORT', '5000')}"  # prepare-example-images' registry


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def e2e_docker_api() -> Iterator[Any]:
    """A docker-py APIClient on the engine the docker CLI would use."""
    from composer.backends.docker.client import connect, resolve_endpoint
    from composer.errors import BackendUnavailableError

    try:
        api = connect(resolve_endpoint(os.environ), timeout=120)
    except BackendUnavailableError as exc:
        unavailable(f"no Docker Engine answers: {exc}")
    yield api
    api.close()


def ensure_secrets() -> None:
    """The example's secret files, generated when missing (as ``make demo`` does)."""
    folder = EXAMPLE / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in ("db_password", "db_root_password"):
        path = folder / f"{name}.txt"
        if not path.exists() or not path.read_text().strip():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o644)  # the containers read them as their own users (www-data, mysql)


@pytest.fixture(scope="session")
def example_images(e2e_docker_api: Any) -> dict[str, str]:
    """``mariadb:11`` and ``wordpress:6-apache`` served by the local mirror (image name -> ID).

    The local tags of those names are then dropped, so the first ``up`` pulls them through dockerd's
    normal pull path (from the mirror; the layers are already present, so the pull is quick).
    """
    if os.geteuid() != 0:
        unavailable("the stand-in images need root (debootstrap, /etc/docker/daemon.json)")
    for tool in ("debootstrap", "docker"):
        if shutil.which(tool) is None:
            unavailable(f"{tool} is not installed (make deps)")
    if not Path("/usr/bin/docker-registry").exists() and shutil.which("docker-registry") is None:
        unavailable("Debian's docker-registry is not installed (make deps)")
    done = subprocess.run([str(PREPARE)], capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/prepare-example-images exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}")
    ready = dict(line.split()[1:3] for line in done.stdout.splitlines() if line.startswith("ready: "))
    assert set(ready) == set(OFFICIAL_NAMES), done.stdout
    for name in OFFICIAL_NAMES:
        subprocess.run(["docker", "rmi", name], capture_output=True, check=False)
    ensure_secrets()
    return ready


def published_port() -> int:
    """8080 as the example says, unless something already listens there (the demo, say)."""
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 8080))
        except OSError:
            return free_port()
    return 8080


@dataclass(frozen=True)
class NativeRoots:
    """The native backend's store, run root and cgroup parent for the session (all its own)."""

    root: Path
    cgroup_parent: str

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def run_root(self) -> Path:
        return self.root / "run"

    def environ(self) -> dict[str, str]:
        # The mirror is named here rather than in /etc/composer/registries.json, so the store fills
        # through the normal pull path whatever the host's configuration says.
        return {"COMPOSER_ROOT": str(self.store), "COMPOSER_RUN_ROOT": str(self.run_root),
                "COMPOSER_CGROUP_PARENT": self.cgroup_parent, "COMPOSER_REGISTRY_MIRRORS": MIRROR,
                "COMPOSER_REGISTRY_CONFIG": str(self.root / "no-registries.json")}


@pytest.fixture(scope="session")
def native_roots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NativeRoots]:
    """A session store and run root; the runtime's residue check (mounts, cgroups, processes,
    state files) runs once every e2e test is done."""
    if os.geteuid() != 0:
        unavailable("the native backend needs root")
    roots = NativeRoots(tmp_path_factory.mktemp("e2e-native"), f"composer-e2e-{uuid.uuid4().hex[:8]}")
    yield roots
    from composer.backends.native.image.store import ImageStore
    from composer.backends.native.runtime.api import Runtime
    from tests.integration.native.test_runtime import residue

    networks = roots.run_root / "networks"
    (networks / ".lock").unlink(missing_ok=True)  # the network manager's lock stays by design
    with contextlib.suppress(OSError):
        networks.rmdir()
    residue(Runtime(ImageStore.open(roots.store), run_root=roots.run_root, cgroup_parent=roots.cgroup_parent))


def host_links() -> dict[str, list[str]]:
    """composer's bridges and veths, and the network namespaces, on the host."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    names = [line.split(":")[1].strip().split("@")[0] for line in links.splitlines()]
    return {"links": sorted(n for n in names if n.startswith(("cmp-", "cv"))), "netns": sorted(netns.split())}


class Stack:
    """The example under a unique project name, driven through the composer CLI on ``backend``."""

    def __init__(self, backend: str, api: Any, native: NativeRoots | None) -> None:
        self.backend = backend
        self.api = api
        self.native = native
        self.project = f"composer-e2e-{uuid.uuid4().hex[:10]}"
        self.port = published_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.host_before = host_links()

    def environ(self) -> dict[str, str]:
        env = {**os.environ, "WORDPRESS_PORT": str(self.port)}
        if self.native is not None:
            env.update(self.native.environ())
        return env

    def composer(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, "-m", "composer", "--backend", self.backend,
                "-f", str(EXAMPLE / "compose.yaml"), "-p", self.project, *args]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=self.environ(), timeout=timeout,
                              check=False)
        command = " ".join(args)
        assert done.returncode == 0, f"composer {command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes the backend still holds for the project."""
        if self.native is not None:
            return self.native_leftovers(self.native)
        from composer import labels

        selector = {"label": f"{labels.PROJECT}={self.project}"}
        found = [f"container {c['Names'][0]}" for c in self.api.containers(all=True, filters=selector)]
        found += [f"network {n['Name']}" for n in self.api.networks(filters=selector)]
        found += [f"volume {v['Name']}" for v in (self.api.volumes(filters=selector) or {}).get("Volumes") or []]
        return found

    def native_leftovers(self, native: NativeRoots) -> list[str]:
        run_dir = native.run_root / self.project
        found = [f"container {p.name}" for p in run_dir.iterdir()] if run_dir.is_dir() else []
        from composer import labels
        from composer.backends.native.network import settings as networking

        found += [f"network {record['name']}" for record in networking.networks(native.run_root)
                  if (record.get("labels") or {}).get(labels.PROJECT) == self.project]
        volumes = native.store / "volumes"
        found += [f"volume {p.name}" for p in volumes.glob(f"{self.project}_*")] if volumes.is_dir() else []
        if host_links() != self.host_before:
            found.append(f"host links or namespaces: {host_links()} (before: {self.host_before})")
        return found

    def remove(self) -> None:
        """Whatever the test left, removed pass or fail."""
        if self.native is None:
            from tests.integration.conftest import remove_project

            remove_project(self.api, self.project)
            return
        argv = [sys.executable, "-m", "composer", "--backend", "native", "-p", self.project, "down", "-v", "-t", "1"]
        subprocess.run(argv, cwd=ROOT, capture_output=True, env=self.environ(), timeout=120, check=False)


@pytest.fixture(params=["native", "docker"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def stack(backend: str, e2e_docker_api: Any, example_images: dict[str, str],
          native_roots: NativeRoots) -> Iterator[Stack]:
    """A fresh Stack on ``backend``; whatever it left is removed after the test, pass or fail."""
    running = Stack(backend, e2e_docker_api, native_roots if backend == "native" else None)
    try:
        yield running
    finally:
        running.remove()


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """tests/e2e/out/<test name>/: screenshots and pages the test saves (kept after the run)."""
    folder: Path = OUTPUT / str(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
