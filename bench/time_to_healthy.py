"""Time-to-healthy of the WordPress example from a cold start: composer against Docker Compose v2.

A cold start is a project that does not exist yet (no containers, no network, no volumes: MariaDB
initialises its empty data directory, WordPress copies itself into its volume) with the images already
in the engine's store (scripts/prepare-example-images --pull puts them there). Per run two times are
taken from the moment the tool starts:

- ``up -d --wait``: until the tool returns, every service running and ``db`` healthy;
- ``answers``: until WordPress answers ``GET /`` on the published port (the installer's redirect).

Each tool first runs once untimed; then the tools alternate (their order swapping every run, so drift
hits both), --runs times each. Every run uses a fresh project name and a free port, is checked through
the engine, and is removed afterwards (``down -v``, then by label, even when a tool fails).

Tools: Compose v2 and composer's docker backend on the same dockerd, and composer's native backend
(its own store, COMPOSER_ROOT; the untimed first run pulls the images into it through the same local
mirror, /etc/composer/registries.json). A native run is checked and cleaned through composer itself
(its run root and volume store), the others through the engine.

Usage: .venv/bin/python bench/time_to_healthy.py [--runs N] [--composer PATH] [--v2 PATH]
Exit status: 0 when every run of every tool succeeded, 1 otherwise. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from config_bench import BIN, find_v2, fmt_ratio, out  # noqa: E402
from up_down_bench import leftovers, native_leftovers, remove_project  # noqa: E402

from tests.integration.registry import free_port  # noqa: E402

EXAMPLE = ROOT / "examples" / "wordpress-mysql"
PREPARE = ROOT / "scripts" / "prepare-example-images"
MEASURES = ("up -d --wait", "answers")


@dataclass
class Tool:
    name: str
    argv: list[str]  # the command line before the global flags
    times: dict[str, list[float]] = field(default_factory=dict)
    failed: bool = False


def tools(composer: Path, v2: Path) -> list[Tool]:
    return [
        Tool("v2", [str(v2)]),
        Tool("docker", [str(composer), "--backend", "docker"]),
        Tool("native", [str(composer), "--backend", "native"]),
    ]



def ensure_secrets() -> None:
    folder = EXAMPLE / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    for name in ("db_password", "db_root_password"):
        path = folder / f"{name}.txt"
        if not path.exists() or not path.read_text().strip():
            path.write_text(secrets.token_urlsafe(24))
            path.chmod(0o644)


def answers(port: int) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirect())
    try:
        with opener.open(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except OSError:
        return False


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Bench:
    def __init__(self, api: Any, env: dict[str, str]) -> None:
        self.api = api
        self.env = env
        self.prefix = f"healthy-{uuid.uuid4().hex[:8]}"
        self.projects: list[str] = []

    def run(self, tool: Tool, label: str) -> dict[str, float] | None:
        """One cold start; the times, or None after reporting a failure."""
        project = f"{self.prefix}-{tool.name}-{label}"
        self.projects.append(project)
        port = free_port()
        env = {**self.env, "WORDPRESS_PORT": str(port)}
        base = [*tool.argv, "-f", str(EXAMPLE / "compose.yaml"), "-p", project]
        try:
            with tempfile.TemporaryFile() as stderr:
                start = time.perf_counter()
                done = subprocess.run([*base, "up", "-d", "--wait"], cwd=EXAMPLE, env=env,
                                      stdout=subprocess.DEVNULL, stderr=stderr, timeout=600, check=False)
                up = time.perf_counter() - start
                if done.returncode != 0:
                    stderr.seek(0)
                    out(f"FAIL {tool.name} ({label}): up -d --wait exited {done.returncode}")
                    for line in stderr.read().decode("utf-8", "replace").strip().splitlines()[-5:]:
                        out(f"     | {line}")
                    return None
            while not answers(port):
                if time.perf_counter() - start > up + 120:
                    out(f"FAIL {tool.name} ({label}): WordPress did not answer on port {port}")
                    return None
                time.sleep(0.05)
            answered = time.perf_counter() - start
            subprocess.run([*base, "down", "-v", "-t", "0"], cwd=EXAMPLE, env=env, capture_output=True,
                           timeout=300, check=False)
            left = native_leftovers(project, env) if tool.name == "native" else leftovers(self.api, project)
            if left:
                out(f"FAIL {tool.name} ({label}): down -v left {', '.join(left[:3])}")
                return None
            return {"up -d --wait": up, "answers": answered}
        finally:
            if tool.name == "native":
                subprocess.run([*base, "down", "-v", "-t", "0"], cwd=EXAMPLE, env=env, capture_output=True,
                               timeout=300, check=False)
            else:
                remove_project(self.api, project)

    def cleanup(self) -> None:
        for project in self.projects:
            remove_project(self.api, project)


def report(all_tools: list[Tool], runs: int) -> None:
    def median(tool: Tool, measure: str) -> float | None:
        values = tool.times.get(measure)
        return statistics.median(values) if values else None

    reference = all_tools[0]
    header = ["measure", *(f"{tool.name} median" for tool in all_tools),
              *(f"{tool.name}/{reference.name}" for tool in all_tools[1:])]
    rows = [header]
    for measure in MEASURES:
        medians = [median(tool, measure) for tool in all_tools]
        rows.append([measure, *(f"{m:.2f} s" if m is not None else "-" for m in medians),
                     *(fmt_ratio(m, medians[0]) for m in medians[1:])])
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    out()
    out(f"cold start (fresh project and volumes, images present), median over {runs} runs, tools alternating;")
    out(f"ratio = tool / {reference.name} (below 1 means faster)")
    for n, row in enumerate(rows):
        out("  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths,
                                                                                                   strict=True))))
        if n == 0:
            out("  ".join("-" * w for w in widths))
    for tool in all_tools:
        for measure in MEASURES:
            values = tool.times.get(measure) or []
            out(f"  {tool.name:>8} {measure:<13} " + " ".join(f"{v:.2f}" for v in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool (default 5)")
    parser.add_argument("--composer", help=f"composer executable (default {BIN / 'composer'})")
    parser.add_argument("--v2", help="Docker Compose v2 (default: docker-compose beside python, or on PATH)")
    args = parser.parse_args()

    v2 = find_v2(args.v2)
    composer = Path(args.composer).absolute() if args.composer else BIN / "composer"
    for name, path in (("v2", v2), ("composer", composer)):
        if path is None or not path.is_file():
            out(f"FAIL {name}: executable not found ({path or 'docker-compose not on PATH'})")
            return 1
    assert v2 is not None
    all_tools = tools(composer, v2)
    for tool in all_tools:
        out(f"{tool.name + ':':9} {' '.join(tool.argv)}")
    out(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    out("images: scripts/prepare-example-images --pull")
    prepared = subprocess.run([str(PREPARE), "--pull"], capture_output=True, text=True, check=False)
    if prepared.returncode != 0:
        out(f"FAIL prepare-example-images exited {prepared.returncode}:\n{prepared.stdout[-2000:]}{prepared.stderr}")
        return 1
    ensure_secrets()

    from composer.backends.docker.client import connect_from_env

    api = connect_from_env()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_") and k != "PYTHONDONTWRITEBYTECODE"}
    bench = Bench(api, env)
    try:
        for tool in all_tools:  # untimed: does it work at all, and warm the caches
            tool.failed = bench.run(tool, "warmup") is None
        for run in range(args.runs):
            for tool in all_tools if run % 2 == 0 else all_tools[::-1]:
                if tool.failed:
                    continue
                result = bench.run(tool, f"r{run + 1}")
                if result is None:
                    tool.failed = True
                    continue
                for measure, seconds in result.items():
                    tool.times.setdefault(measure, []).append(seconds)
                out(f"  run {run + 1} {tool.name:>8}: " + ", ".join(f"{k} {v:.2f} s" for k, v in result.items()))
    finally:
        bench.cleanup()
    report(all_tools, args.runs)
    return 1 if any(tool.failed for tool in all_tools) else 0


if __name__ == "__main__":
    sys.exit(main())
