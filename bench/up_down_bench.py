"""Time `composer up -d` and `down -t 0` against Docker Compose v2, in the same run.

Three tools: Compose v2 on dockerd, composer's docker backend on the same dockerd (issue 3), and
composer's native backend (issue 6: its own runtime, bridge network, DNS; no daemon). The native
backend pulls the image into a temporary store (COMPOSER_ROOT) from a temporary local registry,
as its docker.io mirror, in the untimed first run; its runs are checked through its own state.

For each N (1, 10 and 50 by default) a project of N trivial services is generated: the local test
image composer-test/busybox:latest (built when missing, as the integration tests build it) running
`sleep 3600` under `init: true`.  Each tool first brings it up and down once untimed; then the tools
alternate (their order swapping every run, so drift hits both), --runs times each.  Every run uses a
fresh project name, and is checked through the engine: after `up -d` N containers run, after `down` no
container or network of the project is left.  Whatever a run created is removed afterwards by label,
even when a tool or the script fails.

The table gives, per N and command, the median wall time, the ratio to v2, the median CPU time
(user + system, from wait4: steadier than wall time on a busy machine, and what the tool takes from the
engine on a small one), and the peak RSS (the largest over the runs; measure.py's launcher keeps the
benchmark's own memory out of it, its floor is ~8 MiB).

composer's command line runs each command in a worker of its warm command server (composer/cli/server.py,
started by the untimed first run, in a folder of the benchmark's own, stopped at the end): its CPU and RSS
columns are then the client's alone. The tools docker-cold and native-cold run with COMPOSER_SERVER=0:
every command imports composer in its own process, as without the server, and their CPU and RSS are all
of it.

Usage: .venv/bin/python bench/up_down_bench.py [--runs N] [--sizes 1,10,50] [--composer PATH] [--v2 PATH]
       [--tools v2,docker,native,docker-cold,native-cold]
Exit status: 0 when every run of both tools succeeded, 1 otherwise.  Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from config_bench import BIN, find_v2, fmt_ratio, out  # noqa: E402
from measure import Run, measured  # noqa: E402

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


def native_leftovers(project: str, environ: dict[str, str]) -> list[str]:
    """What composer's native backend still holds for the project: containers, networks, volumes."""
    from composer.backends.native.image.store import default_root
    from composer.backends.native.network import settings as networking
    from composer.backends.native.runtime import volumes
    from composer.backends.native.runtime.api import default_run_root

    root = default_run_root(environ)
    found = [f"container {p.name}" for p in (root / project).iterdir()] if (root / project).is_dir() else []
    found += [f"network {r['name']}" for r in networking.networks(root)
              if (r.get("labels") or {}).get(labels.PROJECT) == project]
    found += [f"volume {r['name']}" for r in volumes.listing(default_root(environ))
              if (r.get("labels") or {}).get(labels.PROJECT) == project]
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
    backend: str | None = None  # composer's --backend; None for v2
    environ: dict[str, str] = field(default_factory=dict)  # on top of the bench's environment
    times: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    cpu: dict[tuple[int, str], list[float]] = field(default_factory=dict)
    rss_kib: dict[tuple[int, str], list[int]] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)


def tool_argv(tool: Tool) -> list[str]:
    assert tool.path is not None
    return [str(tool.path), *(["--backend", tool.backend] if tool.backend else [])]


def run_once(tool: Tool, folder: Path, project: str, command: str, env: dict[str, str]) -> Run:
    return measured([*tool_argv(tool), "-p", project, *ARGV[command]], folder, env)


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
        project = self.new_project(tool, services, label)
        env = {**self.env, **tool.environ}
        runs: dict[str, Run] = {}
        try:
            for command in COMMANDS:
                result = run_once(tool, folder, project, command, env)
                runs[command] = result
                problem = f"exit status {result.rc}" if result.rc != 0 else None
                if problem is None and command == "up" and (count := self.running(tool, folder, project)) != services:
                    problem = f"{count} containers running, expected {services}"
                if problem is None and command == "down" and (left := self.leftovers(tool, project)):
                    problem = f"left {', '.join(left[:3])}{' ...' if len(left) > 3 else ''}"
                if problem is not None:
                    out(f"FAIL {tool.name} {command} N={services} ({label}): {problem}")
                    for line in result.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]:
                        out(f"     | {line}")
                    return None
            return runs
        finally:
            self.remove(tool, folder, project)

    def running(self, tool: Tool, folder: Path, project: str) -> int:
        if tool.backend != "native":
            return running(self.api, project)
        argv = [*tool_argv(tool), "-p", project, "ps", "-q", "--status", "running"]
        listed = subprocess.run(argv, cwd=folder, env={**self.env, **tool.environ}, capture_output=True, text=True,
                                timeout=120, check=False)
        return len(listed.stdout.split())

    def leftovers(self, tool: Tool, project: str) -> list[str]:
        if tool.backend == "native":
            return native_leftovers(project, {**self.env, **tool.environ})
        return leftovers(self.api, project)

    def remove(self, tool: Tool, folder: Path, project: str) -> None:
        if tool.backend != "native":
            remove_project(self.api, project)
        elif native_leftovers(project, {**self.env, **tool.environ}):
            subprocess.run([*tool_argv(tool), "-p", project, "down", "-v", "-t", "0"], cwd=folder,
                           env={**self.env, **tool.environ}, capture_output=True, timeout=300, check=False)

    def cleanup(self) -> None:
        for project in self.projects:
            if leftovers(self.api, project):
                remove_project(self.api, project)


# --------------------------------------------------------------------------------------------- report


def report(sizes: list[int], tools: list[Tool], runs: int) -> None:
    """One row per N and command: each tool's median wall time, its ratio to the first tool (v2),
    CPU time and peak RSS."""
    def median(tool: Tool, key: tuple[int, str], cpu: bool = False) -> float | None:
        values = (tool.cpu if cpu else tool.times).get(key)
        return statistics.median(values) if values else None

    def peak(tool: Tool, key: tuple[int, str]) -> float | None:
        values = tool.rss_kib.get(key)
        return max(values) / 1024 if values else None

    def show(value: float | None, unit: str, digits: int) -> str:
        return f"{value:.{digits}f} {unit}" if value is not None else "-"

    reference, others = tools[0], tools[1:]
    header = ["N", "command", *(f"{t.name}" for t in tools), *(f"{t.name}/{reference.name}" for t in others),
              *(f"{t.name} CPU" for t in tools), *(f"{t.name} RSS" for t in tools)]
    rows = [header]
    for services in sizes:
        for command in COMMANDS:
            key = (services, command)
            walls = [median(t, key) for t in tools]
            rows.append([str(services), " ".join(ARGV[command]), *(show(w, "s", 3) for w in walls),
                         *(fmt_ratio(w, walls[0]) for w in walls[1:]),
                         *(show(median(t, key, cpu=True), "s", 3) for t in tools),
                         *(show(peak(t, key), "MiB", 1) for t in tools)])
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    out()
    out(f"median wall time over {runs} runs (tools alternating), median CPU time (user + system), peak RSS =")
    out(f"largest over the runs; ratio = tool / {reference.name} wall time (below 1 means faster)")
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


def tools_arg(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    unknown = set(names) - {"v2", "docker", "native", "docker-cold", "native-cold"}
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"tools are v2, docker, native, docker-cold and native-cold, not {text!r}")
    return names


@contextlib.contextmanager
def native_registry(api: Any, root: Path) -> Iterator[dict[str, str]]:
    """A temporary local registry holding the test image: the native backend's docker.io mirror, with
    a temporary store, so its first (untimed) run pulls through the normal path."""
    from tests.integration import registry

    executable = registry.binary()
    if executable is None:
        raise SystemExit("FAIL native: Debian's docker-registry is not installed (make deps)")
    with registry.LocalRegistry(executable) as running:
        registry.push(api, TEST_IMAGE, running.reference(TEST_IMAGE.split(":")[0]))
        yield {"COMPOSER_ROOT": str(root / "store"), "COMPOSER_REGISTRY_MIRRORS": f"http://{running.host}",
               "COMPOSER_REGISTRY_CONFIG": str(root / "no-registries.json")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool and size (default 5)")
    parser.add_argument("--sizes", type=sizes_arg, default=[1, 10, 50], help="service counts (default 1,10,50)")
    parser.add_argument("--tools", type=tools_arg, default=["v2", "docker", "native"],
                        help="which tools, first is the reference (default v2,docker,native)")
    parser.add_argument("--composer", help=f"composer executable (default {BIN / 'composer'})")
    parser.add_argument("--v2", help="Docker Compose v2 (default: docker-compose beside python, or on PATH)")
    args = parser.parse_args()

    from composer.backends.docker.client import connect_from_env

    composer = Path(args.composer).absolute() if args.composer else BIN / "composer"
    cold = {"COMPOSER_SERVER": "0"}
    known = {"v2": Tool("v2", find_v2(args.v2)), "docker": Tool("docker", composer, backend="docker"),
             "native": Tool("native", composer, backend="native"),
             "docker-cold": Tool("docker-cold", composer, backend="docker", environ=dict(cold)),
             "native-cold": Tool("native-cold", composer, backend="native", environ=dict(cold))}
    tools = [known[name] for name in args.tools]
    for tool in tools:
        out(f"{tool.name + ':':9} {' '.join(tool_argv(tool)) if tool.path else '-'}")
    out(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for tool in tools:
        if tool.path is None or not tool.path.is_file():
            out(f"FAIL {tool.name}: executable not found ({tool.path or 'docker-compose not on PATH'})")
            return 1

    api = connect_from_env()
    # No COMPOSE_* settings; and bytecode may be written, as it is for an installed composer (pip compiles
    # it), so the warm-up run caches it instead of every run compiling composer's modules (~0.1 s each).
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("COMPOSE_", "COMPOSER_")) and k != "PYTHONDONTWRITEBYTECODE"}
    servers = tempfile.mkdtemp(prefix="up-down-bench-servers-")
    env["COMPOSER_SERVER_DIR"] = servers
    bench = Bench(api, env)
    try:
        ensure_busybox_image(api)
        with tempfile.TemporaryDirectory(prefix="up-down-bench-") as tmp, \
                native_registry(api, Path(tmp)) as native_env:
            for tool in (known["native"], known["native-cold"]):
                tool.environ.update(native_env)
            for services in args.sizes:
                folder = Path(tmp) / f"n{services}"
                folder.mkdir()
                (folder / "compose.yaml").write_text(compose_file(services))
                for tool in tools:  # untimed: does it work at all, and warm the caches (and the native store)
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
        from composer.cli.server import stop_servers

        stop_servers(servers)
        subprocess.run(["rm", "-rf", servers], check=False)
    report(args.sizes, tools, args.runs)
    return 1 if any(tool.failed for tool in tools) else 0


if __name__ == "__main__":
    sys.exit(main())
