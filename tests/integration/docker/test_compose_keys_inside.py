"""Compose keys on a real container of dockerd, many per test: the file and the checks of
tests/integration/compose_keys.py, which the native backend's test runs too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.integration.compose_keys import EXTRA, SERVICE, check_inside, free_subnet

ENV = {**os.environ, "COMPOSE_ANSI": "never", "COMPOSER_BACKEND": "docker"}


def test_service_keys_reach_the_container(tmp_path: Path, project_name: str, docker_api: Any,
                                          busybox_image: str) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "file").write_text("from the host\n")
    subnet = free_subnet()
    text = "services:\n" + "\n".join("  " + line for line in SERVICE.replace("SUBNET", subnet).splitlines())
    (tmp_path / "compose.yaml").write_text(text.replace("IMAGE", busybox_image) + EXTRA.replace("SUBNET", subnet))

    def composer(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([sys.executable, "-m", "composer", "--progress", "plain", "-p", project_name, *args],
                                cwd=tmp_path, capture_output=True, text=True, timeout=180, env=ENV)
        assert not check or result.returncode == 0, (args, result.stderr)
        return result

    composer("up", "-d")
    try:
        check_inside(lambda script: composer("exec", "-T", "app", "sh", "-c", script).stdout,
                     lambda script: composer("exec", "-T", "app", "sh", "-c", script, check=False).stderr, subnet)
        # Docker's exec'd process has the container's ulimits too (runc exec inherits them)
        assert composer("exec", "-T", "app", "grep", "open files", "/proc/self/limits").stdout.split()[3:5] == [
            "1111", "2222"]
        container = docker_api.inspect_container(f"{project_name}-app-1")
        assert container["Config"]["Labels"]["dev.composer.test"] == "keys"  # labels
        assert "started" in composer("logs", "app").stdout  # entrypoint and command
    finally:
        composer("down", "-v", "-t", "1", check=False)
