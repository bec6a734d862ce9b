"""The pytest plugin, in inner pytest runs (subprocesses) against a real Docker Engine.

Each test writes a suite beside a stack folder with a unique name; every project whose name
starts with it is removed in a finalizer, whatever the inner runs left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import remove_project
from tests.support.stacks import projects_named, write_stack

CONFTEST = """
import json, os, pytest
from composer.readiness import healthy, http_status, log_line, tcp_port

@pytest.fixture(scope="session")
def stack(composer_project):
    return composer_project("{folder}", ready=[
        healthy("web"), tcp_port("web", 8080), http_status("web", 8080, "/", status=200),
        log_line("web", "server starting"), lambda project: project.exec("web", "true").ok,
    ], timeout=60)

def record(stack, name):
    web = {{c.service: c for c in stack.ps()}}["web"]
    with open(os.path.join("{out}", name), "w") as file:
        json.dump({{"project": stack.name, "container": web.container_id,
                   "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}}, file)
"""


class Suite:
    def __init__(self, root: Path, prefix: str, image: str) -> None:
        self.root, self.prefix = root, prefix
        self.folder = root / prefix
        self.out = root / "out"
        self.out.mkdir()
        write_stack(self.folder, image)
        (root / "conftest.py").write_text(CONFTEST.format(folder=self.folder, out=self.out))

    def tests(self, text: str) -> None:
        (self.root / "test_inner.py").write_text("import http.client, time\nfrom conftest import record\n" + text)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rA", *args]

    def env(self) -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COMPOSE_"))}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), cwd=self.root, env=self.env(), capture_output=True, text=True,
                              timeout=300)

    def records(self) -> dict[str, dict[str, str]]:
        return {path.name: json.loads(path.read_text()) for path in self.out.iterdir()}


@pytest.fixture
def suite(tmp_path: Path, docker_api: Any, busybox_image: str) -> Iterator[Suite]:
    prefix = f"plug{uuid.uuid4().hex[:8]}"
    yield Suite(tmp_path, prefix, busybox_image)
    for name in projects_named(docker_api, prefix):
        remove_project(docker_api, name)


def _assert_passed(result: subprocess.CompletedProcess[str], count: int) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{count} passed" in result.stdout


def test_readiness_conditions_hold_before_the_tests_and_the_stack_goes_down(suite: Suite, docker_api: Any) -> None:
    suite.tests("""
def test_served(stack):
    record(stack, "served")
    connection = http.client.HTTPConnection(*stack.port("web", 8080).address, timeout=5)
    connection.request("GET", "/")
    assert connection.getresponse().read() == b"hello\\n"
""")
    _assert_passed(suite.run(), 1)
    project = suite.records()["served"]["project"]
    assert project.startswith(f"{suite.prefix}-")
    assert project.endswith("-main-1")
    assert projects_named(docker_api, suite.prefix) == set()


def test_a_failed_test_reports_the_services_logs(suite: Suite) -> None:
    suite.tests("def test_fails(stack):\n    assert False, 'expected'\n")
    result = suite.run()
    assert result.returncode == 1
    assert "composer logs: " + suite.prefix in result.stdout
    assert "server starting" in result.stdout


def test_a_readiness_timeout_fails_the_setup_and_cleans_up(suite: Suite, docker_api: Any) -> None:
    suite.tests(f"""
from composer.readiness import log_line

def test_never(composer_project):
    composer_project("{suite.folder}", scope="function", ready=[log_line("web", "never printed")], timeout=2)
""")
    result = suite.run()
    assert result.returncode == 1
    assert "not ready after 2s: log_line(web: 'never printed')" in result.stdout
    assert projects_named(docker_api, suite.prefix) == set()


def test_two_xdist_workers_get_two_isolated_stacks_that_both_clean_up(suite: Suite, docker_api: Any) -> None:
    suite.tests("".join(f"\ndef test_{n}(stack):\n    record(stack, 'r{n}')\n    time.sleep(1)\n" for n in range(4)))
    _assert_passed(suite.run("-n", "2"), 4)
    records = suite.records().values()
    assert {r["worker"] for r in records} == {"gw0", "gw1"}
    by_worker = {r["worker"]: (r["project"], r["container"]) for r in records}
    assert len(set(by_worker.values())) == 2
    assert all(project.endswith(f"-{worker}-1") for worker, (project, _) in by_worker.items())
    assert projects_named(docker_api, suite.prefix) == set()


def test_a_run_killed_with_sigkill_leaves_a_stack_the_next_run_removes(suite: Suite, docker_api: Any) -> None:
    suite.tests("def test_hangs(stack):\n    record(stack, 'hung')\n    time.sleep(300)\n")
    inner = subprocess.Popen(suite.command(), cwd=suite.root, env=suite.env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (suite.out / "hung").exists():
            assert inner.poll() is None, "the inner run ended early"
            assert time.monotonic() < deadline, "the inner run never reached its test"
            time.sleep(0.2)
    finally:
        os.kill(inner.pid, signal.SIGKILL)
        inner.wait()
    left = suite.records()["hung"]["project"]
    assert projects_named(docker_api, suite.prefix) == {left}
    suite.tests("def test_next(stack):\n    record(stack, 'next')\n")
    _assert_passed(suite.run(), 1)
    assert suite.records()["next"]["project"] != left
    assert projects_named(docker_api, suite.prefix) == set()


def test_reuse_keeps_the_stack_and_a_changed_file_recreates_it(suite: Suite, docker_api: Any) -> None:
    suite.tests("def test_reused(stack):\n    record(stack, 'reused')\n")
    _assert_passed(suite.run("--composer-reuse"), 1)
    first = suite.records()["reused"]
    assert projects_named(docker_api, suite.prefix) == {first["project"]}
    _assert_passed(suite.run("--composer-reuse"), 1)
    second = suite.records()["reused"]
    assert second == first
    write_stack(suite.folder, docker_api.inspect_container(first["container"])["Config"]["Image"], marker=" again")
    result = suite.run("--composer-reuse")
    _assert_passed(result, 1)
    third = suite.records()["reused"]
    assert third["project"] == first["project"]
    assert third["container"] != first["container"]
    assert f"left stack {first['project']} up" in result.stdout


def test_keep_leaves_the_stack_up(suite: Suite, docker_api: Any) -> None:
    suite.tests("def test_kept(stack):\n    record(stack, 'kept')\n")
    result = suite.run("--composer-keep")
    _assert_passed(result, 1)
    kept = suite.records()["kept"]["project"]
    assert projects_named(docker_api, suite.prefix) == {kept}
    assert f"composer down -v -p {kept}" in result.stdout
