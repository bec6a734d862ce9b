"""``composer --backend native stats``: the counters read from a real container's cgroup and network
namespace, printed as v2 prints docker's (the docker backend's test compares those side by side).

The fixtures are test_lifecycle's (a module store with the busybox test image, a tmp run root,
``down -v`` after each test).
"""

from __future__ import annotations

import json
import re
import sys

from tests.integration.native import test_lifecycle
from tests.integration.native.test_lifecycle import Project

env = test_lifecycle.env
project = test_lifecycle.project

SIZE = r"[0-9.]+(B|kB|MB|GB)"


def test_stats_reads_the_cgroup_and_the_network_namespace(project: Project) -> None:
    project.write("""
        busy:
          image: IMAGE
          command: ["sh", "-c", 'v=$$(head -c 8000000 /dev/zero | tr "\\0" a); while :; do :; done']
          mem_limit: 64m
          init: true
        idle:
          image: IMAGE
          command: sleep 600
          init: true
        done:
          image: IMAGE
          command: "true"
    """)
    project.run("up", "-d")
    table = project.run("stats", "--no-stream").stdout.splitlines()
    assert re.split(r"\s{2,}", table[0]) == [
        "CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"]
    assert len(table) == 3, table  # busy and idle: the exited one only with -a
    rows = {row["Name"]: row for row in map(json.loads, project.run("stats", "--no-stream", "--format", "json")
                                             .stdout.splitlines())}
    busy, idle = rows[f"{project.name}-busy-1"], rows[f"{project.name}-idle-1"]
    sys.stdout.write(f"\nnative stats busy: {busy}\nnative stats idle: {idle}\n")
    assert list(busy) == ["BlockIO", "CPUPerc", "Container", "ID", "MemPerc", "MemUsage", "Name", "NetIO", "PIDs"]
    assert busy["ID"] == busy["Container"][:12]
    assert float(busy["CPUPerc"].rstrip("%")) > 5.0  # a busy loop, over half a second
    assert float(idle["CPUPerc"].rstrip("%")) < 5.0
    usage = re.fullmatch(r"([0-9.]+)(B|KiB|MiB) / 64MiB", busy["MemUsage"])
    assert usage is not None, busy
    used = float(usage.group(1)) * {"B": 1, "KiB": 1024, "MiB": 1 << 20}[usage.group(2)]
    assert used >= 8_000_000  # the 8 MB string its shell holds
    assert 0 < float(busy["MemPerc"].rstrip("%")) <= 100
    assert not idle["MemUsage"].endswith(" / 64MiB")  # no limit: the host's memory
    assert (busy["PIDs"], idle["PIDs"]) == ("2", "2")  # init and its child
    assert re.fullmatch(f"{SIZE} / {SIZE}", busy["NetIO"]), busy
    assert re.fullmatch(f"{SIZE} / {SIZE}", busy["BlockIO"]), busy
    everything = project.run("stats", "--no-stream", "-a", "--format", "{{.Name}} {{.MemUsage}} {{.PIDs}}").stdout
    assert f"{project.name}-done-1 0B / 0B 0" in everything.splitlines()
    only = project.run("stats", "--no-stream", "--format", "{{.Name}}", "idle").stdout
    assert only == f"{project.name}-idle-1\n"
