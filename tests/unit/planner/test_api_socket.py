"""use_api_socket: v2's transform of the service, and the config-hash label it gives."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from composer import labels
from composer.errors import PlanError
from composer.planner.api_socket import with_api_socket
from composer.planner.container_specs import container_spec
from composer.spec import load_project
from composer.spec.models import Project

COMPOSE = """
services:
  app:
    image: composer-test/busybox:latest
    command: sleep 300
    use_api_socket: true
  other:
    image: composer-test/busybox:latest
    command: sleep 300
"""


def load(tmp_path: Path, environment: dict[str, str]) -> Project:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(COMPOSE))
    return load_project(files=[str(tmp_path / "compose.yaml")], environment=environment,
                        working_directory=str(tmp_path), project_name="k1s")


def test_the_service_gets_the_socket_the_variable_and_the_credentials_config(tmp_path: Path) -> None:
    project = load(tmp_path, {})
    app = with_api_socket(project, project.service("app"))
    assert [(v.type, v.source, v.target) for v in app.volumes] == [
        ("bind", "/var/run/docker.sock", "/var/run/docker.sock")]
    assert app.environment["DOCKER_CONFIG"] == "/run/secrets/docker"
    assert [(c.source, c.target) for c in app.configs] == [("#apisocket", "/run/secrets/docker/config.json")]
    assert with_api_socket(project, project.service("other")) == project.service("other")


def test_the_hash_label_is_v2s(tmp_path: Path) -> None:
    # docker compose v2.40.3 labelled k1s-app-1 of this file with this hash (checked by hand; the
    # docker integration test checks that v2 finds composer's container up to date)
    spec = container_spec(load(tmp_path, {}), load(tmp_path, {}).service("app"), 1)
    assert spec.labels[labels.CONFIG_HASH] == "e14decfb4457a5d66370db905d49d27814e3727ce7b6a4f55c769744aa35688d"


def test_the_endpoint_socket_and_a_tcp_endpoint(tmp_path: Path) -> None:
    project = load(tmp_path, {"DOCKER_HOST": "unix:///run/other.sock"})
    assert with_api_socket(project, project.service("app")).volumes[-1].source == "/run/other.sock"
    project = load(tmp_path, {"DOCKER_HOST": "tcp://10.0.0.1:2375"})
    with pytest.raises(PlanError, match=r"^use_api_socket can only be used with unix sockets: docker endpoint "
                                        r"tcp://10\.0\.0\.1:2375 is incompatible$"):
        with_api_socket(project, project.service("app"))
