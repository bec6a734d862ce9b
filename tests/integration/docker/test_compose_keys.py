"""Compose keys of issue 19 on the docker backend, through the CLI, side by side with the real
Compose v2 binary where it runs them: secrets from ``environment:``, configs from
``content:``/``environment:``, ``post_start``/``pre_stop`` hooks, ``use_api_socket``, and the
one-line refusals of ``models`` and ``provider`` services. The native side is
tests/integration/native/test_compose_keys.py.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.integration.docker.test_cli_lifecycle import compose_v2, composer, containers
from tests.integration.native.test_compose_keys import EXPECTED, INJECTED, RESOURCES


@pytest.fixture
def folder(tmp_path: Path, docker_api: Any) -> Iterator[Path]:
    """An empty project folder with a unique name; everything of that project (and of its
    ``-v2`` twin) is removed."""
    name = f"keys{uuid.uuid4().hex[:8]}"
    path = tmp_path / name
    path.mkdir()
    yield path
    remove_project(docker_api, name)
    remove_project(docker_api, f"{name}-v2")


def write(folder: Path, image: str, services: str, extra: str = "") -> None:
    import textwrap

    body = textwrap.dedent(services).replace("IMAGE", image)
    (folder / "compose.yaml").write_text("services:\n" + textwrap.indent(body, "  ") + textwrap.dedent(extra))


def listing(api: Any, container_id: str) -> list[list[str]]:
    out = run(api, container_id, ["ls", "-ln", "/run/secrets/token", "/run/secrets/other", "/inline",
                                  "/etc/app/conf.txt"])
    return sorted([f[0], f[2], f[3], f[-1]] for line in out.splitlines() if (f := line.split()))


def run(api: Any, container_id: str, command: list[str]) -> str:
    exec_id = api.exec_create(container_id, command)["Id"]
    output: bytes = api.exec_start(exec_id)
    return output.decode()


def the_container(api: Any, project: str, service: str = "app") -> dict[str, Any]:
    found = [c for c in containers(api, project) if c["Labels"]["com.docker.compose.service"] == service]
    assert len(found) == 1, found
    return found[0]


def test_secrets_and_configs_with_content_as_v2_writes_them(folder: Path, docker_api: Any, busybox_image: str) -> None:
    write(folder, busybox_image, INJECTED, RESOURCES)
    (folder / ".env").write_text("TOKEN=s3cr3t\nCONF=from-env\nWORD=word\n")
    composer(folder, "up", "-d")
    ours = the_container(docker_api, folder.name)["Id"]
    assert run(docker_api, ours, ["cat", "/run/secrets/token", "/run/secrets/other", "/inline",
                                  "/etc/app/conf.txt"]) == "s3cr3ts3cr3tinline wordfrom-env"
    assert listing(docker_api, ours) == EXPECTED
    # start writes them again, with the variable's value of the moment, as v2's start does
    composer(folder, "stop", "-t", "1")
    (folder / ".env").write_text("TOKEN=rotated\nCONF=from-env\nWORD=word\n")
    composer(folder, "start")
    assert run(docker_api, ours, ["cat", "/run/secrets/token"]) == "rotated"
    # a one-off container gets them too, as with v2's run
    assert composer(folder, "run", "--rm", "-T", "app", "cat", "/run/secrets/other").stdout == "rotated"
    compose_v2(folder, "-p", f"{folder.name}-v2", "up", "-d")
    theirs = the_container(docker_api, f"{folder.name}-v2")["Id"]
    assert listing(docker_api, theirs) == EXPECTED
    # Docker keeps the files in the container's writable layer (GraphDriver UpperDir), under
    # /var/lib/docker, which is root's alone (0710): the native backend is held to the same.
    upper = Path(docker_api.inspect_container(ours)["GraphDriver"]["Data"]["UpperDir"])
    assert (upper / "run/secrets/token").read_text() == "rotated"
    assert os.stat("/var/lib/docker").st_mode & 0o007 == 0


def test_hooks_run_as_v2_runs_them(folder: Path, docker_api: Any, busybox_image: str) -> None:
    from tests.integration.native.test_compose_keys import HOOKS, PRIVILEGED_HOOK

    # This test host's dockerd cannot apply a privileged exec's capabilities ("unable to apply
    # caps: operation not permitted", docker exec --privileged too): the native test checks it.
    write(folder, busybox_image, HOOKS.replace(PRIVILEGED_HOOK, ""))
    out = folder / "out"
    out.mkdir()
    os.chmod(out, 0o777)
    composer(folder, "up", "-d")
    assert (out / "post").read_text() == "1234 /etc hello\n"
    assert not (out / "pre").exists()
    composer(folder, "stop", "-t", "1")
    assert (out / "pre").read_text() == "stopping\n"
    (out / "pre").unlink()
    (out / "post").unlink()
    composer(folder, "start")
    assert (out / "post").read_text() == "1234 /etc hello\n"
    composer(folder, "down", "-t", "1")
    assert (out / "pre").read_text() == "stopping\n"


def test_a_failing_hook_fails_with_v2s_message(folder: Path, docker_api: Any, busybox_image: str) -> None:
    write(folder, busybox_image, """
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      post_start:
        - command: ["sh", "-c", "exit 3"]
      pre_stop:
        - command: ["sh", "-c", "exit 4"]
""")
    result = composer(folder, "up", "-d", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "composer: app hook exited with status 3"
    assert the_container(docker_api, folder.name)["State"] == "running"  # v2 leaves it running too
    result = composer(folder, "stop", "-t", "1", check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == "composer: app hook exited with status 4"
    assert the_container(docker_api, folder.name)["State"] == "running"


def test_use_api_socket_as_v2_and_v2_sees_the_container_up_to_date(folder: Path, docker_api: Any,
                                                                    busybox_image: str) -> None:
    write(folder, busybox_image, """
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      use_api_socket: true
    other:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
""")
    config = folder / "docker"
    config.mkdir()
    (config / "config.json").write_text(json.dumps({"auths": {"registry.test:5000": {"auth": "dXNlcjpwdw=="}}}))
    os.environ["DOCKER_CONFIG"] = str(config)
    try:
        composer(folder, "up", "-d")
        app = docker_api.inspect_container(the_container(docker_api, folder.name)["Id"])
        other = docker_api.inspect_container(the_container(docker_api, folder.name, "other")["Id"])
        assert "/var/run/docker.sock:/var/run/docker.sock:rw" in app["HostConfig"]["Binds"]
        assert "DOCKER_CONFIG=/run/secrets/docker" in app["Config"]["Env"]
        assert not other["HostConfig"]["Binds"]  # only the service that asks, as v2 2.40
        saved = run(docker_api, app["Id"], ["cat", "/run/secrets/docker/config.json"])
        assert json.loads(saved) == {"auths": {"registry.test:5000": {"auth": "dXNlcjpwdw=="}}}
        # the engine's own socket (busybox's nc has no unix sockets: the inode tells)
        inside = run(docker_api, app["Id"], ["stat", "-c", "%F %i", "/var/run/docker.sock"]).strip()
        assert inside == f"socket {os.stat('/var/run/docker.sock').st_ino}"
        # the label is the transformed service's hash, and composer compares with the same: a
        # second up changes nothing; and it is v2's: v2 finds the container up to date too
        composer(folder, "up", "-d")
        assert the_container(docker_api, folder.name)["Id"] == app["Id"]
        compose_v2(folder, "up", "-d")
        assert the_container(docker_api, folder.name)["Id"] == app["Id"]
    finally:
        del os.environ["DOCKER_CONFIG"]


@pytest.mark.parametrize(("services", "extra", "word"), [
    ("""
    app:
      image: IMAGE
      models: [llm]
""", """
models:
  llm:
    model: ai/smollm2
""", "models"),
    ("""
    llm:
      provider:
        type: model
        options:
          model: ai/smollm2
    app:
      image: IMAGE
      depends_on: [llm]
""", "", "provider"),
], ids=["models", "provider"])
def test_models_and_providers_are_refused_in_one_line(folder: Path, docker_api: Any, busybox_image: str,
                                                       services: str, extra: str, word: str) -> None:
    write(folder, busybox_image, services, extra)
    result = composer(folder, "up", "-d", check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("composer: service ")
    assert f"{word}:" in lines[0]
    assert "Pulling" not in result.stdout + result.stderr
    assert containers(docker_api, folder.name) == []


def test_host_gateway_is_the_default_bridges_gateway(folder: Path, docker_api: Any, busybox_image: str) -> None:
    write(folder, busybox_image, """
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      extra_hosts:
        - "host.docker.internal:host-gateway"
""")
    composer(folder, "up", "-d")
    gateway = docker_api.inspect_network("bridge")["IPAM"]["Config"][0]["Gateway"]
    hosts = run(docker_api, the_container(docker_api, folder.name)["Id"], ["cat", "/etc/hosts"])
    assert f"{gateway}\thost.docker.internal" in hosts
