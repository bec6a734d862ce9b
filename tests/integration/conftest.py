"""Fixtures for tests against real engines.

Every test names its project uniquely and removes what it created in a finalizer, so a failed
test leaves nothing behind. Under CI=true a missing engine fails the test instead of skipping it.
"""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer import labels

TEST_IMAGE = "composer-test/busybox:latest"
DOCKERFILE = b"""FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["sh"]
"""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration/docker" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_api() -> Iterator[Any]:
    """A docker-py APIClient on the engine the docker CLI would use."""
    from composer.backends.docker.client import connect, resolve_endpoint
    from composer.errors import BackendUnavailableError

    endpoint = resolve_endpoint(os.environ)
    try:
        api = connect(endpoint, timeout=120)
    except BackendUnavailableError as exc:
        _unavailable(f"no Docker Engine answers: {exc}")
    yield api
    api.close()


def _is_static_elf64(path: Path) -> bool:
    """A 64-bit little-endian ELF without a PT_INTERP program header (no dynamic loader)."""
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return False
    offset = int.from_bytes(data[0x20:0x28], "little")
    size, count = int.from_bytes(data[0x36:0x38], "little"), int.from_bytes(data[0x38:0x3A], "little")
    kinds = (int.from_bytes(data[offset + i * size : offset + i * size + 4], "little") for i in range(count))
    return 3 not in kinds


def _busybox_binary(workdir: Path) -> Path:
    """Debian's static busybox: installed (busybox-static), else downloaded and unpacked."""
    for candidate in (Path("/bin/busybox"), Path("/usr/bin/busybox")):
        if _is_static_elf64(candidate):
            return candidate
    subprocess.run(["apt-get", "download", "busybox-static"], cwd=workdir, check=True, capture_output=True)
    package = next(workdir.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(package), str(workdir / "root")], check=True)
    return workdir / "root" / "bin" / "busybox"


def _context_tar(busybox: Path) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        dockerfile = tarfile.TarInfo("Dockerfile")
        dockerfile.size = len(DOCKERFILE)
        archive.addfile(dockerfile, io.BytesIO(DOCKERFILE))
        archive.add(str(busybox), arcname="busybox")
    buffer.seek(0)
    return buffer


@pytest.fixture(scope="session")
def busybox_image(docker_api: Any) -> str:
    """``composer-test/busybox:latest``, FROM scratch with Debian's static busybox; built once."""
    import docker.errors

    try:
        docker_api.inspect_image(TEST_IMAGE)
        return TEST_IMAGE
    except docker.errors.ImageNotFound:
        pass
    with tempfile.TemporaryDirectory() as workdir:
        context = _context_tar(_busybox_binary(Path(workdir)))
        for message in docker_api.build(fileobj=context, custom_context=True, tag=TEST_IMAGE, rm=True, decode=True):
            if "error" in message:
                pytest.fail(f"building {TEST_IMAGE}: {message['error']}")
    return TEST_IMAGE


def remove_project(api: Any, project_name: str) -> None:
    """Remove every container, network and volume labelled with the project (best effort)."""
    import docker.errors

    selector = {"label": f"{labels.PROJECT}={project_name}"}
    for container in api.containers(all=True, filters=selector):
        try:
            api.remove_container(container["Id"], v=True, force=True)
        except docker.errors.NotFound:
            pass
    for network in api.networks(filters=selector):
        try:
            api.remove_network(network["Id"])
        except docker.errors.NotFound:
            pass
    for volume in (api.volumes(filters=selector) or {}).get("Volumes") or []:
        try:
            api.remove_volume(volume["Name"], force=True)
        except docker.errors.NotFound:
            pass


@pytest.fixture
def project_name(docker_api: Any) -> Iterator[str]:
    """A unique project name; everything labelled with it is removed after the test, pass or fail."""
    name = f"composer-it-{uuid.uuid4().hex[:10]}"
    yield name
    remove_project(docker_api, name)
