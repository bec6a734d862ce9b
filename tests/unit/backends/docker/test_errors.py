"""docker-py and requests exceptions -> composer.errors (no engine)."""

from __future__ import annotations

import json

import docker.errors
import pytest
import requests

from composer.backends.docker.errors import translate, translated
from composer.errors import (
    AlreadyExistsError,
    BackendError,
    BackendUnavailableError,
    ImageNotFoundError,
    ImagePullError,
    NotFoundError,
    PortInUseError,
)


def api_error(status: int, message: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    response._content = json.dumps({"message": message}).encode()
    try:
        docker.errors.create_api_error_from_http_exception(requests.HTTPError(response=response))
    except docker.errors.APIError as exc:
        return exc
    raise AssertionError("not raised")


@pytest.mark.parametrize(
    ("status", "message", "operation", "expected"),
    [
        (404, "No such container: x", "start", NotFoundError),
        (404, "No such image: ghost:1", "create", ImageNotFoundError),
        (404, "network p_x not found", "remove network", NotFoundError),
        (409, 'Conflict. The container name "/p-web-1" is already in use by container "abc".', "create",
         AlreadyExistsError),
        (409, "network with name p_default already exists", "create network", AlreadyExistsError),
        (409, "remove p_data: volume is in use - [abc]", "remove volume", BackendError),
        (500, "driver failed programming external connectivity on endpoint p-web-1 (abc): "
              "Bind for 0.0.0.0:8080 failed: port is already allocated", "start", PortInUseError),
        (500, "something broke", "start", BackendError),
        (500, "Get https://registry-1.docker.io/v2/: dial tcp: lookup registry-1.docker.io: no such host",
         "pull", ImagePullError),
        (404, "pull access denied for ghost, repository does not exist", "pull", ImageNotFoundError),
    ],
)
def test_api_errors(status: int, message: str, operation: str, expected: type[BackendError]) -> None:
    error = translate(api_error(status, message), operation)
    assert type(error) is expected
    assert isinstance(error, BackendError)
    assert error.backend_name == "docker"
    assert error.operation == operation
    assert str(error) == f"Error response from daemon: {message}"
    assert "\n" not in str(error)


def test_connection_error_names_the_socket() -> None:
    error = translate(requests.exceptions.ConnectionError("refused"), "observe", host="unix:///var/run/docker.sock")
    assert isinstance(error, BackendUnavailableError)
    assert str(error) == (
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
    )


def test_version_negotiation_failure_is_unavailable() -> None:
    error = translate(docker.errors.DockerException("Error while fetching server API version: boom"), "connect")
    assert isinstance(error, BackendUnavailableError)


def test_context_manager_chains_and_passes_composer_errors() -> None:
    with pytest.raises(NotFoundError) as caught, translated("stop"):
        raise api_error(404, "No such container: x")
    assert isinstance(caught.value.__cause__, docker.errors.NotFound)
    original = AlreadyExistsError("x", backend_name="docker", operation="create")
    with pytest.raises(AlreadyExistsError) as again, translated("create"):
        raise original
    assert again.value is original


def test_other_exceptions_become_backend_errors() -> None:
    with pytest.raises(BackendError, match="weird"), translated("kill"):
        raise docker.errors.InvalidArgument("weird")
