"""Fixtures for the end-to-end tests: the WordPress example on a real engine.

The stand-in images come from scripts/prepare-example-images (the same script ``make demo`` runs),
which caches them by recipe hash: the first run builds them (minutes), later runs find them. Under
CI=true anything missing (engine, root, debootstrap, docker-registry, chromium) fails the tests
instead of skipping them.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.registry import free_port

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "wordpress-mysql"
PREPARE = ROOT / "scripts" / "prepare-example-images"
OUTPUT = Path(__file__).resolve().parent / "out"
OFFICIAL_NAMES = ("mariadb:11", "wordpress:6-apache")


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


class Stack:
    """The example under a unique project name, driven through the composer CLI (docker backend)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.project = f"composer-e2e-{uuid.uuid4().hex[:10]}"
        self.port = published_port()
        self.base = f"http://127.0.0.1:{self.port}"

    def composer(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "WORDPRESS_PORT": str(self.port)}
        argv = [sys.executable, "-m", "composer", "--backend", "docker",
                "-f", str(EXAMPLE / "compose.yaml"), "-p", self.project, *args]
        done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=timeout, check=False)
        command = " ".join(args)
        assert done.returncode == 0, f"composer {command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
        return done

    def leftovers(self) -> list[str]:
        """Containers, networks and volumes the engine still holds for the project."""
        from composer import labels

        selector = {"label": f"{labels.PROJECT}={self.project}"}
        found = [f"container {c['Names'][0]}" for c in self.api.containers(all=True, filters=selector)]
        found += [f"network {n['Name']}" for n in self.api.networks(filters=selector)]
        found += [f"volume {v['Name']}" for v in (self.api.volumes(filters=selector) or {}).get("Volumes") or []]
        return found


@pytest.fixture
def stack(e2e_docker_api: Any, example_images: dict[str, str]) -> Iterator[Stack]:
    """A fresh Stack; whatever it left is removed after the test, pass or fail."""
    from tests.integration.conftest import remove_project

    running = Stack(e2e_docker_api)
    yield running
    remove_project(e2e_docker_api, running.project)


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    """tests/e2e/out/<test name>/: screenshots and pages the test saves (kept after the run)."""
    folder: Path = OUTPUT / str(request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder
