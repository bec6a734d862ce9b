"""The lifecycle keys of a service on the native backend (healthcheck, restart policy, replicas,
dependencies, exposed ports, pull policy, platform), seen in what the supervisor records
(health.json, the restarts a crashing service made) and what ``ps`` shows. One project for the
family; tests/integration/docker/test_keys_runtime.py shows the same keys reach dockerd as v2
sends them."""

from __future__ import annotations

import itertools
import json
from typing import Any

from tests.integration.native.test_lifecycle import Project, env, eventually, one_line, project

__all__ = ["env", "project"]  # the fixtures, imported for pytest

RUNTIME = """\
db:
  image: IMAGE
  command: sleep 300
  environment: {GENERATION: "GEN"}
  expose: ["7000", "7001/udp"]
  deploy:
    replicas: 2
web:
  image: IMAGE
  command: sleep 300
  depends_on:
    db: {condition: service_started, restart: true}
  pull_policy: never
timed:
  image: IMAGE
  command: sleep 300
  healthcheck: {test: [CMD-SHELL, "sleep 5"], timeout: 1s, interval: 1s, retries: 1}
counted:
  image: IMAGE
  command: sleep 300
  healthcheck: {test: [CMD, "false"], interval: 1s, retries: 2}
patient:
  image: IMAGE
  command: sleep 300
  healthcheck: {test: [CMD, "false"], interval: 60s, start_period: 60s, start_interval: 500ms}
fine:
  image: IMAGE
  command: sleep 300
  healthcheck: {test: [CMD, "true"], interval: 1s}
crash:
  image: IMAGE
  command: sh -c 'date +%s >> /runs/runs; exit 3'
  volumes: [./runs:/runs]
  deploy:
    restart_policy: {condition: on-failure, max_attempts: 2, delay: 2s}
"""


def test_lifecycle_keys_as_the_supervisor_and_ps_show_them(project: Project) -> None:
    (project.folder / "runs").mkdir()
    project.write(RUNTIME.replace("GEN", "1"))
    project.run("up", "-d")

    def health(service: str) -> dict[str, Any]:
        path = project.run_dir() / f"{project.name}-{service}-1" / "health.json"
        return json.loads(path.read_text()) if path.exists() else {}

    # healthcheck.test, interval: a passing probe within a few intervals
    eventually(lambda: health("fine").get("status") == "healthy")
    # timeout and retries 1: the first probe is cut at the timeout and the service is unhealthy
    eventually(lambda: health("timed").get("status") == "unhealthy")
    assert health("timed")["log"][0]["output"] == "Health check exceeded timeout (1s)"
    # retries 2: unhealthy exactly when two probes in a row failed
    seen: list[tuple[str, int]] = []

    def counted() -> bool:
        state = health("counted")
        seen.append((state.get("status", ""), state.get("failing_streak", 0)))
        return state.get("status") == "unhealthy"

    eventually(counted, interval=0.05)
    assert all(streak >= 2 for status, streak in seen if status == "unhealthy"), seen
    assert all(streak < 2 for status, streak in seen if status == "starting"), seen
    # start_period and start_interval: probes every 500 ms while starting (the 60 s interval would
    # allow none yet), and their failures do not count
    eventually(lambda: len(health("patient").get("log") or ()) >= 5, timeout=15)
    assert (health("patient")["status"], health("patient")["failing_streak"]) == ("starting", 0)
    # restart_policy: on-failure, twice at most, delay apart
    eventually(lambda: len((project.folder / "runs" / "runs").read_text().split()) >= 3, timeout=30)
    assert "Exited (3)" in project.run("ps", "-a", "crash").stdout
    runs = [int(stamp) for stamp in (project.folder / "runs" / "runs").read_text().split()]
    assert len(runs) == 3, runs  # the first run and max_attempts restarts
    assert all(later - earlier >= 1 for earlier, later in itertools.pairwise(runs)), runs
    listing = project.run("ps").stdout
    assert f"{project.name}-db-2" in listing  # deploy.replicas
    assert "7000/tcp" in listing  # expose
    assert "7001/udp" in listing
    # depends_on.restart: web restarts when db is recreated
    before = project.state(f"{project.name}-web-1")["pid"]
    project.write(RUNTIME.replace("GEN", "2"))
    project.run("up", "-d", "db", "web")
    assert project.state(f"{project.name}-web-1")["pid"] != before
    project.down()


def test_pull_policy_never_and_platform(project: Project) -> None:
    project.write("app:\n  image: registry.invalid/composer/absent:1\n  pull_policy: never\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode == 1
    message = one_line(result)
    assert "registry.invalid/composer/absent:1" in message
    assert "lookup" not in message  # no pull was tried
    # platform: the stored image runs when it is of that platform, and is refused when not (as Docker)
    project.write("app:\n  image: IMAGE\n  command: sleep 300\n  platform: linux/x86_64\n")
    project.run("up", "-d")
    project.write("app:\n  image: IMAGE\n  command: sleep 300\n  platform: linux/arm64\n  pull_policy: never\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode == 1
    assert one_line(result).endswith(f"image with reference {project.env.image} was found but does not match the "
                                     "specified platform: wanted linux/arm64, actual: linux/amd64"), result.stderr


def test_healthcheck_disable_turns_off_the_images_healthcheck(project: Project) -> None:
    project.write(f'probed:\n  image: {project.name}-probed\n  build:\n'
                  f'    dockerfile_inline: "FROM {project.env.image}\\nHEALTHCHECK --interval=1s CMD true"\n')
    project.run("build", timeout=180)
    project.write(f"checked:\n  image: {project.name}-probed\n  command: sleep 300\n"
                  f"off:\n  image: {project.name}-probed\n  command: sleep 300\n  healthcheck: {{disable: true}}\n")
    project.run("up", "-d")
    health = project.run_dir() / f"{project.name}-checked-1" / "health.json"
    eventually(lambda: health.exists() and json.loads(health.read_text())["status"] == "healthy")
    # the image's probe ran in `checked`; `off`, with the same image, has no healthcheck at all
    assert not (project.run_dir() / f"{project.name}-off-1" / "health.json").exists()
    assert "(healthy)" not in project.run("ps", "off").stdout
    project.run("down", "--rmi", "all", "-t", "0")
    from composer.backends.native.image.store import ImageStore

    ImageStore.open(project.env.root / "store").gc()  # the build's layers
