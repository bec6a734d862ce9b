"""One Compose file that sets many keys at once, and what each key must look like from inside the
container: shared by the docker and native backends' tests (tests/integration/{docker,native}/
test_compose_keys.py), so that both check the same things of the same file."""

from __future__ import annotations

from collections.abc import Callable

SERVICE = """
app:
  image: IMAGE
  entrypoint: ["sh", "-c"]
  command: ["echo started; exec sleep 300"]
  environment:
    GREETING: hello
    UNSET:
  labels:
    dev.composer.test: keys
  hostname: keyhost
  domainname: example.test
  user: "1234:2345"
  group_add: ["3456"]
  working_dir: /tmp
  read_only: true
  tmpfs: ["/scratch:size=1m"]
  shm_size: 32m
  sysctls:
    net.core.somaxconn: "1000"
  ulimits:
    nofile: {soft: 1111, hard: 2222}
  extra_hosts: ["myhost=10.1.2.3"]
  dns: ["10.9.9.9"]
  dns_search: ["search.test"]
  dns_opt: ["ndots:3"]
  cap_add: [NET_ADMIN]
  cap_drop: [CHOWN]
  security_opt: ["no-new-privileges:true"]
  oom_score_adj: 123
  stop_signal: SIGUSR1
  volumes:
    - ./shared:/shared:ro
    - data:/data/
    - {type: tmpfs, target: /fast, tmpfs: {size: 2m, mode: 0o777}}
  networks:
    front:
      aliases: [other-name]
      ipv4_address: SUBNET.10
"""
EXTRA = """
networks:
  front:
    ipam:
      config: [{subnet: SUBNET.0/24}]
volumes:
  data: {}
"""

# Capability numbers (linux/capability.h).
CAP_CHOWN, CAP_NET_ADMIN = 0, 12


def free_subnet() -> str:
    """A /24 of 10.240.0.0/12 that no route of the host (other tests' bridges, Docker's) covers."""
    import ipaddress
    import random
    import subprocess

    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=True).stdout
    used = [ipaddress.ip_network(line.split()[0], strict=False) for line in routes.splitlines()
            if line and line.split()[0][0].isdigit()]
    while True:
        candidate = ipaddress.ip_network(f"10.{random.randint(240, 254)}.{random.randint(0, 255)}.0/24")
        if not any(candidate.overlaps(network) for network in used):
            return str(candidate.network_address).rpartition(".")[0]


def check_inside(run: Callable[[str], str], failure: Callable[[str], str], subnet: str) -> None:
    """The keys of SERVICE, seen from inside: ``run(script)`` is the output of ``sh -c script`` in
    the running container, ``failure(script)`` the standard error of one that must fail."""
    assert run("echo $GREETING ${UNSET-unset}").split() == ["hello", "unset"]  # environment
    assert run("hostname; cat /proc/sys/kernel/domainname").split() == ["keyhost", "example.test"]
    assert run("id -u; id -g; id -G; pwd").split() == ["1234", "2345", "2345", "3456", "/tmp"]
    assert "Read-only file system" in failure("touch /x")
    assert run("touch /scratch/ok /fast/ok && echo ok").strip() == "ok"  # tmpfs, both syntaxes
    mounts = run("cat /proc/mounts")
    scratch = next(line for line in mounts.splitlines() if " /scratch " in line)
    assert "size=1024k" in scratch
    fast = next(line for line in mounts.splitlines() if " /fast " in line)
    assert "size=2048k" in fast
    assert "mode=777" in fast
    assert run("df -k /dev/shm | tail -1").split()[1] == "32768"  # shm_size
    assert run("cat /proc/sys/net/core/somaxconn").strip() == "1000"  # sysctls
    # ulimits, on the container's process (an exec'd one: see the backends' tests)
    limits = run("grep 'open files' /proc/1/limits")
    assert limits.split()[3:5] == ["1111", "2222"], (limits, run("cat /proc/1/cmdline; id"))
    assert "10.1.2.3\tmyhost" in run("cat /etc/hosts")  # extra_hosts
    resolv = run("cat /etc/resolv.conf")
    # on a network the resolver is the network's own DNS (Docker's 127.0.0.11), dns its upstream
    assert "search search.test" in resolv
    assert "options ndots:3" in resolv
    status = dict(line.split(":\t", 1) for line in run("cat /proc/self/status").splitlines()
                  if ":\t" in line)
    effective = int(status["CapBnd"], 16)
    assert effective & (1 << CAP_NET_ADMIN)  # cap_add
    assert not effective & (1 << CAP_CHOWN)  # cap_drop
    assert status["NoNewPrivs"].strip() == "1"  # security_opt
    assert run("cat /proc/1/oom_score_adj").strip() == "123"  # oom_score_adj
    assert run("cat /shared/file").strip() == "from the host"  # bind mount
    assert "Read-only file system" in failure("touch /shared/x")
    assert any(" /data " in line for line in mounts.splitlines())  # named volume, target cleaned
    assert f"{subnet}.10" in run("ip -4 addr")  # networks.ipv4_address in ipam's subnet
