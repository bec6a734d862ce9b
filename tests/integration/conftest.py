"""Fixtures for tests against real engines.

Every test names its project uniquely and removes what it created in a finalizer, so a failed
test leaves nothing behind. Under CI=true a missing engine fails the test instead of skipping it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from composer import labels
from tests.support.images import TEST_IMAGE as TEST_IMAGE  # re-exported for tests that name it
from tests.support.images import ImageBuildError, ensure_busybox_image


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


@pytest.fixture(scope="session")
def busybox_image(docker_api: Any) -> str:
    """``composer-test/busybox:latest``, FROM scratch with Debian's static busybox; built once."""
    try:
        return ensure_busybox_image(docker_api)
    except ImageBuildError as exc:
        pytest.fail(str(exc))


def remove_project(api: Any, project_name: str) -> None:
    """Remove every container, network, volume and image labelled with the project (best effort).

    Images include the ones a rebuild left untagged: a build's image carries the project's label."""
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
    for image in api.images(filters=selector):
        try:
            api.remove_image(image["Id"], force=True)
        except (docker.errors.NotFound, docker.errors.APIError):
            pass  # gone already, or a base of another of the project's images (removed with it)


@pytest.fixture
def project_name(docker_api: Any) -> Iterator[str]:
    """A unique project name; everything labelled with it is removed after the test, pass or fail."""
    name = f"composer-it-{uuid.uuid4().hex[:10]}"
    yield name
    remove_project(docker_api, name)


@pytest.fixture(scope="session")
def local_registry(docker_api: Any, busybox_image: str) -> Iterator[Any]:
    """Debian's docker-registry on 127.0.0.1:<free port> (a tests.integration.registry.LocalRegistry),
    holding the busybox test image as ``.busybox``; stopped and its storage removed at the end.
    Under CI=true a missing registry binary fails the test instead of skipping it."""
    from tests.integration import registry

    executable = registry.binary()
    if executable is None:
        _unavailable("Debian's docker-registry is not installed (apt-get install docker-registry)")
        return
    running = registry.LocalRegistry(executable)
    try:
        running.start()
    except registry.RegistryUnavailable as exc:
        _unavailable(str(exc))
        return
    try:
        running.busybox = running.reference("composer-test/busybox")
        registry.push(docker_api, busybox_image, running.busybox)
        yield running
    finally:
        running.stop()
        _remove_tags_of(docker_api, running.host)


def _remove_tags_of(api: Any, registry_host: str) -> None:
    """Untag every local image pulled from the test registry (its port is never used again)."""
    import docker.errors

    for image in api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(f"{registry_host}/"):
                try:
                    api.remove_image(tag, noprune=True)
                except docker.errors.NotFound:
                    pass
