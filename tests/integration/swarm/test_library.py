"""The library on the swarm backend: ``composer.Project(..., backend="swarm")`` deploys, waits until
the services converged, finds a published port, execs in a task and removes the stack."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import composer
from composer import labels


def test_project_on_a_swarm(swarm: Any, stack: str, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(f"""
services:
  echo:
    image: {busybox_image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do echo pong | nc -l -p 7000; done"]
    ports:
      - {{target: 7000, published: 17000, mode: host}}
    deploy: {{endpoint_mode: dnsrr}}
""")
    with composer.Project(tmp_path, project_name=stack, backend="swarm") as project:
        tasks = project.ps()
        assert [(task.service, task.running) for task in tasks] == [("echo", True)]
        address = project.port("echo", 7000).address
        assert address[1] == 17000
        deadline = time.monotonic() + 30
        reply = b""
        while time.monotonic() < deadline and reply != b"pong\n":
            try:
                with socket.create_connection(("127.0.0.1", address[1]), timeout=3) as connection:
                    reply = connection.recv(100)
            except OSError:
                time.sleep(0.3)
        assert reply == b"pong\n"
        result = project.exec("echo", ["sh", "-c", "echo $((6 * 7))"])
        assert (result.exit_code, result.stdout.strip()) == (0, "42")
    assert not swarm.services(filters={"label": f"{labels.STACK_NAMESPACE}={stack}"})
