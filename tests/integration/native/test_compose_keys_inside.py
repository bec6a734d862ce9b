"""Compose keys on a real native container, many per test (each `up` costs seconds): what the
coverage table (composer/backends/native/coverage.py) marks applied is seen from inside the
container or from the host. Docker behaves the same on each check here
(tests/integration/docker/test_compose_keys.py runs the same file against dockerd)."""

from __future__ import annotations

from pathlib import Path

from tests.integration.compose_keys import EXTRA, SERVICE, check_inside, free_subnet
from tests.integration.native.test_lifecycle import Env, Project, env, project  # noqa: F401  (fixtures)


def _in(project_: Project, script: str) -> str:
    return project_.run("exec", "-T", "app", "sh", "-c", script).stdout


def test_service_keys_reach_the_container(project: Project, tmp_path: Path) -> None:  # noqa: F811
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "file").write_text("from the host\n")
    subnet = free_subnet()
    project.write(SERVICE.replace("SUBNET", subnet), EXTRA.replace("SUBNET", subnet))
    project.run("up", "-d")
    try:
        check_inside(lambda script: _in(project, script),
                     lambda script: project.run("exec", "-T", "app", "sh", "-c", script, check=False).stderr, subnet)
        # an exec'd process has the container's ulimits, as Docker's (runc exec gives them)
        assert _in(project, "grep 'open files' /proc/self/limits").split()[3:5] == ["1111", "2222"]
        config = project.state(f"{project.name}-app-1", "config.json")
        assert config["labels"]["dev.composer.test"] == "keys"  # labels, as ps and the planner read them
        assert "started" in project.run("logs", "app").stdout  # entrypoint and command
    finally:
        project.down()
