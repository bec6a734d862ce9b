"""``stats`` for NativeBackend (synchronous; the backend runs it in a worker thread): a running
container's counters read where Docker's daemon reads them: its cgroup (CPU time, memory and its
limit, block I/O, pids; v1 or v2), its network namespace (/proc/<pid>/net/dev of a process in it)
and the host (/proc/stat, /proc/meminfo).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from composer.backends.native.runtime import cgroups
from composer.backends.native.status import running_cgroup
from composer.contract.backend import ContainerRef, ContainerStats

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers

TOO_LARGE = 1 << 62  # a v1 "no limit" (9223372036854771712), or v2's "max"


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _number(path: str) -> int:
    text = _read(path).strip()
    return int(text) if text.isdigit() else (TOO_LARGE if text == "max" else 0)


def _keyed(path: str) -> dict[str, int]:
    """``name value`` lines (memory.stat, cpu.stat)."""
    found: dict[str, int] = {}
    for line in _read(path).splitlines():
        name, _, value = line.partition(" ")
        if value.strip().isdigit():
            found[name] = int(value)
    return found


def host_cpu_ns() -> int:
    """The host's CPU time since boot, all CPUs (the first line of /proc/stat, in clock ticks)."""
    fields = _read("/proc/stat").splitlines()[0].split()[1:8]  # user nice system idle iowait irq softirq
    return sum(int(value) for value in fields) * 1_000_000_000 // os.sysconf("SC_CLK_TCK")


def host_memory() -> int:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def network_bytes(pid: int) -> tuple[int, int]:
    """(received, sent) over every interface of the process's network namespace but lo."""
    received = sent = 0
    for line in _read(f"/proc/{pid}/net/dev").splitlines()[2:]:
        name, _, counters = line.partition(":")
        values = counters.split()
        if name.strip() == "lo" or len(values) < 9:
            continue
        received += int(values[0])
        sent += int(values[8])
    return received, sent


def _block_v1(blkio: str) -> tuple[int, int]:
    read = written = 0
    for name in ("blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"):
        text = _read(os.path.join(blkio, name))
        if not text:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "Read":
                read += int(parts[2])
            elif len(parts) == 3 and parts[1] == "Write":
                written += int(parts[2])
        break
    return read, written


def _block_v2(unified: str) -> tuple[int, int]:
    read = written = 0
    for line in _read(os.path.join(unified, "io.stat")).splitlines():
        for field in line.split()[1:]:
            key, _, value = field.partition("=")
            if key == "rbytes":
                read += int(value)
            elif key == "wbytes":
                written += int(value)
    return read, written


def sample(cgroup: cgroups.Cgroup) -> ContainerStats:
    """One sample of the cgroup's counters (and of the network namespace of its first process)."""
    paths = cgroup.paths
    if cgroup.mode == "v2" and "unified" in paths:
        unified = paths["unified"]
        cpu_ns = _keyed(os.path.join(unified, "cpu.stat")).get("usage_usec", 0) * 1000
        usage = _number(os.path.join(unified, "memory.current"))
        limit = _number(os.path.join(unified, "memory.max"))
        inactive = _keyed(os.path.join(unified, "memory.stat")).get("inactive_file", 0)
        pids = _number(os.path.join(unified, "pids.current"))
        block = _block_v2(unified)
    else:
        cpu_ns = _number(os.path.join(paths.get("cpuacct", paths.get("cpu", "")), "cpuacct.usage"))
        memory = paths.get("memory", "")
        usage = _number(os.path.join(memory, "memory.usage_in_bytes"))
        limit = _number(os.path.join(memory, "memory.limit_in_bytes"))
        inactive = _keyed(os.path.join(memory, "memory.stat")).get("total_inactive_file", 0)
        pids = _number(os.path.join(paths.get("pids", ""), "pids.current"))
        block = _block_v1(paths.get("blkio", ""))
    processes = cgroups.pids(cgroup)
    if not pids:
        pids = len(processes)
    net = network_bytes(processes[0]) if processes else (0, 0)
    return ContainerStats(
        cpu_ns=cpu_ns, system_ns=host_cpu_ns(), online_cpus=os.cpu_count() or 1,
        memory_usage=usage - inactive if inactive < usage else usage,
        memory_limit=min(limit, host_memory()) if limit else host_memory(),
        net_rx=net[0], net_tx=net[1], block_read=block[0], block_write=block[1], pids=pids)


def container_stats(containers: NativeContainers, ref: ContainerRef) -> ContainerStats:
    """The running container's counters.

    :raises BackendError: it is not running.
    :raises NotFoundError: no such container.
    """
    project, name, _ = containers.locate(ref, "stats")
    return sample(running_cgroup(containers.runtime, project, name, "stats"))
