"""Real native builds with the ``build:`` keys that shape every RUN container (extra_hosts with
host-gateway, shm_size, ulimits) and the named contexts of ``additional_contexts`` (a folder,
``docker-image://``, ``service:``) wherever BuildKit takes a named context: FROM, COPY --from and
RUN --mount from=. The effects are read back from files the RUN steps wrote.

Docker's behaviour, side by side with ``DOCKER_BUILDKIT=1 /usr/bin/docker build`` on the engine
here (BuildKit 0.8, its Dockerfile frontend 1.2): ``--add-host`` lines are appended to the RUN's
/etc/hosts (host-gateway as the host's address), compared below. That BuildKit ignores
``--shm-size`` and ``--ulimit`` (its frontend predates both; BuildKit 0.10 mounts a tmpfs of the
size on /dev/shm, 0.9 sets the ulimits), so their documented result is asserted instead, and
Debian's CLI has no ``--build-context`` (a buildx flag; named contexts need frontend 1.4), so
the named contexts are checked against BuildKit's documented rules.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from secrets import token_hex
from typing import Any

import pytest

from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image.store import ImageStore
from composer.errors import ImageBuildError, UnsupportedFeatureError  # noqa: F401 - the contexts' tests
from tests.integration.native.test_build import _the_cgroup_parent_goes, build, context, read
from tests.integration.registry import LocalRegistry

__all__ = ["_the_cgroup_parent_goes", "context"]  # test_build's fixtures: the context, the cgroup removed

DOCKER = "/usr/bin/docker"  # Debian's CLI: DOCKER_BUILDKIT=1 drives the engine's BuildKit without buildx
PROBES = """\
FROM {base}
RUN cat /etc/hosts > /hosts; df -k /dev/shm | tail -1 | awk '{{print $2}}' > /shm; \\
    ulimit -Sn > /nofile; ulimit -Hn >> /nofile
"""


def _extra(hosts: str) -> list[str]:
    """The lines of an /etc/hosts that name the test's hosts."""
    return [" ".join(line.split()) for line in hosts.splitlines() if line.split()[-1:] in (["alpha"], ["gw"])]


def test_extra_hosts_shm_size_and_ulimits_reach_every_run(store: ImageStore, context: Path,
                                                          local_registry: LocalRegistry) -> None:
    rootfs = build(store, context, PROBES.format(base=local_registry.busybox),
                   extra_hosts=["alpha=10.1.2.3", "gw=host-gateway"], shm_size="96m",
                   ulimits={"nofile": {"soft": 1024, "hard": 2048}})
    hosts = _extra(read(rootfs, "/hosts"))
    assert hosts[0] == "10.1.2.3 alpha"
    gateway = hosts[1].split()[0]
    # host-gateway: as a service's, the gateway of the RUN's (the build's own) network: the host
    assert gateway != "host-gateway"
    assert gateway.count(".") == 3, hosts
    assert read(rootfs, "/shm") == f"{96 * 1024}\n"  # shm_size: the size of the RUN's /dev/shm
    assert read(rootfs, "/nofile") == "1024\n2048\n"  # ulimits: soft and hard
    default = build(store, context, PROBES.format(base=local_registry.busybox), image="demo-plain")
    assert _extra(read(default, "/hosts")) == []
    assert read(default, "/shm") == f"{64 * 1024}\n"  # Docker's 64 MiB without shm_size


def test_extra_hosts_cache_on_names_not_addresses(store: ImageStore, context: Path,
                                                  local_registry: LocalRegistry) -> None:
    """As BuildKit's ExecOp cache map: a host's address is not in the key, its name is; the
    shm size and the ulimits are."""
    dockerfile = (f"FROM {local_registry.busybox}\n"
                  "RUN cat /proc/sys/kernel/random/uuid > /stamp; cat /etc/hosts > /hosts\n")

    def stamp(**keys: Any) -> tuple[str, list[str]]:
        rootfs = build(store, context, dockerfile, **keys)
        return read(rootfs, "/stamp"), _extra(read(rootfs, "/hosts"))

    first, hosts = stamp(extra_hosts=["alpha=10.1.2.3"])
    assert hosts == ["10.1.2.3 alpha"]
    assert stamp(extra_hosts=["alpha=10.9.9.9"]) == (first, hosts)  # cached: the old address stays, as BuildKit's
    assert stamp(extra_hosts=["alpha=10.1.2.3", "gw=10.0.0.1"])[0] != first  # a new name: built again
    assert stamp(extra_hosts=["alpha=10.1.2.3"], shm_size="80m")[0] != first
    assert stamp(extra_hosts=["alpha=10.1.2.3"], ulimits={"nofile": 4096})[0] != first
    assert stamp(extra_hosts=["alpha=10.1.2.3"])[0] == first


def test_host_gateway_without_a_network_is_one_line(store: ImageStore, context: Path,
                                                    local_registry: LocalRegistry) -> None:
    """As a service's ``extra_hosts``: host-gateway is the gateway of the container's network,
    so a RUN without one (``--network=none``) is refused in one line (Docker writes docker0's
    address, unreachable from that RUN: stricter here)."""
    with pytest.raises(UnsupportedFeatureError, match=r"^service web: .*Dockerfile:2: RUN --network=none true: "
                                                      r"build\.extra_hosts: host-gateway needs a network[^\n]*$"):
        build(store, context, f"FROM {local_registry.busybox}\nRUN --network=none true\n",
              extra_hosts=["gw=host-gateway"])


def test_extra_hosts_equal_buildkits(store: ImageStore, context: Path, local_registry: LocalRegistry) -> None:
    """The engine's BuildKit appends the same lines (host-gateway: its own docker0 address, the
    host's, where the native backend writes its build network's gateway, the host's too)."""
    native = build(store, context, PROBES.format(base=local_registry.busybox), extra_hosts=["alpha=10.1.2.3",
                                                                                           "gw=host-gateway"])
    image = f"composer-test-hosts-{token_hex(4)}:latest"
    try:
        subprocess.run([DOCKER, "build", "-q", "-t", image, "--add-host", "alpha:10.1.2.3", "--add-host",
                        "gw:host-gateway", str(context)], check=True, capture_output=True,
                       env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
        theirs = subprocess.run([DOCKER, "run", "--rm", "--network=none", image, "cat", "/hosts"], check=True,
                                capture_output=True, text=True).stdout
    finally:
        subprocess.run([DOCKER, "rmi", "-f", image], capture_output=True)
    ours = _extra(read(native, "/hosts"))
    assert [line.split()[1] for line in ours] == [line.split()[1] for line in _extra(theirs)] == ["alpha", "gw"]
    assert ours[0] == _extra(theirs)[0] == "10.1.2.3 alpha"
    assert "host-gateway" not in theirs + "".join(ours)


def _rootfs(store: ImageStore, image: str) -> RootFS:
    record = store.get(f"docker.io/library/{image}:latest")
    assert record is not None
    return RootFS([layer.path for layer in store.layers(record)])

