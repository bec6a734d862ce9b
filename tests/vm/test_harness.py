"""The guest lane itself: real Debian guests under qemu (tests/vm/machine.py, scripts/vm-run).

Two guests boot once for the module (with a read-write share); each test runs commands in them.  The
vm-run tests boot their own guest and check that nothing is left on the host afterwards: network
namespaces, qemu processes, temporary folders (the taps and the bridge live in the namespace).
Needs root (namespace, taps) and qemu-system-x86; under CI=true their absence fails instead of skipping.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.vm import network, prerequisites
from tests.vm.machine import REPOSITORY, Guest, Options, guests

pytestmark = pytest.mark.vm
VM_RUN = REPOSITORY / "scripts" / "vm-run"


@pytest.fixture(scope="module", autouse=True)
def _needs_root_and_qemu() -> None:
    prerequisites.require()


@pytest.fixture(scope="module")
def share(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("vm-share")


@pytest.fixture(scope="module")
def pair(share: Path) -> Iterator[list[Guest]]:
    with guests(Options(guests=2, shares=(share,))) as booted:
        yield booted


def must(guest: Guest, *argv: str) -> str:
    result = guest.run(argv, timeout=300)
    assert result.status == 0, f"{argv} exited {result.status}:\n{result.output}\n{result.journal}"
    return result.output


def test_guest_has_pure_cgroup_v2_with_the_controllers(pair: list[Guest]) -> None:
    assert must(pair[0], "stat", "-fc", "%T", "/sys/fs/cgroup").strip() == "cgroup2fs"
    controllers = must(pair[0], "cat", "/sys/fs/cgroup/cgroup.controllers").split()
    assert {"memory", "pids", "cpu", "io", "cpuset"} <= set(controllers)
    types = [line.split()[2] for line in must(pair[0], "cat", "/proc/mounts").splitlines()]
    assert "cgroup2" in types
    assert "cgroup" not in types  # no v1 hierarchy: not hybrid, unlike this host


def test_command_exit_status_and_output_come_back(pair: list[Guest]) -> None:
    result = pair[0].run(["sh", "-c", "echo out; echo err >&2; exit 7"], timeout=120)
    assert result.status == 7
    assert result.output.split() == ["out", "err"]
    assert "systemd" in result.journal  # a failure brings the journal's tail


def test_repository_is_read_only_and_share_read_write(pair: list[Guest], share: Path) -> None:
    probe = REPOSITORY / f".vm-write-probe-{os.getpid()}"
    result = pair[0].run(["touch", str(probe)], timeout=120)
    assert result.status != 0
    assert "Read-only file system" in result.output
    assert not probe.exists()
    must(pair[0], "sh", "-c", f"echo from-guest > {share}/written")
    assert (share / "written").read_text() == "from-guest\n"
    assert must(pair[1], "cat", str(share / "written")) == "from-guest\n"


def test_composer_on_path_runs_the_repository(pair: list[Guest]) -> None:
    located = must(pair[0], "python3", "-c", "import composer; print(composer.__file__)").strip()
    assert located == str(REPOSITORY / "composer" / "__init__.py")
    assert "usage" in must(pair[0], "composer", "--help").lower()


def test_guests_reach_each_other_on_the_harness_bridge(pair: list[Guest]) -> None:
    must(pair[0], "ping", "-c", "2", "-W", "10", pair[1].address)
    must(pair[1], "ping", "-c", "2", "-W", "10", "guest0")
    # The bridge is the guests' only network besides qemu's restricted one: the host has no route to it.
    host_routes = subprocess.run(["ip", "route", "get", pair[0].address], capture_output=True, text=True,
                                 check=False).stdout
    assert "dev br0" not in host_routes


@pytest.fixture
def host_registry() -> Iterator[None]:
    """Something on the host's 127.0.0.1:5000 answering ``GET /v2/``: the local registry when it runs
    (make demo's), else a stand-in for the test."""
    try:
        server = http.server.HTTPServer(("127.0.0.1", 5000), RegistryStandIn)
    except OSError:  # taken: the registry itself, presumably; the test then reads its answer
        yield
        return
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class RegistryStandIn(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"{}"
        self.send_response(200 if self.path == "/v2/" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_guest_reaches_the_hosts_registry_on_its_own_loopback(pair: list[Guest], host_registry: None) -> None:
    for _ in range(2):  # a forward per connection, not one for qemu's lifetime
        headers = must(pair[0], "curl", "-sS", "-m", "30", "-D-", "-o/dev/null", "http://127.0.0.1:5000/v2/")
        assert "registry/2.0" in headers
    assert "127.0.0.1:5000" in must(pair[0], "cat", "/etc/composer/registries.json")


def test_guest_reaches_nothing_but_the_registry_forward(pair: list[Guest]) -> None:
    # restrict=on: qemu's user network lets nothing out; only 10.0.2.100:5000 leads to the host's loopback.
    result = pair[0].run(["curl", "-sS", "-m", "10", "http://10.0.2.2:22/"], timeout=120)
    assert result.status != 0


def leftovers() -> set[str]:
    """What a run of the lane could leave on the host: its namespaces, qemu processes, temporary folders."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.split()
    found = {f"netns {n}" for n in names if n.startswith(network.NETNS_PREFIX)}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and cmdline[0].endswith(b"qemu-system-x86_64") and b"composer-vm-" in b" ".join(cmdline):
            found.add(f"qemu {pid}")
    found |= {f"temp {p}" for p in Path(tempfile.gettempdir()).glob("composer-vm-*")}
    return found


@pytest.mark.parametrize(("command", "status"), [("echo done", 0), ("echo failing && exit 3", 3)])
def test_vm_run_returns_the_status_and_leaves_nothing_behind(command: str, status: int) -> None:
    before = leftovers()
    done = subprocess.run([str(VM_RUN), "--", "sh", "-c", command], capture_output=True, text=True,
                          check=False, env={"COMPOSER_VM_PYTHON": sys.executable, **os.environ})
    assert done.returncode == status, done.stderr
    assert done.stdout.split()[0] == command.split()[1]
    assert "vm: accelerator " in done.stderr
    if status:
        assert "the guest's journal (last 100 lines)" in done.stderr
    assert leftovers() - before == set()
