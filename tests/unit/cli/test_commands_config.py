"""``composer config`` through the real command line (``python -m composer``)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from tests.support.host_state import cli_environment

COMPOSE = """\
    name: demo
    services:
      web:
        image: nginx:${TAG:-1.25}
        build: ./web
        depends_on: [db]
        networks: [front]
        volumes: [data:/data]
      db:
        image: postgres
        networks: [back]
      tool:
        image: tool
        networks: [side]
        profiles: [storage]
      debug:
        image: busybox
        profiles: [debug]
      builder:
        build: ./b
    networks:
      front: {}
      back: {}
      side: {}
      unused: {}
    volumes:
      data: {}
      spare: {}
    """


def run(cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:
    environment = cli_environment(env)
    return subprocess.run(
        [sys.executable, "-m", "composer", *args], capture_output=True, text=True, cwd=cwd, input=stdin,
        env=environment, timeout=60, check=False,
    )


def ok(cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> str:
    result = run(cwd, *args, stdin=stdin, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "compose.yaml").write_text(textwrap.dedent(COMPOSE), encoding="utf-8")
    return tmp_path


def as_json(cwd: Path, *args: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(cwd, "config", "--format", "json", *args))
    return data


def test_json_and_yaml_agree(project: Path) -> None:
    from_json = json.loads(ok(project, "--profile", "storage", "config", "--format", "json"))
    from_yaml = YAML(typ="safe").load(io.StringIO(ok(project, "--profile", "storage", "config", "--format", "yaml")))
    # v2's YAML leaves out what its JSON prints empty (Go's yaml omitempty; tests/unit/spec/test_render.py
    # compares both with the v2 binary)
    for service in from_json["services"].values():
        for key in ("command", "entrypoint"):
            if service.get(key, "") is None:
                del service[key]
    for network in from_json.get("networks", {}).values():
        if network.get("ipam") == {}:
            del network["ipam"]
    assert from_json == from_yaml
    assert from_json["name"] == "demo"
    assert from_json["services"]["web"]["image"] == "nginx:1.25"
    assert ok(project, "--profile", "storage", "config") == ok(project, "--profile", "storage", "config",
                                                                "--format", "yaml")


def test_profile_flag_and_listing(project: Path) -> None:
    assert ok(project, "config", "--services") == "web\ndb\nbuilder\n"
    assert ok(project, "--profile", "storage", "config", "--services") == "web\ndb\ntool\nbuilder\n"
    assert ok(project, "config", "--services", env={"COMPOSE_PROFILES": "debug"}) == "web\ndb\ndebug\nbuilder\n"
    assert ok(project, "config", "--profiles") == "debug\nstorage\n"


def test_volumes_and_networks_listing(project: Path) -> None:
    assert ok(project, "config", "--volumes") == "data\n"
    # builder has no networks: it joins the default one
    assert sorted(ok(project, "config", "--networks").split()) == ["back", "default", "front"]
    assert sorted(ok(project, "--profile", "*", "config", "--networks").split()) == ["back", "default", "front", "side"]


def test_images_listing(project: Path) -> None:
    assert ok(project, "config", "--images") == "nginx:1.25\npostgres\ndemo-builder\n"


def test_hash_is_stable_and_follows_the_image(project: Path) -> None:
    first = ok(project, "config", "--hash", "web")
    assert first == ok(project, "config", "--hash", "web")
    name, digest = first.split()
    assert name == "web"
    assert len(digest) == 64
    changed = ok(project, "config", "--hash", "web", env={"TAG": "1.26"})
    assert changed.split()[1] != digest
    everything = ok(project, "config", "--hash", "*")
    assert [line.split()[0] for line in everything.splitlines()] == ["web", "db", "builder"]
    assert first in everything


def test_hash_of_unknown_service(project: Path) -> None:
    result = run(project, "config", "--hash", "ghost")
    assert result.returncode == 1
    assert "no such service: ghost" in result.stderr


def test_no_interpolate_keeps_variables(project: Path) -> None:
    assert as_json(project, "--no-interpolate")["services"]["web"]["image"] == "nginx:${TAG:-1.25}"
    assert as_json(project)["services"]["web"]["image"] == "nginx:1.25"


def test_no_path_resolution_keeps_relative_paths(project: Path) -> None:
    assert as_json(project, "--no-path-resolution")["services"]["web"]["build"]["context"] == "./web"
    assert as_json(project)["services"]["web"]["build"]["context"] == str(project / "web")


def test_no_consistency_accepts_an_undefined_network(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    networks: [ghost]\n",
                                           encoding="utf-8")
    assert run(tmp_path, "config").returncode == 1
    assert as_json(tmp_path, "--no-consistency")["services"]["web"]["networks"] == {"ghost": None}


def test_output_file(project: Path) -> None:
    target = project / "out.json"
    assert ok(project, "config", "--format", "json", "-o", str(target)) == ""
    assert json.loads(target.read_text(encoding="utf-8")) == as_json(project)


def test_quiet_prints_nothing(project: Path) -> None:
    result = run(project, "config", "-q")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_quiet_still_validates(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    imagee: x\n", encoding="utf-8")
    result = run(tmp_path, "config", "-q")
    assert result.returncode == 1
    assert "imagee" in result.stderr


def test_service_arguments_keep_dependencies(project: Path) -> None:
    tree = as_json(project, "web")
    assert sorted(tree["services"]) == ["db", "web"]
    assert sorted(tree["networks"]) == ["back", "front"]


def test_stdin_file(tmp_path: Path) -> None:
    text = "services:\n  piped:\n    image: alpine\n    build: ./ctx\n"
    output = ok(tmp_path, "-f", "-", "config", "--format", "json", stdin=text)
    tree = json.loads(output)
    assert list(tree["services"]) == ["piped"]
    assert tree["services"]["piped"]["build"]["context"] == str(tmp_path / "ctx")


def test_dollar_escaped_in_output(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: x\n    command: echo $$HOME\n",
                                           encoding="utf-8")
    assert as_json(tmp_path)["services"]["web"]["command"] == ["echo", "$$HOME"]


def test_config_imports_no_engine_module(project: Path) -> None:
    code = (
        "import sys\n"
        "sys.argv = ['composer', 'config', '-q']\n"
        "from composer.cli import main\n"
        "rc = main()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('docker', 'pyroute2'))\n"
        "print(rc, loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=project, timeout=60, check=False,
        env=cli_environment(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0 []"


VARIABLES = """\
services:
  a:
    image: "${IMG:-busybox}"
    environment:
      - X=${X:?need x}
      - Y=${Y-yy}
      - Z=$Z
      - W=${W:+alt}
      - LITERAL=$$NOT
      - NESTED=${N1:-${N2:-deep}}
"""


def test_config_variables_and_environment(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(VARIABLES)
    (tmp_path / ".env").write_text("FROM_DOTENV=1\nX=from-dotenv\n")
    table = ok(tmp_path, "config", "--variables", env={"X": "1"}).splitlines()
    assert table == [
        "NAME                REQUIRED            DEFAULT VALUE       ALTERNATE VALUE",
        "IMG                 false               busybox",
        "N1                  false               ${N2:-deep}",
        "N2                  false               deep",
        "W                   false                                   alt",
        "X                   true",
        "Y                   false               yy",
        "Z                   false"]
    found = json.loads(ok(tmp_path, "config", "--variables", "--format", "json", env={"X": "1"}))
    assert found["X"] == {"Name": "X", "DefaultValue": "", "PresenceValue": "", "Required": True}
    assert found["W"]["PresenceValue"] == "alt"
    environment = ok(tmp_path, "config", "--environment", env={"X": "1"}).splitlines()
    assert "X=1" in environment  # the process environment wins over .env
    assert "FROM_DOTENV=1" in environment
    assert f"COMPOSE_PROJECT_NAME={tmp_path.name.lower()}" in environment
    assert environment == sorted(environment)


def test_config_and_ps_of_nothing_leave_nothing_on_the_host(tmp_path: Path) -> None:
    """A command that runs no container makes no cgroup (not even the parent) and no run record,
    through a warm command server too (its warm-up starts the native forkserver, whose spare
    monitor is made only once a start asks for one); ``config`` does not touch the run root."""
    import os
    import shutil
    import tempfile
    import time
    import uuid

    from composer.cli.server import stop_servers
    from tests.support.host_state import cgroup_folders, remove_private

    (tmp_path / "compose.yaml").write_text("services:\n  web:\n    image: busybox\n")
    servers = tempfile.mkdtemp(prefix="composer-servers-")  # short: the socket's path has a limit
    private = {"COMPOSER_RUN_ROOT": str(tmp_path / "run"),
               "COMPOSER_CGROUP_PARENT": f"composer-t-{uuid.uuid4().hex[:8]}"}  # the server's spares' parent
    env = {**private, "COMPOSER_ROOT": str(tmp_path / "store"), "COMPOSER_SERVER_DIR": servers}
    try:
        for _ in range(3):  # the first starts the server (it warms up meanwhile), the others go through it
            ok(tmp_path, "config", "--services", env=env)
            deadline = time.monotonic() + 20
            while not list(Path(servers).glob("*.sock")) and time.monotonic() < deadline:
                time.sleep(0.1)
        assert list(Path(servers).glob("*.sock")), "the command server did not start"
        time.sleep(0.5)  # what a warm-up would make, it makes at once
        assert not (tmp_path / "run").exists()
        assert not (tmp_path / "store").exists()
        assert cgroup_folders(private["COMPOSER_CGROUP_PARENT"]) == []
        if os.geteuid() == 0:  # the native backend's listing (it needs root)
            ok(tmp_path, "--backend", "native", "ps", env=env)
            assert not (tmp_path / "store" / "runs").exists()  # no run record before a container is made
            assert cgroup_folders(private["COMPOSER_CGROUP_PARENT"]) == []
    finally:
        stop_servers(servers)
        shutil.rmtree(servers, ignore_errors=True)
        remove_private(private)
