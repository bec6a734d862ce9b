"""Time `composer up -d` and `down -t 0` against Docker Compose v2 on the same engine, in the same run.

For each N (1, 10 and 50 by default) a project of N trivial services is generated: the local test
image composer-test/busybox:latest (built when missing, as the integration tests build it) running
`sleep 3600` under `init: true`.  Each tool first brings it up and down once untimed; then the tools
alternate (their order swapping every run, so drift hits both), --runs times each.  Every run uses a
fresh project name, and is checked through the engine: after `up -d` N containers run, after `down` no
container or network of the project is left.  Whatever a run created is removed afterwards by label,
even when a tool or the script fails.

The table gives, per N and command, the median wall time, the ratio composer/v2, the median CPU time
(user + system, from wait4: steadier than wall time on a busy machine, and what the tool takes from the
engine on a small one), and the peak RSS (the largest over the runs).

Usage: .venv/bin/python bench/up_down_bench.py [--runs N] [--sizes 1,10,50] [--composer PATH] [--v2 PATH]
Exit status: 0 when every run of both tools succeeded, 1 otherwise.  Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from config_bench import BIN, find_v2, fmt_ratio, out  # noqa: E402

from composer import labels  # noqa: E402
from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402

COMMANDS = ("up", "down")
ARGV = {"up": ["up", "-d"], "down": ["down", "-t", "0"]}


def compose_file(services: int) -> str:
    lines = ["services:"]
    for i in range(1, services + 1):
        lines += [
            f"  svc-{i:02d}:",
            f"    image: {TEST_IMAGE}",
            '    command: ["sleep", "3600"]',
            "    init: true",
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------- engine


def project_selector(project: str) -> dict[str, str]:
    return {"label": f"{labels.PROJECT}={project}"}


def running(api: Any, project: str) -> int:
    return sum(1 for c in api.containers(filters=project_selector(project)) if c.get("State") == "running")


def leftovers(api: Any, project: str) -> list[str]:
    """What the project still has on the engine: containers (any state) and networks."""
    selector = project_selector(project)
    found = [f"container {c['Names'][0].lstrip('/')}" for c in api.containers(all=True, filters=selector)]
    found += [f"network {n['Name']}" for n in api.networks(filters=selector)]
    return found


def remove_project(api: Any, project: str) -> None:
    """Remove every container, network and volume labelled with the project (best effort)."""
    selector = project_selector(project)

    def attempt(what: str, call: Any, *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except Exception as exc:  # gone already, or still in use
            out(f"cleanup {project}: {what}: {exc}")

    for container in api.containers(all=True, filters=selector):
        attempt("container", api.remove_container, container["Id"], v=True, force=True)
    for network in api.networks(filters=selector):
        attempt("network", api.remove_network, network["Id"])
    for volume in (api.volumes(filters=selector) or {}).get("Volumes") or []:
        attempt("volume", api.remove_volume, volume["Name"], force=True)


# --------------------------------------------------------------------------------------------- runs


@dataclass
class Tool:
    name: str
    path: Path | None
    times: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    cpu: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    rss_kib: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)


@dataclass
class Run:
    rc: int
    seconds: float
    cpu_seconds: float
    maxrss_kib: int
    stderr: bytes


def run_once(tool: Path, folder: Path, project: str, command: str, env: dict[str, str]) -> Run:
    argv = [str(tool), "-p", project, *ARGV[command]]
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        stderr.seek(0)
        return Run(proc.returncode, seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, stderr.read())


class Bench:
    def __init__(self, api: Any, env: dict[str, str]) -> None:
        self.api = api
        self.env = env
        self.prefix = f"bench-{uuid.uuid4().hex[:8]}"
        self.projects: list[str] = []  # every project name handed to a tool, for the cleanup

    def new_project(self, tool: Tool, services: int, label: str) -> str:
        name = f"{self.prefix}-n{services}-{tool.name}-{label}"
        self.projects.append(name)
        return name

    def cycle(self, tool: Tool, folder: Path, services: int, label: str) -> dict[str, Run] | None:
        """`up -d` then `down -t 0` on a fresh project; the runs, or None after reporting a failure."""
        assert tool.path is not None
        project = self.new_project(tool, services, label)
        runs: dict[str, Run] = {}
        try:
            for command in COMMANDS:
                result = run_once(tool.path, folder, project, command, self.env)
                runs[command] = result
                problem = f"exit status {result.rc}" if result.rc != 0 else None
                if problem is None and command == "up" and (count := running(self.api, project)) != services:
                    problem = f"{count} containers running, expected {services}"
                if problem is None and command == "down" and (left := leftovers(self.api, project)):
                    problem = f"left {', '.join(left[:3])}{' ...' if len(left) > 3 else ''}"
                if problem is not None:
                    out(f"FAIL {tool.name} {command} N={services} ({label}): {problem}")
                    for line in result.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]:
                        out(f"     | {line}")
                    return None
            return runs
        finally:
            remove_project(self.api, project)

    def cleanup(self) -> None:
        for project in self.projects:
            if leftovers(self.api, project):
                remove_project(self.api, project)


# --------------------------------------------------------------------------------------------- report


def report(sizes: list[int], v2: Tool, composer: Tool, runs: int) -> None:
    def median(tool: Tool, key: tuple[int, str], cpu: bool = False) -> float | None:
        values = (tool.cpu if cpu else tool.times).get(key)
        return statistics.median(values) if values else None

    def peak(tool: Tool, key: tuple[int, str]) -> float | None:
        values = tool.rss_kib.get(key)
        return max(values) / 1024 if values else None

    def show(value: float | None, unit: str, digits: int) -> str:
        return f"{value:.{digits}f} {unit}" if value is not None else "-"

    header = ("N", "command", "v2 median", "composer median", "ratio", "v2 CPU", "composer CPU",
              "v2 peak RSS", "composer peak RSS", "ratio")
    rows = [header]
    for services in sizes:
        for command in COMMANDS:
            key = (services, command)
            t2, tc = median(v2, key), median(composer, key)
            c2, cc = median(v2, key, cpu=True), median(composer, key, cpu=True)
            r2, rc = peak(v2, key), peak(composer, key)
            rows.append((
                str(services), " ".join(ARGV[command]), show(t2, "s", 3), show(tc, "s", 3), fmt_ratio(tc, t2),
                show(c2, "s", 3), show(cc, "s", 3), show(r2, "MiB", 1), show(rc, "MiB", 1), fmt_ratio(rc, r2),
            ))
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    out()
    out(f"median wall and CPU time over {runs} runs (tools alternating), peak RSS = largest over the runs;")
    out("ratio = composer / v2 (below 1 means composer is faster or smaller)")
    for n, row in enumerate(rows):
        cells = [cell.ljust(w) if c < 2 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths, strict=True))]
        out("  ".join(cells))
        if n == 0:
            out("  ".join("-" * w for w in widths))


def sizes_arg(text: str) -> list[int]:
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError("sizes must be positive")
    return sizes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool and size (default 5)")
    parser.add_argument("--sizes", type=sizes_arg, default=[1, 10, 50], help="service counts (default 1,10,50)")
    parser.add_argument("--composer", help=f"composer executable (default {BIN / 'composer'})")
    parser.add_argument("--v2", help="Docker Compose v2 (default: docker-compose beside python, or on PATH)")
    args = parser.parse_args()

    from composer.backends.docker.client import connect_from_env

    v2 = Tool("v2", find_v2(args.v2))
    composer = Tool("composer", Path(args.composer).absolute() if args.composer else BIN / "composer")
    tools = [v2, composer]
    out(f"v2:       {v2.path}")
    out(f"composer: {composer.path}")
    out(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for tool in tools:
        if tool.path is None or not tool.path.is_file():
            out(f"FAIL {tool.name}: executable not found ({tool.path or 'docker-compose not on PATH'})")
            return 1

    api = connect_from_env()
    # No COMPOSE_* settings; and bytecode may be written, as it is for an installed composer (pip compiles
    # it), so the warm-up run caches it instead of every run compiling composer's modules (~0.1 s each).
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.setdefault("COMPOSER_BACKEND", "docker")  # against v2 on the same dockerd (native is the default as root)
    bench = Bench(api, env)
    try:
        ensure_busybox_image(api)
        with tempfile.TemporaryDirectory(prefix="up-down-bench-") as tmp:
            for services in args.sizes:
                folder = Path(tmp) / f"n{services}"
                folder.mkdir()
                (folder / "compose.yaml").write_text(compose_file(services))
                for tool in tools:  # untimed: does it work at all, and warm the engine's caches
                    if bench.cycle(tool, folder, services, "warmup") is None:
                        tool.failed.add(services)
                for run in range(args.runs):
                    for tool in tools if run % 2 == 0 else tools[::-1]:
                        if services in tool.failed:
                            continue
                        result = bench.cycle(tool, folder, services, f"r{run + 1}")
                        if result is None:
                            tool.failed.add(services)
                            continue
                        for command, timed in result.items():
                            tool.times.setdefault((services, command), []).append(timed.seconds)
                            tool.cpu.setdefault((services, command), []).append(timed.cpu_seconds)
                            tool.rss_kib.setdefault((services, command), []).append(timed.maxrss_kib)
                out(f"N={services}: done")
    finally:
        bench.cleanup()
        api.close()
    report(args.sizes, v2, composer, args.runs)
    return 1 if v2.failed or composer.failed else 0


if __name__ == "__main__":
    sys.exit(main())
