"""The swarm backend on a real multi-node Swarm: two Debian guests of the guest lane, each running
Debian's dockerd, joined as a manager (guest0) and a worker (guest1) over the harness's bridge.
composer runs inside the manager guest, as a user on a cluster would.

The guests' kernel (Debian 12's 6.1) has IPVS, so the routing mesh and virtual IPs work there, unlike
on this host. Each guest builds the test image itself (Debian's static busybox, FROM scratch), so no
registry is needed: a node runs what it has.

Shown here: replicas spread over the nodes and reachable through the routing mesh on every node's
address; service discovery across nodes on an overlay network; draining a node moves its tasks and
``up --wait`` still converges; a rolling update (update_config: parallelism 1, a delay) with a
healthy task at every moment, seen by a client polling throughout; a failing update rolled back
(failure_action: rollback) and reported by ``up --wait``; secrets rotated on change.
The WordPress example's own tests run in the manager guest, its services on two nodes.
Part of ``make test-vm`` (marked vm); its last whole run: docs/swarm.md.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vm.machine import Guest, Options, guests

pytestmark = pytest.mark.vm
IMAGE = "composer-test/busybox:latest"
BUILD_IMAGE = f"""set -e
rm -rf /tmp/bb && mkdir -p /tmp/bb/bin /tmp/bb/tmp /tmp/bb/www
cp /bin/busybox /tmp/bb/bin/busybox
for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -s busybox /tmp/bb/bin/$applet; done
tar -C /tmp/bb -c . | docker import -c 'CMD ["sh"]' -c 'ENV PATH=/bin' - {IMAGE} >/dev/null
"""
# dockerd pulls docker.io's images through the host's registry (the guest's 127.0.0.1:5000), as the
# host's dockerd does (scripts/ensure-dockerd): the WordPress example's stand-in images come from there.
# DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: a node starts a task from the image it has, instead of trying a pull
# first (the test image is built on each node and no registry has it: each task's start waited minutes
# for docker.io's name to fail to resolve behind qemu's restricted network).
START_DOCKERD = """set -e
mkdir -p /etc/docker /etc/systemd/system/docker.service.d
echo '{"registry-mirrors": ["http://127.0.0.1:5000"]}' > /etc/docker/daemon.json
printf '[Service]\\nEnvironment=DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1\\n' \\
    > /etc/systemd/system/docker.service.d/offline.conf
systemctl daemon-reload
systemctl restart docker
until docker info >/dev/null 2>&1; do sleep 0.5; done
"""
# Seconds for up --wait: under TCG with the machine's 2 cores shared, a task's start on the manager (each
# overlay attachment's iptables calls waiting for the xtables lock) took over 300 s.
WAIT_TIMEOUT = "900"
# A web server whose page says which task and which version answered; healthy once it serves.
HEALTH = "printf 'GET / HTTP/1.0\\\\r\\\\n\\\\r\\\\n' | nc 127.0.0.1 8000 | grep -q ' 200 '"
# Under TCG on a loaded machine one check (a docker exec) takes seconds: a 2 s timeout failed every check.
HEALTH_TIMING = "interval: 2s, timeout: 30s, retries: 5, start_period: 120s"


def web(name: str, version: str, *extra: str, start: str = "") -> str:
    """A service ``name`` (Compose YAML, under ``services:``) serving "<version> <hostname>" on 8000."""
    serve = f'{start}echo \\"$$VERSION $$(hostname)\\" > /www/index.html; exec httpd -f -p 8000 -h /www'
    lines = [f"  {name}:", f"    image: {IMAGE}", f'    command: ["sh", "-c", "{serve}"]',
             f"    environment: {{VERSION: {version}}}",
             f'    healthcheck: {{test: ["CMD", "sh", "-c", "{HEALTH}"], {HEALTH_TIMING}}}',
             *(f"    {line}" for line in extra)]
    return "\n".join(lines) + "\n"


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


def must(guest: Guest, script: str, timeout: float = 600) -> str:
    result = guest.run(["sh", "-c", script], timeout=timeout)
    assert result.status == 0, f"{guest.name}: {script!r} exited {result.status}:\n{result.output}\n{result.journal}"
    return result.output


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vm-swarm")


@pytest.fixture(scope="module")
def cluster(share: Path) -> Iterator[list[Guest]]:
    """Two guests with dockerd, joined as one swarm; the test image on both."""
    if os.geteuid() != 0:
        unavailable("the guest lane needs root (network namespace, taps)")
    if shutil.which("qemu-system-x86_64") is None or shutil.which("debootstrap") is None:
        unavailable("qemu-system-x86_64 or debootstrap is missing (make deps)")
    with guests(Options(guests=2, shares=(share,), packages=("docker.io", "docker-registry"))) as booted:
        for guest in booted:
            must(guest, START_DOCKERD)
            must(guest, BUILD_IMAGE)
        manager, worker = booted
        # Each node advertises its bridge address: the default route's NIC is qemu's user network, which
        # reaches nothing but the registry forward (a worker that joined by it got no overlay traffic).
        must(manager, f"docker swarm init --advertise-addr {manager.address} --listen-addr {manager.address}:2377"
                      " >/dev/null")
        token = must(manager, "docker swarm join-token -q worker").strip()
        must(worker, f"docker swarm join --token {token} --advertise-addr {worker.address} {manager.address}:2377"
                     " >/dev/null")
        nodes = must(manager, "docker node ls --format '{{.Hostname}} {{.Status}}'").split("\n")
        assert sorted(line for line in nodes if line) == ["guest0 Ready", "guest1 Ready"], nodes
        yield booted


def composer(guest: Guest, folder: Path, *args: str, check: bool = True, timeout: float = 1200) -> str:
    command = " ".join(["composer", "--backend", "swarm", "--progress", "plain", *args])
    result = guest.run(["sh", "-c", f"cd {folder} && {command} 2>&1"], timeout=timeout)
    if check:
        assert result.status == 0, f"{command} exited {result.status}:\n{result.output}"
    return result.output


def project(share: Path, name: str, services: str, rest: str = "") -> Path:
    """A project folder in the share (the guests see it at the same path) with its compose.yaml."""
    folder = share / name
    folder.mkdir(exist_ok=True)
    (folder / "compose.yaml").write_text(f"name: {name}\nservices:\n{services}{textwrap.dedent(rest)}")
    return folder


def fetch(guest: Guest, address: str, port: int, tries: int = 20) -> str:
    """One page through ``address:port`` (the routing mesh), retried while the mesh settles."""
    url = f"http://{address}:{port}/"
    script = f"for i in $(seq {tries}); do curl -sf --max-time 2 {url} && exit 0; sleep 1; done; exit 1"
    return must(guest, script).strip()


def test_replicas_spread_over_the_nodes_and_the_mesh_answers_on_every_node(cluster: list[Guest],
                                                                             share: Path) -> None:
    manager, worker = cluster
    folder = project(share, "spread", web("web", "v1", 'ports: ["18000:8000"]',
                                          "deploy: {replicas: 2, placement: {max_replicas_per_node: 1}}"))
    try:
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        placed = must(manager, "docker service ps spread_web --filter desired-state=running --format '{{.Node}}'")
        assert sorted(placed.split()) == ["guest0", "guest1"]
        listed = composer(manager, folder, "ps")
        assert "running on guest0" in listed
        assert "running on guest1" in listed
        answers = set()
        for node in (manager, worker):  # every node's address serves, whichever node runs the task
            for _ in range(6):
                answers.add(fetch(manager, node.address, 18000))
        assert {answer.split()[0] for answer in answers} == {"v1"}
        assert len({answer.split()[1] for answer in answers}) == 2, answers  # both tasks answered
    finally:
        composer(manager, folder, "down", check=False)


def test_a_service_on_one_node_is_found_and_reached_from_a_task_on_the_other(cluster: list[Guest],
                                                                             share: Path) -> None:
    manager, _ = cluster
    client = (f'  client:\n    image: {IMAGE}\n    command: ["sleep", "3600"]\n'
              '    deploy: {placement: {constraints: ["node.hostname==guest0"]}}\n')
    folder = project(share, "discovery", web("server", "far", 'deploy: {placement: {constraints: '
                                                              '["node.hostname==guest1"]}}') + client)
    try:
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        script = ("printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc server 8000 | tail -n 1")
        answer = composer(manager, folder, "exec", "-T", "client", "sh", "-c", shlex.quote(script))
        assert answer.split()[0] == "far", answer
        # exec on a task of the other node is refused, naming the node.
        refused = composer(manager, folder, "exec", "-T", "server", "true", check=False)
        assert "runs on node guest1" in refused
    finally:
        composer(manager, folder, "down", check=False)


def test_draining_a_node_moves_its_tasks_and_up_wait_still_converges(cluster: list[Guest], share: Path) -> None:
    manager, _ = cluster
    folder = project(share, "drain", web("web", "v1", "deploy: {replicas: 2}"))
    try:
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        must(manager, "docker node update --availability drain guest1 >/dev/null")
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            placed = must(manager, "docker service ps drain_web --filter desired-state=running --format "
                                   "'{{.Node}} {{.CurrentState}}'")
            nodes = [line.split()[0] for line in placed.splitlines() if "Running" in line]
            if nodes == ["guest0", "guest0"]:
                break
            time.sleep(2)
        assert nodes == ["guest0", "guest0"], placed
    finally:
        must(manager, "docker node update --availability active guest1 >/dev/null")
        composer(manager, folder, "down", check=False)


def test_a_rolling_update_keeps_a_healthy_task_answering_and_a_failing_one_rolls_back(
        cluster: list[Guest], share: Path) -> None:
    manager, worker = cluster
    deploy = ('ports: ["18100:8000"]', "deploy:", "  replicas: 2",
              "  update_config: {parallelism: 1, delay: 3s, order: start-first, failure_action: rollback,"
              " monitor: 5s}")
    folder = project(share, "rolling", web("web", "v1", *deploy))
    log = folder / "polls.txt"
    try:
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        # A client polls through the mesh (on the worker's address) for the whole update.
        (folder / "stop").unlink(missing_ok=True)  # a share used before may hold one
        poller = (f"while [ ! -e {folder}/stop ]; do r=$(curl -sf --max-time 1 http://{worker.address}:18100/ "
                  f"|| echo FAIL); echo \"$(date +%s.%N) $r\" >> {log}; sleep 0.2; done")
        must(manager, f"nohup sh -c '{poller}' >/dev/null 2>&1 &")
        project(share, "rolling", web("web", "v2", *deploy))
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        time.sleep(2)
        (folder / "stop").touch()
        time.sleep(2)
        polls = [line.split() for line in log.read_text().splitlines() if line.strip()]
        versions = [poll[1] for poll in polls]
        assert "v1" in versions
        assert versions[-1] == "v2"
        failures = [poll for poll in polls if poll[1] == "FAIL"]
        assert len(failures) <= max(2, len(polls) // 50), f"{len(failures)} of {len(polls)} polls failed"
        running = must(manager, "docker service ps rolling_web --filter desired-state=running --format '{{.Name}}'")
        assert len(running.split()) == 2

        # An update whose tasks never become healthy rolls back, and up --wait says so.
        project(share, "rolling", web("web", "v3", *deploy, start="exit 1; "))
        failed = composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT, check=False)
        assert "rolling_web update rollback" in failed, failed
        version = fetch(manager, manager.address, 18100).split()[0]
        assert version == "v2"
    finally:
        (folder / "stop").touch()
        composer(manager, folder, "down", check=False)


def test_a_changed_secret_rolls_the_service_on_every_node(cluster: list[Guest], share: Path) -> None:
    manager, _ = cluster
    app = (f"  app:\n    image: {IMAGE}\n"
           '    command: ["sh", "-c", "cat /run/secrets/token > /www/index.html; exec httpd -f -p 8000 -h /www"]\n'
           '    secrets: [token]\n    ports: ["18200:8000"]\n'
           "    deploy: {replicas: 2, placement: {max_replicas_per_node: 1}}\n")
    folder = project(share, "rotate", app, """
        secrets:
          token: {file: ./token.txt}
        """)
    (folder / "token.txt").write_text("first\n")
    try:
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        (folder / "token.txt").write_text("second\n")
        composer(manager, folder, "up", "-d", "--wait", "--wait-timeout", WAIT_TIMEOUT)
        seen = {fetch(manager, manager.address, 18200) for _ in range(8)}
        assert seen == {"second"}, seen
        secrets = must(manager, "docker secret ls --format '{{.Name}}'").split()
        assert [name for name in secrets if name.startswith("rotate_token-")] == [secrets[0]]
    finally:
        composer(manager, folder, "down", check=False)


def test_the_wordpress_example_on_two_nodes_answers_through_the_mesh(cluster: list[Guest], share: Path) -> None:
    """The example's own tests (examples/wordpress-mysql/tests), run in the manager guest on the swarm
    backend: compose.swarm.yaml pins MariaDB to the manager and WordPress to the worker, over the stack's
    overlay network; the tests' client reaches WordPress at the manager's 127.0.0.1 (port()), through
    the routing mesh to the worker. The stand-in images come from the host's registry (the nodes'
    docker.io mirror), as in the focused guest run."""
    from tests.vm.focused import prepare_example_on_host

    manager, worker = cluster
    prepare_example_on_host()
    for node in (manager, worker):  # tasks start from the nodes' images (START_DOCKERD): pull them first
        must(node, "docker pull -q mariadb:11 && docker pull -q wordpress:6-apache", timeout=1800)
    placed = share / "wordpress-placement.txt"
    stop = share / "wordpress-stop"
    # Where each task runs, recorded while the example's tests run (its stack is gone when they end).
    watcher = (f"while [ ! -e {stop} ]; do docker service ls -q | xargs -r docker service ps --filter "
               f"desired-state=running --format '{{{{.Name}}}} {{{{.Node}}}} {{{{.CurrentState}}}}' >> {placed}; "
               "sleep 5; done")
    must(manager, f"nohup sh -c {shlex.quote(watcher)} >/dev/null 2>&1 &")
    pytest = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:composer", "-p", "composer.pytest_plugin",
              "-q", "-rfEs", "--composer-backend", "swarm", "examples/wordpress-mysql/tests"]
    try:
        result = manager.run(pytest, env={"COMPOSER_EXAMPLE_IMAGES": "served", "COMPOSER_EXAMPLE_TIMEOUT": "1800"},
                             timeout=3600)
    finally:
        stop.touch()
    sys.stderr.write(f"\nthe example's tests on the swarm: {result.seconds:.0f} s\n")
    assert result.status == 0, f"{result.output[-6000:]}\n{result.journal}"
    # four tests on compose.yaml; their compose.build.yaml variants are skipped on a swarm
    assert "4 passed, 4 skipped" in result.output, result.output[-3000:]
    running = {tuple(line.split()[:2]) for line in placed.read_text().splitlines() if " Running " in line}
    services = {(name.split(".")[0].rpartition("_")[2], node) for name, node in running}
    assert ("db", "guest0") in services, running
    assert ("wordpress", "guest1") in services, running
    assert ("wordpress", "guest0") not in services, running
    assert ("db", "guest1") not in services, running
