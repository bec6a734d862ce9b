"""The swarm backend on a one-node swarm (the local dockerd): a stack's whole life through the CLI,
and interoperability both ways with ``docker stack deploy``/``docker stack rm`` (Debian's CLI)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from composer import labels
from tests.integration.swarm.conftest import docker_cli

STACK_FILE = """
services:
  web:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      labels: {{tier: front}}
    secrets: [token]
    configs:
      - source: settings
        target: /etc/settings.conf
        mode: 0440
    networks: [back]
    environment: {{GREETING: hello}}
  db:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy:
      endpoint_mode: dnsrr
    networks: [back]
networks:
  back: {{}}
secrets:
  token:
    file: ./token.txt
configs:
  settings:
    content: "level=3"
"""


def composer(folder: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "composer", "--backend", "swarm", "--progress", "plain", *args],
                            cwd=folder, capture_output=True, text=True, timeout=240)
    if check and result.returncode != 0:
        pytest.fail(f"composer {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def _project(tmp_path: Path, image: str, stack: str) -> Path:
    (tmp_path / "compose.yaml").write_text(f"name: {stack}\n" + STACK_FILE.format(image=image))
    (tmp_path / "token.txt").write_text("s3cret\n")
    return tmp_path


def _services(api: Any, stack: str) -> dict[str, Any]:
    found = api.services(filters={"label": f"{labels.STACK_NAMESPACE}={stack}"}) or []
    return {item["Spec"]["Name"]: item for item in found}


def _running_containers(api: Any, service: str) -> list[Any]:
    owned = {"label": f"com.docker.swarm.service.name={service}", "status": "running"}
    return list(api.containers(filters=owned) or [])


def _wait_running(api: Any, service: str, count: int, timeout: float = 90) -> list[Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _running_containers(api, service)
        if len(found) == count:
            return found
        time.sleep(0.3)
    pytest.fail(f"{service}: {len(_running_containers(api, service))} containers running, not {count}")


def test_a_stack_is_deployed_converged_rolled_and_removed(swarm: Any, stack: str, busybox_image: str,
                                                          tmp_path: Path) -> None:
    folder = _project(tmp_path, busybox_image, stack)
    composer(folder, "up", "-d", "--wait", "--wait-timeout", "120")
    services = _services(swarm, stack)
    assert sorted(services) == [f"{stack}_db", f"{stack}_web"]
    web = services[f"{stack}_web"]["Spec"]
    assert web["Labels"]["tier"] == "front"
    assert web["Labels"][labels.STACK_NAMESPACE] == stack
    assert web["Mode"] == {"Replicated": {"Replicas": 2}}
    assert web["EndpointSpec"]["Mode"] == "dnsrr"
    assert swarm.inspect_network(f"{stack}_back")["Driver"] == "overlay"
    containers = _wait_running(swarm, f"{stack}_web", 2)

    # The secret, the config (its target and mode) and the environment, inside a task's container.
    cid = containers[0]["Id"]
    shown = swarm.exec_start(swarm.exec_create(
        cid, ["sh", "-c", "cat /run/secrets/token; cat /etc/settings.conf; echo; stat -c %a /etc/settings.conf; "
                          "echo $GREETING; nslookup db 2>/dev/null | grep -c Address || true"]))
    lines = shown.decode().split()
    assert lines[:4] == ["s3cret", "level=3", "440", "hello"], lines

    # ps lists the tasks; a second up changes nothing (its plan is empty).
    _wait_running(swarm, f"{stack}_db", 1)
    listed = [json.loads(line) for line in composer(folder, "ps", "--format", "json").stdout.splitlines() if line]
    names = sorted(entry["Service"] for entry in listed)
    assert names == ["db", "web", "web"]
    assert composer(folder, "--dry-run", "up", "-d").stdout.strip() == ""
    assert f"running on {swarm.info()['Name']}" in composer(folder, "ps").stdout  # the task's node
    # logs, read through the manager's task logs (what each replica printed, and only the last line with --tail).
    swarm.exec_start(swarm.exec_create(cid, ["sh", "-c", "echo marked-line > /proc/1/fd/1"]))
    logs = composer(folder, "logs", "--no-log-prefix", "web").stdout
    assert "marked-line" in logs.split("\n")
    assert composer(folder, "logs", "--tail", "1", "db").stdout.strip() == ""

    # A new secret content is a new object: web rolls to it, db (which does not use it) stays.
    db_version = _services(swarm, stack)[f"{stack}_db"]["Version"]["Index"]
    (folder / "token.txt").write_text("rotated\n")
    plan = composer(folder, "--dry-run", "up", "-d").stdout
    assert "secret:token, CreateClusterObject" in plan
    assert "service:web, DeployService, config hash changed" in plan
    assert "service:db" not in plan
    composer(folder, "up", "-d", "--wait", "--wait-timeout", "120")
    secrets = [item["Spec"]["Name"] for item in swarm.secrets(filters={"label": f"{labels.STACK_NAMESPACE}={stack}"})]
    assert len(secrets) == 1, secrets  # the old one removed
    assert secrets[0].startswith(f"{stack}_token-"), secrets
    assert _services(swarm, stack)[f"{stack}_db"]["Version"]["Index"] == db_version
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        contents = set()
        for container in _running_containers(swarm, f"{stack}_web"):
            run = swarm.exec_create(container["Id"], ["cat", "/run/secrets/token"])
            contents.add(swarm.exec_start(run).decode().strip())
        if contents == {"rotated"}:
            break
        time.sleep(0.5)
    assert contents == {"rotated"}

    composer(folder, "down")
    selector = {"label": f"{labels.STACK_NAMESPACE}={stack}"}
    assert not swarm.services(filters=selector)
    assert not swarm.secrets(filters=selector)
    assert not swarm.configs(filters=selector)
    assert not swarm.networks(filters=selector)
    assert not swarm.containers(all=True, filters=selector)


def test_stacks_deployed_by_docker_stack_deploy_and_by_composer_are_one_thing(
        swarm: Any, stack: str, busybox_image: str, tmp_path: Path) -> None:
    folder = _project(tmp_path, busybox_image, stack)
    # docker stack deploy (20.10) wants a version and no name; the services are the same.
    text = (folder / "compose.yaml").read_text().replace(f"name: {stack}\n", 'version: "3.8"\n')
    (folder / "stack.yaml").write_text(text.replace('content: "level=3"', "file: ./settings.conf"))
    (folder / "settings.conf").write_text("level=3")
    deployed = docker_cli("stack", "deploy", "-c", "stack.yaml", stack, cwd=folder)
    assert deployed.returncode == 0, deployed.stderr
    _wait_running(swarm, f"{stack}_web", 2)
    _wait_running(swarm, f"{stack}_db", 1)

    # composer sees that stack, and its up takes the services over (they carry no config hash yet). ps lists
    # the manager's tasks, whose state follows the containers' a moment later (CI once listed db's alone).
    deadline = time.monotonic() + 60
    listed = composer(folder, "ps").stdout
    while f"{stack}_web.1." not in listed and time.monotonic() < deadline:
        time.sleep(0.5)
        listed = composer(folder, "ps").stdout
    assert f"{stack}_web.1." in listed
    assert f"{stack}_db.1." in listed
    plan = composer(folder, "--dry-run", "up", "-d").stdout
    assert "service:web, DeployService, deployed without composer's config hash" in plan
    composer(folder, "up", "-d", "--wait", "--wait-timeout", "120")
    assert composer(folder, "--dry-run", "up", "-d").stdout.strip() == ""
    # ... and down removes it whole, the objects docker stack deploy made included.
    composer(folder, "down")
    selector = {"label": f"{labels.STACK_NAMESPACE}={stack}"}
    assert not swarm.services(filters=selector)
    assert not swarm.secrets(filters=selector)
    assert not swarm.networks(filters=selector)

    # The other way: composer's stack is a stack to the docker CLI, and docker stack rm removes it.
    composer(folder, "up", "-d", "--wait", "--wait-timeout", "120")
    stacks = docker_cli("stack", "ls", "--format", "{{.Name}} {{.Services}}").stdout.split("\n")
    assert f"{stack} 2" in stacks
    tasks = docker_cli("stack", "ps", stack, "--filter", "desired-state=running", "--format", "{{.Name}}").stdout
    assert sorted(tasks.split()) == [f"{stack}_db.1", f"{stack}_web.1", f"{stack}_web.2"]
    removed = docker_cli("stack", "rm", stack)
    assert removed.returncode == 0, removed.stderr
    assert f"Removing service {stack}_web" in removed.stdout
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and (swarm.services(filters=selector) or swarm.networks(filters=selector)):
        time.sleep(0.3)
    assert not swarm.services(filters=selector)


def test_what_a_swarm_service_cannot_run_is_refused_before_anything_is_created(
        swarm: Any, stack: str, busybox_image: str, tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(f"""
name: {stack}
services:
  app:
    image: {busybox_image}
    privileged: true
    networks: [back]
networks:
  back: {{}}
""")
    result = composer(tmp_path, "up", "-d", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        "composer: services.app.privileged is not supported by the swarm backend (a Swarm service has no such option)"]
    assert not swarm.networks(filters={"label": f"{labels.STACK_NAMESPACE}={stack}"})


def _one_service(folder: Path, stack: str, service: str, image: str, command: str, *deploy: str) -> None:
    """A compose file of one dnsrr service running ``sh -c command``, restarted on failure after 1 s, with
    ``deploy`` lines added to its deploy section."""
    extra = "".join(f"      {line}\n" for line in deploy)
    (folder / "compose.yaml").write_text(f"""
name: {stack}
services:
  {service}:
    image: {image}
    command: ["sh", "-c", "{command}"]
    deploy:
      endpoint_mode: dnsrr
      restart_policy: {{condition: on-failure, delay: 1s}}
{extra}""")


def test_up_wait_fails_with_the_tasks_errors_when_a_service_never_converges(
        swarm: Any, stack: str, busybox_image: str, tmp_path: Path) -> None:
    _one_service(tmp_path, stack, "broken", busybox_image, "exit 3")
    result = composer(tmp_path, "up", "-d", "--wait", "--wait-timeout", "20", check=False)
    assert result.returncode != 0
    assert f"{stack}_broken (0/1 running: task: non-zero exit (3)" in result.stderr, result.stderr


def test_up_wait_fails_naming_the_rollback_when_an_update_never_becomes_stable(
        swarm: Any, stack: str, busybox_image: str, tmp_path: Path) -> None:
    """An update whose new task exits is rolled back by the engine (failure_action: rollback), and up --wait
    fails saying so in one line, with the task's error (a guest run once printed only "unhandled errors in a
    TaskGroup"); the service runs the previous command again, as ``docker service update`` leaves it."""
    def write(command: str) -> None:
        _one_service(tmp_path, stack, "web", busybox_image, command,
                     "update_config: {parallelism: 1, failure_action: rollback, monitor: 3s}")

    write("trap 'exit 0' TERM; while true; do sleep 1; done")
    composer(tmp_path, "up", "-d", "--wait", "--wait-timeout", "120")
    write("sleep 1; exit 5")
    result = composer(tmp_path, "up", "-d", "--wait", "--wait-timeout", "180", check=False)
    assert result.returncode != 0
    assert "TaskGroup" not in result.stderr, result.stderr
    assert f"service {stack}_web update rollback" in result.stderr, result.stderr
    assert "non-zero exit (5)" in result.stderr, result.stderr
    final = result.stderr.strip().splitlines()[-1]
    assert final.startswith("composer: "), final
    assert "rollback" in final, final
    spec = _services(swarm, stack)[f"{stack}_web"]["Spec"]["TaskTemplate"]["ContainerSpec"]
    assert "while true" in " ".join(spec.get("Args") or spec.get("Command") or []), spec
