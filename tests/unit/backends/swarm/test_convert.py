"""ServiceSpec -> the Engine API's service spec: what ``docker stack deploy`` (Debian's 20.10 CLI)
sent for the same file, field by field, and the refusals."""

from __future__ import annotations

from pathlib import Path

from composer.backends.swarm.convert import refusals, service_arguments
from composer.planner.stack import service_spec
from composer.planner.stack_objects import stack_objects
from tests.unit.conftest import LoadFn

FILE = """
services:
  web:
    image: busybox:latest
    command: sleep 300
    deploy:
      replicas: 2
      endpoint_mode: dnsrr
      resources: {limits: {cpus: "0.5", memory: 64M, pids: 100}, reservations: {memory: 32M}}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3}
      placement: {constraints: ["node.role==manager"], preferences: [{spread: node.labels.zone}],
                  max_replicas_per_node: 1}
      update_config: {parallelism: 1, delay: 2s, failure_action: rollback, order: start-first}
    secrets: [s1]
    healthcheck: {test: ["CMD", "true"], interval: 5s, retries: 2}
    networks: [back]
    ports:
      - {target: 80, published: 18080, mode: host}
networks:
  back: {}
secrets:
  s1: {file: ./s1.txt}
"""


def test_the_spec_docker_stack_deploy_sends(load: LoadFn, tmp_path: Path) -> None:
    (tmp_path / "s1.txt").write_text("secret")
    project = load(FILE)
    objects = stack_objects(project)
    secret = objects[("secret", "s1")].name
    spec = service_spec(project, project.services["web"], objects)
    arguments = service_arguments(spec, {("secret", secret): "sid"})
    task = arguments["task_template"]
    container = task["ContainerSpec"]
    # As docker stack deploy wrote it (docker service inspect), composer's additions aside.
    assert container["Image"] == "busybox:latest"
    assert container["Args"] == ["sleep", "300"]
    assert container["Labels"] == {"com.docker.stack.namespace": "demo"}
    assert container["Secrets"] == [{"File": {"Name": "s1", "UID": "0", "GID": "0", "Mode": 292},
                                     "SecretName": secret, "SecretID": "sid"}]
    assert container["Healthcheck"] == {"Test": ["CMD", "true"], "Interval": 5_000_000_000, "Retries": 2}
    assert task["Networks"] == [{"Target": "demo_back", "Aliases": ["web"]}]
    assert task["Resources"] == {"Limits": {"NanoCPUs": 500_000_000, "MemoryBytes": 64 * 1024 * 1024, "Pids": 100},
                                 "Reservations": {"MemoryBytes": 32 * 1024 * 1024}}
    assert task["RestartPolicy"] == {"Condition": "on-failure", "Delay": 5_000_000_000, "MaxAttempts": 3}
    assert task["Placement"] == {"Constraints": ["node.role==manager"],
                                 "Preferences": [{"Spread": {"SpreadDescriptor": "node.labels.zone"}}],
                                 "MaxReplicas": 1}
    assert arguments["name"] == "demo_web"
    assert arguments["mode"] == {"Replicated": {"Replicas": 2}}
    assert arguments["labels"]["com.docker.stack.namespace"] == "demo"
    assert arguments["labels"]["com.docker.stack.image"] == "busybox:latest"
    assert arguments["update_config"] == {"Parallelism": 1, "Delay": 2_000_000_000, "FailureAction": "rollback",
                                          "Order": "start-first"}
    assert arguments["endpoint_spec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 18080, "PublishMode": "host"}]}


def test_modes_and_restart(load: LoadFn) -> None:
    project = load("""
services:
  everywhere: {image: busybox, deploy: {mode: global}, restart: unless-stopped}
  once: {image: busybox, deploy: {mode: replicated-job, replicas: 3}}
""")
    everywhere = service_arguments(service_spec(project, project.services["everywhere"], {}), {})
    assert everywhere["mode"] == {"Global": {}}
    assert everywhere["task_template"]["RestartPolicy"] == {"Condition": "any"}
    once = service_arguments(service_spec(project, project.services["once"], {}), {})
    assert once["mode"] == {"ReplicatedJob": {"MaxConcurrent": 3, "TotalCompletions": 3}}


def test_keys_a_swarm_service_cannot_run_are_named(load: LoadFn) -> None:
    project = load("""
services:
  app:
    image: busybox
    privileged: true
    container_name: fixed
    network_mode: host
    cap_add: [NET_ADMIN]
""")
    assert refusals(project.services["app"]) == [
        f"services.app.{key} is not supported by the swarm backend (a Swarm service has no such option)"
        for key in ("container_name", "network_mode", "privileged")]
    assert refusals(load("services:\n  ok: {image: busybox, cap_add: [NET_ADMIN]}\n").services["ok"]) == []
