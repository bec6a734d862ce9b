"""The lifecycle keys of a service on dockerd (restart, stop, healthcheck, replicas, terminal,
dependencies, exposed ports), side by side with Compose v2: one project created by both tools,
each key's field compared (tests/integration/docker/side_by_side.py); the keys an engine of
this age would drop are refused in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.docker.side_by_side import run, side_by_side

RUNTIME = """\
services:
  db:
    image: IMAGE
    command: sleep 300
    healthcheck:
      test: ["CMD", "true"]
      interval: 11s
      timeout: 12s
      start_period: 13s
      retries: 4
    restart: unless-stopped
    stop_grace_period: 7s
    stop_signal: SIGUSR1
    stdin_open: true
    tty: true
    expose: ["7000", "7001/udp"]
    platform: linux/amd64
    pull_policy: never
    scale: 2
  app:
    image: IMAGE
    command: sleep 300
    depends_on:
      db: {condition: service_healthy, restart: true}
    healthcheck: {disable: true}
    deploy:
      replicas: 2
      restart_policy: {condition: on-failure, max_attempts: 3}
"""


def test_lifecycle_keys_reach_the_container_config_as_v2_sends_them(
        tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str) -> None:
    pair = side_by_side(tmp_path, project_name, docker_api, RUNTIME.replace("IMAGE", busybox_image))
    # scale and deploy.replicas: two containers of each service
    assert sorted(pair.composer.containers) == sorted(pair.v2.containers) == ["app-1", "app-2", "db-1", "db-2"]
    for name in ("db-1", "db-2"):
        pair.check("containers", name, {
            "Config/Healthcheck": {"Test": ["CMD", "true"], "Interval": 11_000_000_000, "Timeout": 12_000_000_000,
                                   "StartPeriod": 13_000_000_000, "Retries": 4},
            "HostConfig/RestartPolicy": {"Name": "unless-stopped", "MaximumRetryCount": 0},
            "Config/StopTimeout": 7,
            "Config/StopSignal": "SIGUSR1",
            "Config/OpenStdin": True,
            "Config/Tty": True,
            "Platform": "linux",
        })
        # expose: the same ports (v2 sends "7000", composer "7000/tcp": one port to the engine)
        mine, theirs = (sorted(port if "/" in port else port + "/tcp"
                               for port in side.containers[name]["Config"]["ExposedPorts"])
                        for side in (pair.composer, pair.v2))
        assert mine == theirs == ["7000/tcp", "7001/udp"]
    for name in ("app-1", "app-2"):
        pair.check("containers", name, {
            "Config/Healthcheck": {"Test": ["NONE"]},
            "HostConfig/RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3},
            # depends_on: the label v2 reads back to order, wait and restart the dependents
            "Config/Labels/com.docker.compose.depends_on": "db:service_healthy:true",
        })


def test_pull_policy_never_does_not_pull_and_platform_picks_the_image(
        tmp_path: Path, project_name: str, busybox_image: str) -> None:
    # pull_policy: never with an image nowhere: no pull is tried (a pull of this name would fail on
    # the registry's name, not with "No such image").
    (tmp_path / "compose.yaml").write_text(
        "services:\n  app:\n    image: registry.invalid/composer/absent:1\n    pull_policy: never\n")
    result = run("composer", tmp_path, project_name, "create")
    assert result.returncode == 1
    assert "registry.invalid" in result.stderr
    assert "lookup" not in result.stderr, result.stderr
    # platform: an image of another platform is not the one asked for (the engine says so to both)
    (tmp_path / "compose.yaml").write_text(
        f"services:\n  app:\n    image: {busybox_image}\n    platform: linux/arm64\n    pull_policy: never\n")
    result = run("composer", tmp_path, project_name, "create")
    assert result.returncode == 1
    assert "linux/arm64" in result.stderr, result.stderr


@pytest.mark.parametrize(("fragment", "version", "refusal", "path", "expected"), [
    ("annotations: {com.example.note: kept}", "1.43", "annotations needs Docker Engine API 1.43 (Docker 24.0)",
     "HostConfig/Annotations", {"com.example.note": "kept"}),
    ("healthcheck: {test: [CMD, 'true'], start_interval: 3s}", "1.44",
     "healthcheck.start_interval needs Docker Engine API 1.44 (Docker 25.0)", "Config/Healthcheck/StartInterval",
     3_000_000_000),
    ("networks: {default: {mac_address: '02:42:ac:11:00:43'}}", "1.44",
     "networks.mac_address (network {project}_default) needs Docker Engine API 1.44 (Docker 25.0)",
     "NetworkSettings/Networks/{project}_default/MacAddress", "02:42:ac:11:00:43"),
    ("volumes: [{type: image, source: IMAGE, target: /img, image: {subpath: bin}}]", "1.48",
     "volume type image (/img) needs Docker Engine API 1.48 (Docker 28.0)", "HostConfig/Mounts/0/ImageOptions",
     {"Subpath": "bin"}),
], ids=["annotations", "start_interval", "network_mac_address", "image_subpath"])
def test_a_key_this_engine_would_drop_reaches_it_or_is_refused_in_one_line(
        tmp_path: Path, project_name: str, docker_api: Any, busybox_image: str, fragment: str, version: str,
        refusal: str, path: str, expected: Any) -> None:
    import docker.utils

    (tmp_path / "compose.yaml").write_text(f"services:\n  app:\n    image: {busybox_image}\n    command: sleep 300\n"
                                           f"    {fragment.replace('IMAGE', busybox_image)}\n")
    result = run("composer", tmp_path, project_name, "create")
    if docker.utils.version_gte(docker_api.api_version, version):
        assert result.returncode == 0, result.stderr
        found: Any = docker_api.inspect_container(f"{project_name}-app-1")
        for part in path.replace("{project}", project_name).split("/"):
            found = found[int(part)] if isinstance(found, list) else found[part]
        assert found == expected
        return
    engine = docker_api.version()["Version"]
    lines = [line for line in result.stderr.splitlines() if line.startswith("composer:")]
    assert result.returncode == 1
    assert lines == [f"composer: {refusal.replace('{project}', project_name)}; this engine is Docker {engine} "
                     f"(API {docker_api.api_version})"], result.stderr
    assert not docker_api.containers(all=True, filters={"label": f"com.docker.compose.project={project_name}"})
