"""A small real stack for the library and plugin tests: busybox httpd behind a healthcheck."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from composer import labels

STACK = """\
services:
  web:
    image: {image}
    command:
      - sh
      - -c
      - >-
        mkdir -p /www && echo hello > /www/index.html && echo server starting{marker}
        && exec httpd -f -v -p 8080 -h /www
    ports: ["8080"]
    stop_grace_period: 1s  # PID 1 ignores SIGTERM: do not wait 10 s for it
    healthcheck:
      test: ["CMD-SHELL", "netstat -ltn | grep -q :8080"]
      interval: 1s
      timeout: 2s
      retries: 30
  sidecar:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on:
      web: {{condition: service_healthy}}
"""


def write_stack(folder: Path, image: str, *, marker: str = "") -> Path:
    """``folder/compose.yaml`` with services web (httpd on 8080, healthy once listening) and sidecar."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "compose.yaml"
    path.write_text(STACK.format(image=image, marker=marker))
    return path


def projects_named(api: Any, prefix: str) -> set[str]:
    """The projects with containers, networks or volumes whose name starts with ``prefix``."""
    found = {(item.get("Labels") or {}).get(labels.PROJECT, "") for item in api.containers(all=True)}
    found |= {(item.get("Labels") or {}).get(labels.PROJECT, "") for item in api.networks()}
    return {name for name in found if name.startswith(prefix)}
