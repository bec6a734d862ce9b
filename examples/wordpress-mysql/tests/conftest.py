"""Fixtures for the WordPress example's tests, written with composer's pytest plugin.

``wordpress`` is the stack of ../compose.yaml, brought up once per test module by the plugin's
``composer_project`` fixture (a unique project name, WORDPRESS_PORT on a free port) and taken down
with its volumes after the module's last test. It has two variants, and each test runs on both:
``images`` (compose.yaml alone, the images as pulled) and ``build`` (with compose.build.yaml: WordPress
built from ../site/Dockerfile by ``up --build``, under a unique tag that is removed afterwards).
``site`` is a small HTTP client on its published port.

The images are the stand-ins that scripts/prepare-example-images builds and serves through the local
registry mirror of both backends (see ../README.md); it runs once per session and is quick when they
are up to date. With COMPOSER_EXAMPLE_IMAGES=served (a guest of the guest lane, tests/vm/focused.py) the
registry is another machine's that already serves them, and the secret files exist: nothing is built.
Without root, docker or a Docker Engine the tests are skipped, and fail instead under CI=true.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from wordpress_client import Site

from composer import Project
from composer.errors import ComposerError
from composer.pytest_plugin import ProjectFactory
from composer.readiness import healthy, http_status

EXAMPLE = Path(__file__).resolve().parent.parent
PREPARE_IMAGES = EXAMPLE.parents[1] / "scripts" / "prepare-example-images"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def example_images() -> None:
    """``mariadb:11`` and ``wordpress:6-apache`` pullable through the local mirror, and the secret files."""
    if os.geteuid() != 0:
        unavailable("the stand-in images need root (scripts/prepare-example-images)")
    # COMPOSER_EXAMPLE_IMAGES=served: another machine built them and its registry serves them here (the
    # guest lane: the host's 127.0.0.1:5000 is forwarded into the guest); check, build nothing.
    served = os.environ.get("COMPOSER_EXAMPLE_IMAGES") == "served"
    docker = shutil.which("docker")
    if docker is None and not served:
        unavailable("docker is not installed (make deps)")
        return
    if not served and subprocess.run([docker or "docker", "info"], capture_output=True, timeout=60,
                                     check=False).returncode != 0:
        unavailable("no Docker Engine answers (make engine)")
    done = subprocess.run([str(PREPARE_IMAGES), *(["--served"] if served else [])], capture_output=True, text=True,
                          timeout=1800, check=False)
    if done.returncode != 0:
        pytest.fail(f"scripts/prepare-example-images exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr}")
    folder = EXAMPLE / "secrets"  # not committed; generated as `make demo` does
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in ("db_password", "db_root_password"):
        path = folder / f"{name}.txt"
        if not path.exists() or not path.read_text().strip():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o644)  # the containers read them as their own users


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module", params=["images", "build"])
def variant(request: pytest.FixtureRequest) -> str:
    """``images``: compose.yaml as written; ``build``: with compose.build.yaml (WordPress built)."""
    if request.param == "build" and (request.config.getoption("composer_backend") or "native") == "swarm":
        pytest.skip("a swarm runs images from a registry; compose.build.yaml builds on one engine")
    return str(request.param)


@pytest.fixture(scope="module")
def wordpress(composer_project: ProjectFactory, example_images: None, variant: str,
              request: pytest.FixtureRequest) -> Iterator[Project]:
    """The example's stack, healthy and answering HTTP; one per test module and variant. Each goes
    down after its variant's last test (the other variant's stack does not run beside it), and the
    build variant's image is removed then (unless --composer-keep or --composer-reuse keeps them)."""
    backend = request.config.getoption("composer_backend") or "native"
    environment = {"WORDPRESS_PORT": str(free_port())}
    files: list[Path] = []
    if backend == "swarm":  # compose.swarm.yaml places MariaDB on the manager and WordPress on a worker
        files = [EXAMPLE / "compose.yaml", EXAMPLE / "compose.swarm.yaml"]
    if variant == "build":
        files = [EXAMPLE / "compose.yaml", EXAMPLE / "compose.build.yaml"]
        environment["WORDPRESS_SITE_IMAGE"] = f"composer-example/site:{secrets.token_hex(6)}"
    name = f"{EXAMPLE.name}-{variant}-{secrets.token_hex(4)}"
    try:
        yield composer_project(
            EXAMPLE,
            files=files,
            name=name,
            scope="module",
            environment=environment,
            ready=[healthy("db"), http_status("wordpress", 80, "/wp-admin/install.php")],
            # A guest under software emulation needs longer (tests/vm/test_swarm.py sets it).
            timeout=float(os.environ.get("COMPOSER_EXAMPLE_TIMEOUT", "300")),
            # The native backend (as `make demo`), unless --composer-backend says otherwise: the stand-in
            # images come from the local mirror that prepare-example-images sets up for both backends.
            backend=backend,
            build=True if variant == "build" else None,  # `up --build`
        )
    finally:
        if not (request.config.getoption("composer_keep") or request.config.getoption("composer_reuse")):
            stack = Project(EXAMPLE, files=files, project_name=name, environment=environment, backend=backend)
            remove_stack(stack, backend, built=variant == "build")


def remove_stack(project: Project, backend: str, *, built: bool) -> None:
    """The stack down with its volumes (the plugin's own teardown at the module's end then finds
    nothing), and the image it built removed, whether or not the stack came up."""
    import anyio

    from composer.backends.select import make_backend

    project.down(volumes=True, timeout=0)
    image = project.config().services["wordpress"].image
    if not built or image is None:
        return

    async def remove() -> None:
        engine = make_backend(backend)
        try:
            with contextlib.suppress(ComposerError):  # not there: the build failed before tagging it
                await engine.remove_image(image)
        finally:
            await engine.aclose()

    anyio.run(remove)


@pytest.fixture
def site(wordpress: Project) -> Site:
    """A fresh client (no cookies) on the stack's published port."""
    host, port = wordpress.port("wordpress", 80).address
    assert host == "127.0.0.1", host
    return Site(f"http://{host}:{port}")
