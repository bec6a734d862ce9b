"""What a container could reach of the host through the runtime's own plumbing (issue 15):
sysctl keys turned into paths (finding 5), descriptors inherited by the container's processes
(finding 8, CVE-2024-21626's class) and the host's python seen from inside while a helper enters
(finding 13, CVE-2019-5736's class). Real containers, asserted from inside with a static probe
(leak_probe.c, built here with the system compiler and bind-mounted read-only at /probe).

The fixtures are test_runtime's (module store, tmp run root, own cgroup parent, residue check at
the end) and, for the healthcheck, test_lifecycle's (the CLI and its project supervisor).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from composer.errors import BackendError, UnsupportedFeatureError
from composer.spec.models.service import ServiceVolume
from tests.integration.native import test_lifecycle, test_runtime
from tests.integration.native.test_runtime import Box

# the fixtures of test_runtime and test_lifecycle, used here too (module scoped ones get their own here)
session_root = test_runtime.session_root
image = test_runtime.image
runtime = test_runtime.runtime
box = test_runtime.box
env = test_lifecycle.env
project = test_lifecycle.project

PROBE_SOURCE = Path(__file__).with_name("leak_probe.c")
CLEAN = "fds=0,1,2"


@pytest.fixture(scope="module")
def probe_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the static probe (mounted at /probe)."""
    if shutil.which("gcc") is None:
        pytest.fail("gcc is needed to build the leak probe")
    folder = tmp_path_factory.mktemp("leak-probe")
    subprocess.run(["gcc", "-static", "-O1", "-o", str(folder / "probe"), str(PROBE_SOURCE)], check=True)
    return folder


def probe_mount(probe_dir: Path) -> ServiceVolume:
    return ServiceVolume(type="bind", source=str(probe_dir), target="/probe", read_only=True)


def assert_clean(output: str) -> None:
    """The probe's ``fds`` report: the standard streams only, none of them a directory."""
    assert CLEAN in output.splitlines(), output
    assert "host-dirs=0" in output.splitlines(), output


# --- finding 5: sysctl keys ----------------------------------------------------------------------


@pytest.mark.parametrize(("key", "settings", "reason"), [
    ("net./etc/crontab", {}, "not a valid key"),  # an absolute path after the prefix: the host's file
    ("net.../x", {}, "not a valid key"),  # empty components, then a path
    ("net.ipv4..ip_forward", {}, "not a valid key"),
    ("kernel.foo", {}, "not namespaced"),
    ("vm.swappiness", {}, "not namespaced"),
    ("net.ipv4.ip_forward", {"network_mode": "host"}, "not namespaced"),
    ("kernel.shmmni", {"ipc": "host"}, "not namespaced"),
    ("kernel.hostname", {}, "hostname key"),
])
def test_sysctl_keys_outside_the_containers_namespaces_are_refused(box: Box, key: str, settings: dict[str, Any],
                                                                   reason: str) -> None:
    # Docker (runc's validator) refuses each of these too: "sysctl ... is not in a separate kernel namespace",
    # "not allowed in the hosts network namespace", "conflicts with the OCI hostname field".
    with pytest.raises(UnsupportedFeatureError) as caught:
        box.create("true", sysctls={key: "1"}, **settings)
    message = str(caught.value)
    assert "\n" not in message
    assert caught.value.hint is None
    assert message.startswith("service c: sysctl ")
    assert repr(key) in message
    assert reason in message


def test_sysctls_are_written_inside_the_container_and_nowhere_else(box: Box, tmp_path: Path) -> None:
    wanted = {"net.ipv4.ip_forward": "1", "kernel.domainname": "probe.test", "kernel.msgmax": "4096"}
    code, out = box.run("cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname /proc/sys/kernel/msgmax",
                        sysctls=wanted)
    assert (code, out.split()) == (0, ["1", "probe.test", "4096"])
    assert Path("/proc/sys/kernel/domainname").read_text().strip() != "probe.test"  # the host's is untouched

    # A key that got past the validation (a configuration written by hand, an older composer) is
    # still written under the container's /proc/sys or not at all: PID 1 never builds a path from it.
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    for key in (f"net.{victim}", "net." + "../" * 12 + str(victim).lstrip("/"), "net.ipv4.conf.all"):
        name = box.create("true", sysctls={"net.ipv4.ip_forward": "1"})
        config_path = box.rt.run_dir(box.project, name) / "config.json"
        config = json.loads(config_path.read_text())
        config["sysctls"] = {key: "pwned"}
        config_path.write_text(json.dumps(config))
        with pytest.raises(BackendError, match="sysctl") as caught:
            box.rt.start(box.project, name)
        assert "\n" not in str(caught.value)
        assert victim.read_text() == "untouched\n"
        box.rt.remove(box.project, name, force=True)
