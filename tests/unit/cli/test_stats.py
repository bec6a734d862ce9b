"""``stats``' words and numbers as the docker CLI prints them."""

from __future__ import annotations

from composer.cli.stats import binary_size, cpu_percent, stats_row
from composer.contract.backend import ContainerStats
from composer.contract.observed import ObservedContainer


def sample(cpu: int, system: int) -> ContainerStats:
    return ContainerStats(cpu_ns=cpu, system_ns=system, online_cpus=2, memory_usage=319488,
                          memory_limit=25276182528, net_rx=1586, net_tx=0, block_read=4096, block_write=12_345_678,
                          pids=1)


def test_sizes_and_percentages() -> None:
    assert [binary_size(n) for n in (0, 1023, 319488, 25276182528, 64 << 20)] == [
        "0B", "1023B", "312KiB", "23.54GiB", "64MiB"]
    assert cpu_percent(None, sample(10, 10)) == 0.0
    assert cpu_percent(sample(0, 0), sample(250, 1000)) == 50.0  # a quarter of the host's time, two CPUs


def test_rows() -> None:
    container = ObservedContainer("a" * 64, "p-web-1", "web", 1, "h", "running")
    row = stats_row(container, sample(0, 0), sample(250, 1000), no_trunc=False)
    assert row == {"BlockIO": "4.1kB / 12.3MB", "CPUPerc": "50.00%", "Container": "a" * 64, "ID": "a" * 12,
                   "MemPerc": "0.00%", "MemUsage": "312KiB / 23.54GiB", "Name": "p-web-1", "NetIO": "1.59kB / 0B",
                   "PIDs": "1"}
    stopped = stats_row(container, None, None, no_trunc=True)
    assert (stopped["ID"], stopped["MemUsage"], stopped["PIDs"]) == ("a" * 64, "0B / 0B", "0")
