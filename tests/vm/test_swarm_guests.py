"""Guests for the distributed backend: two guests on one harness bridge, each with Debian's dockerd.

The Swarm backend's tests (issue 21) boot such guests with ``boot_guests(n, packages=...)``
(tests/vm/conftest.py) and run commands in each.  This test shows what they rely on: each guest's
dockerd runs, and one guest's dockerd reaches the other's over the bridge, as Swarm's manager and
worker do (cluster management on TCP 2377, node gossip on 7946).  The swarm lives inside the guests
only; the host's dockerd is never touched.  Marked vm: ``make test-vm`` runs it, ``make test`` does not.

The guests use the image the focused guest run uses (docker.io and docker-registry), so the lane keeps
two cached images, not three.
"""

from __future__ import annotations

import sys
import time

import pytest

from tests.vm.focused import PACKAGES
from tests.vm.machine import BootGuests, Guest

pytestmark = pytest.mark.vm
DOCKERD_TIMEOUT = 240.0  # dockerd's start under TCG takes 10-40 s


def say(message: str) -> None:
    """Timings go to the terminal (pytest -s shows them; no timed assertion)."""
    sys.stderr.write(f"\n{message}\n")


def start_dockerd(guest: Guest) -> None:
    guest.check("systemctl", "start", "docker.service")
    deadline = time.monotonic() + DOCKERD_TIMEOUT
    while guest.run(["docker", "info", "--format", "{{.ServerVersion}}"], timeout=120).status != 0:
        if time.monotonic() > deadline:
            guest.check("docker", "info")  # raises with its output and the journal
        time.sleep(2)


def test_two_guests_form_a_swarm_over_the_bridge(boot_guests: BootGuests) -> None:
    started = time.monotonic()
    manager, worker = boot_guests(2, packages=PACKAGES)
    say(f"two guests ready in {time.monotonic() - started:.0f} s")
    for guest in (manager, worker):
        start_dockerd(guest)
        assert guest.check("stat", "-fc", "%T", "/sys/fs/cgroup").strip() == "cgroup2fs"
    say(f"both dockerds answer after {time.monotonic() - started:.0f} s")
    # The bridge is the only way between them: the manager advertises its bridge address.
    manager.check("docker", "swarm", "init", "--advertise-addr", manager.address, "--listen-addr",
                  f"{manager.address}:2377")
    token = manager.check("docker", "swarm", "join-token", "-q", "worker").strip()
    worker.check("docker", "swarm", "join", "--token", token, "--advertise-addr", worker.address,
                 f"{manager.address}:2377", timeout=300)
    deadline = time.monotonic() + 120
    while True:
        nodes = manager.check("docker", "node", "ls", "--format", "{{.Status}} {{.ManagerStatus}}").split("\n")
        states = sorted(line.strip() for line in nodes if line.strip())
        if states == ["Ready", "Ready Leader"] or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert states == ["Ready", "Ready Leader"], states
    # The worker's view agrees: it is in the swarm, and the manager is its manager at its bridge address.
    info = worker.check("docker", "info", "--format", "{{.Swarm.LocalNodeState}} {{range .Swarm.RemoteManagers}}"
                        "{{.Addr}}{{end}}").split()
    assert info == ["active", f"{manager.address}:2377"], info
    say(f"swarm of 2 Ready nodes after {time.monotonic() - started:.0f} s")
