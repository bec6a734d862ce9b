"""Compose keys of issue 19 on real native containers, through the CLI: secrets from
``environment:``, configs from ``content:``/``environment:``, ``post_start``/``pre_stop`` hooks,
``extra_hosts: host-gateway``, and the one-line refusals (``use_api_socket``, ``models``,
``provider``). The docker side is tests/integration/docker/test_compose_keys.py.

Fixtures (the module store with the busybox test image, ``project``) come from test_lifecycle.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.integration.native.test_lifecycle import Project, env, nothing_left, one_line, project

__all__ = ["env", "project"]  # the fixtures, imported for pytest

INJECTED = """
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      secrets:
        - token
        - source: token
          target: other
          uid: "1000"
          gid: "1001"
          mode: 0400
      configs:
        - inline
        - source: fromenv
          target: /etc/app/conf.txt
          mode: 0600
"""
RESOURCES = """
secrets:
  token:
    environment: TOKEN
configs:
  inline:
    content: "inline ${WORD}"
  fromenv:
    environment: CONF
"""


# ls -ln of the files as docker compose v2 2.40 writes them (checked side by side with the real
# binary in tests/integration/docker/test_compose_keys.py)
EXPECTED = [
    ["-r--------", "1000", "1001", "/run/secrets/other"],
    ["-r--r--r--", "0", "0", "/inline"],
    ["-r--r--r--", "0", "0", "/run/secrets/token"],
    ["-rw-------", "0", "0", "/etc/app/conf.txt"],
]


def listing(project: Project, *paths: str) -> list[list[str]]:
    """``ls -ln`` of the paths in the container: mode, owner, group and name of each."""
    out = project.run("exec", "-T", "app", "ls", "-ln", *paths).stdout
    return sorted([f[0], f[2], f[3], f[-1]] for line in out.splitlines() if (f := line.split()))


def writable_layer(project: Project, container: str) -> Path:
    return Path(project.state(container, "config.json")["rootfs"]["upper"])


def test_secrets_and_configs_with_content_are_written_with_their_owner_and_mode(project: Project) -> None:
    project.write(INJECTED, RESOURCES)
    (project.folder / ".env").write_text("TOKEN=s3cr3t\nCONF=from-env\nWORD=word\n")
    project.run("up", "-d")
    read = project.run("exec", "-T", "app", "cat", "/run/secrets/token", "/run/secrets/other", "/inline",
                       "/etc/app/conf.txt").stdout
    assert read == "s3cr3ts3cr3tinline wordfrom-env"
    # as docker compose v2 writes them (tests/integration/docker/test_compose_keys.py checks the same listing)
    assert listing(project, "/run/secrets/token", "/run/secrets/other", "/inline", "/etc/app/conf.txt") == EXPECTED
    # On the host the content lives in the container's writable layer, as with Docker (whose
    # /var/lib/docker/overlay2/<id>/diff is under /var/lib/docker, 0710 root): here under the
    # container's data directory, 0700 root, so no other user of the host and no other
    # container (each has its own writable layer) can read it.
    container = f"{project.name}-app-1"
    upper = writable_layer(project, container)
    assert (upper / "run/secrets/token").read_text() == "s3cr3t"
    assert stat.S_IMODE(upper.parent.stat().st_mode) == 0o700
    assert upper.parent.stat().st_uid == 0
    # the value is in no file of the project's state that another container or user reads
    for path in project.run_dir().rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes(), path
    # start writes them again, with the variable's value of the moment, as v2's start does
    project.run("stop", "-t", "1")
    (project.folder / ".env").write_text("TOKEN=rotated\nCONF=from-env\nWORD=word\n")
    project.run("start")
    assert project.run("exec", "-T", "app", "cat", "/run/secrets/token").stdout == "rotated"
    # a one-off container gets them too, as with v2's run
    assert project.run("run", "--rm", "-T", "app", "cat", "/run/secrets/other").stdout == "rotated"
    project.run("down", "-t", "1")
    nothing_left(project)


def test_another_container_does_not_see_the_secret(project: Project) -> None:
    project.write(INJECTED + """
    other:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
""", RESOURCES)
    (project.folder / ".env").write_text("TOKEN=s3cr3t\nCONF=c\nWORD=w\n")
    project.run("up", "-d")
    result = project.run("exec", "-T", "other", "sh", "-c", "ls /run/secrets; grep -rs s3cr3t / --exclude-dir=proc "
                         "--exclude-dir=sys", check=False)
    assert "token" not in result.stdout
    assert "s3cr3t" not in result.stdout
    project.run("down", "-t", "1")


def test_a_missing_variable_is_one_line_and_creates_nothing(project: Project) -> None:
    project.write(INJECTED, RESOURCES)
    (project.folder / ".env").write_text("CONF=c\nWORD=w\n")
    result = project.run("up", "-d", check=False)
    assert result.returncode != 0
    assert one_line(result) == (f'composer: environment variable "TOKEN" required by secret "{project.name}_token" '
                                "is not set")
    nothing_left(project)


PRIVILEGED_HOOK = """        - command: ["sh", "-c", "grep CapEff /proc/self/status > /out/caps"]
          privileged: true
"""
HOOKS = """
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      volumes: ["./out:/out"]
      post_start:
        - command: ["sh", "-c", "echo \\"$$(id -u) $$(pwd) $$GREETING\\" > /out/post"]
          user: "1234"
          working_dir: /etc
          environment:
            GREETING: hello
""" + PRIVILEGED_HOOK + """\
      pre_stop:
        - command: ["sh", "-c", "echo stopping > /out/pre"]
"""


def privileged_capabilities(path: Path) -> bool:
    """The hook ran with every capability (a privileged exec), not the default set (0xa80425fb)."""
    effective = int(path.read_text().split()[1], 16)
    return effective & 0xa80425fb == 0xa80425fb and effective & (1 << 21) != 0  # CAP_SYS_ADMIN as well


def test_post_start_runs_after_start_and_pre_stop_before_stop(project: Project) -> None:
    project.write(HOOKS)
    out = project.folder / "out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    project.run("up", "-d")
    assert (out / "post").read_text() == "1234 /etc hello\n"
    assert privileged_capabilities(out / "caps")
    assert not (out / "pre").exists()
    project.run("stop", "-t", "1")
    assert (out / "pre").read_text() == "stopping\n"
    (out / "post").unlink()
    project.run("start")
    assert (out / "post").read_text() == "1234 /etc hello\n"
    (out / "post").unlink()
    (out / "pre").unlink()
    project.run("restart", "-t", "1")  # as v2's restart: pre_stop, restart, post_start
    assert (out / "pre").read_text() == "stopping\n"
    assert (out / "post").read_text() == "1234 /etc hello\n"
    (out / "pre").unlink()
    project.run("down", "-t", "1")
    assert (out / "pre").read_text() == "stopping\n"
    nothing_left(project)


def test_a_failing_post_start_fails_the_start_with_v2s_message(project: Project) -> None:
    project.write("""
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      post_start:
        - command: ["sh", "-c", "exit 3"]
      pre_stop:
        - command: ["sh", "-c", "exit 4"]
""")
    result = project.run("up", "-d", check=False)
    assert result.returncode == 1
    assert one_line(result) == "composer: app hook exited with status 3"
    assert "Up" in project.ps()  # v2 leaves it running too
    result = project.run("stop", "-t", "1", check=False)
    assert result.returncode == 1
    assert one_line(result) == "composer: app hook exited with status 4"
    assert "Up" in project.ps()  # a failed pre_stop does not stop it, as in v2
    project.write("""
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
""")
    project.run("down", "-t", "1")
    nothing_left(project)


def refusal(project: Project, services: str, extra: str = "") -> str:
    project.write(services, extra)
    result = project.run("up", "-d", check=False)
    assert result.returncode != 0
    message = one_line(result)
    assert "pull" not in message.lower()
    nothing_left(project)
    return message


def test_use_api_socket_is_refused_in_one_line(project: Project) -> None:
    message = refusal(project, """
    app:
      image: IMAGE
      use_api_socket: true
""")
    assert "use_api_socket" in message


@pytest.mark.parametrize("compose", [
    ("""
    app:
      image: IMAGE
      models: [llm]
""", """
models:
  llm:
    model: ai/smollm2
"""),
    ("""
    app:
      image: IMAGE
      models:
        llm:
          endpoint_var: LLM_URL
""", """
models:
  llm:
    model: ai/smollm2
"""),
], ids=["short-syntax", "long-syntax"])
def test_models_are_refused_in_one_line(project: Project, compose: tuple[str, str]) -> None:
    assert "models" in refusal(project, *compose)


def test_a_provider_service_is_refused_in_one_line(project: Project) -> None:
    message = refusal(project, """
    llm:
      provider:
        type: model
        options:
          model: ai/smollm2
    app:
      image: IMAGE
      depends_on: [llm]
""")
    assert "provider" in message
    assert "llm" in message


def test_host_gateway_resolves_to_the_gateway_of_the_first_network(project: Project) -> None:
    project.write("""
    app:
      image: IMAGE
      command: ["sleep", "300"]
      init: true
      extra_hosts:
        - "host.docker.internal:host-gateway"
""")
    project.run("up", "-d")
    hosts = project.run("exec", "-T", "app", "cat", "/etc/hosts").stdout
    route = project.run("exec", "-T", "app", "ip", "route").stdout
    gateway = next(line.split()[2] for line in route.splitlines() if line.startswith("default"))
    assert f"{gateway}\thost.docker.internal" in hosts
    # the gateway is the host's end of the project bridge: the host answers there
    assert subprocess.run(["ip", "-4", "addr", "show"], capture_output=True, text=True).stdout.count(
        f"inet {gateway}/") == 1
    project.run("down", "-t", "1")
    nothing_left(project)


@pytest.mark.parametrize("mode", ["host", "none"])
def test_host_gateway_without_a_network_is_refused_in_one_line(project: Project, mode: str) -> None:
    message = refusal(project, f"""
    app:
      image: IMAGE
      network_mode: {mode}
      extra_hosts: ["host.docker.internal:host-gateway"]
""")
    assert message.startswith(f"composer: service app: extra_hosts: host-gateway needs a network (it is the gateway "
                              f"of the container's first network), not network_mode: {mode}")
