"""Deploy and remove a stack of N services: composer's swarm backend against ``docker stack deploy``
and ``docker stack rm`` (Debian's docker CLI, /usr/bin/docker), on the same swarm, in one run.

The swarm is the local dockerd, made a one-node manager for the run when it is not one (and left
as it was found afterwards). For each N (1, 10 and 30 by default) a stack of N services of the test
image (composer-test/busybox, built when missing) is generated, each one replica of a shell that
sleeps and exits on SIGTERM, with ``endpoint_mode: dnsrr`` (this host's kernel has no IPVS: no
virtual IPs). The tools alternate, --runs times each, each run with a fresh stack name.

Measured from the command's start, by polling the engine every 50 ms (the same observer for both):
- deploy: the command's own wall time, and the time until every service has its task running
  ("converged"). composer also runs as ``up -d --wait``: that command's wall time is its own
  answer to "converged" (composer polls; docker stack deploy has no wait at all).
- remove: the command's wall time, and the time until no service, container or network of the stack
  is left (``docker stack rm`` returns before its tasks have stopped; composer's down waits).
- waiting: when a docker CLI on PATH has ``stack deploy --detach=false`` (CLI 26 and later; Debian's
  20.10 has not), ``docker stack deploy --detach=false`` and ``docker stack rm --detach=false`` are
  timed as a fourth tool against ``up -d --wait`` and ``down``: both wait for the tasks to be running
  and stable for the update monitor's period (5 s unless set), the CLI polling, composer on events.

Usage: .venv/bin/python bench/swarm_bench.py [--runs N] [--sizes 1,10,30] [--composer CMD]
Exit status: 0 when every run succeeded and converged, 1 otherwise. Timings are reported, never asserted.
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(ROOT), str(HERE)]

from config_bench import BIN, fmt_ratio, out  # noqa: E402

from composer import labels  # noqa: E402
from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402

DOCKER = "/usr/bin/docker"
POLL = 0.05
DEADLINE = 300.0
SERVICE = """  svc-{i:02d}:
    image: {image}
    command: ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    deploy: {{endpoint_mode: dnsrr}}
"""


def stack_file(services: int, *, version: bool) -> str:
    head = 'version: "3.8"\n' if version else ""
    return head + "services:\n" + "".join(SERVICE.format(i=i, image=TEST_IMAGE) for i in range(1, services + 1))


def selector(stack: str) -> dict[str, str]:
    return {"label": f"{labels.STACK_NAMESPACE}={stack}"}


def converged(api: Any, stack: str, services: int) -> bool:
    running = api.containers(filters={**selector(stack), "status": "running"})
    return len(running) >= services and len(api.services(filters=selector(stack)) or []) == services


def gone(api: Any, stack: str) -> bool:
    return not (api.services(filters=selector(stack)) or api.containers(all=True, filters=selector(stack))
                or api.networks(filters=selector(stack)))


def timed(argv: list[str], cwd: Path, until: Callable[[], bool]) -> tuple[float, float, bool]:
    """(the command's wall time, the time until ``until`` holds, whether the command succeeded)."""
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False, env=dict(os.environ))
    command = time.perf_counter() - start
    if done.returncode != 0:
        out(f"  {' '.join(argv[-4:])}: exit {done.returncode}: {done.stderr.strip()[-300:]}")
    while not until():
        if time.perf_counter() - start > DEADLINE:
            return command, float("nan"), False
        time.sleep(POLL)
    return command, time.perf_counter() - start, done.returncode == 0


def cleanup(api: Any, stack: str) -> None:
    for service in api.services(filters=selector(stack)) or []:
        try:
            api.remove_service(service["ID"])
        except Exception as exc:
            out(f"cleanup {stack}: {exc}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and api.containers(all=True, filters=selector(stack)):
        time.sleep(0.2)
    for network in api.networks(filters=selector(stack)) or []:
        try:
            api.remove_network(network["Id"])
        except Exception as exc:
            out(f"cleanup {stack}: {exc}")


SWARM = ["--backend", "swarm", "--progress", "quiet"]


def waiting_docker() -> tuple[str, str] | None:
    """A docker CLI on PATH whose ``stack deploy`` can wait (``--detach=false``), and its version."""
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = Path(folder) / "docker"
        if not os.access(candidate, os.X_OK):
            continue
        helped = subprocess.run([str(candidate), "stack", "deploy", "--help"], capture_output=True, text=True,
                                check=False)
        if "--detach" in helped.stdout:
            version = subprocess.run([str(candidate), "version", "--format", "{{.Client.Version}}"],
                                     capture_output=True, text=True, check=False).stdout.strip()
            return str(candidate), version
    return None


def one_run(api: Any, tool: str, size: int, work: Path, composer: list[str],
            waiting_cli: str | None) -> tuple[bool, dict[str, float]]:
    """Deploy and remove one fresh stack with ``tool``; whether both succeeded, and the figures."""
    stack = f"bench{uuid.uuid4().hex[:8]}"
    if tool == "docker":
        up = [DOCKER, "stack", "deploy", "-c", "stack.yaml", stack]
        down = [DOCKER, "stack", "rm", stack]
    elif tool == "docker-wait":
        assert waiting_cli is not None
        up = [waiting_cli, "stack", "deploy", "--detach=false", "-c", "stack.yaml", stack]
        down = [waiting_cli, "stack", "rm", "--detach=false", stack]
    else:
        wait = ["--wait", "--wait-timeout", "240"] if tool == "composer-wait" else []
        up = [*composer, *SWARM, "-p", stack, "up", "-d", *wait]
        down = [*composer, *SWARM, "-p", stack, "down"]
    try:
        deploy = timed(up, work, lambda: converged(api, stack, size))
        remove = timed(down, work, lambda: gone(api, stack))
    finally:
        cleanup(api, stack)
    figures = {"deploy command": deploy[0], "deploy converged": deploy[1], "remove command": remove[0],
               "remove gone": remove[1]}
    return deploy[2] and remove[2], figures


def report(rows: dict[tuple[int, str], list[float]], sizes: list[int], runs: int,
           waiting: tuple[str, str] | None) -> None:
    """The medians and ratios of every tool, per size and measure."""
    def median(size: int, key: str) -> float | None:
        values = rows.get((size, key))
        return statistics.median(values) if values else None

    out(f"swarm bench: {runs} runs per tool and size, median seconds (ratio: composer / docker stack)")
    out(f"{'N':>3}  {'measure':<17} {'docker':>8} {'composer':>9} {'ratio':>6} {'up --wait':>9} {'ratio':>6}")
    for size in sizes:
        for name in ("deploy command", "deploy converged", "remove command", "remove gone"):
            docker = median(size, f"docker|{name}")
            mine = median(size, f"composer|{name}")
            waited = median(size, f"composer-wait|{name}")
            out(f"{size:>3}  {name:<17} {docker or 0:>8.2f} {mine or 0:>9.2f} {fmt_ratio(mine, docker):>6} "
                f"{waited or 0:>9.2f} {fmt_ratio(waited, docker):>6}")
    if waiting:
        out(f"waiting: composer up -d --wait / down against {waiting[0]} (CLI {waiting[1]}) stack deploy "
            f"--detach=false / stack rm --detach=false")
        out(f"{'N':>3}  {'measure':<17} {'docker':>8} {'composer':>9} {'ratio':>6}")
        for size in sizes:
            for name in ("deploy command", "remove command"):
                docker = median(size, f"docker-wait|{name}")
                waited = median(size, f"composer-wait|{name}")
                out(f"{size:>3}  {name:<17} {docker or 0:>8.2f} {waited or 0:>9.2f} {fmt_ratio(waited, docker):>6}")
    else:
        out("waiting: no docker CLI with stack deploy --detach=false on PATH; not compared")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="1,10,30")
    parser.add_argument("--composer", default=str(BIN / "composer"), help="the composer command (split on spaces)")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    waiting = waiting_docker()
    tools = ("docker", "composer", "composer-wait", *(("docker-wait",) if waiting else ()))

    from composer.backends.docker.client import connect, resolve_endpoint

    api = connect(resolve_endpoint(os.environ), timeout=120)
    ensure_busybox_image(api)
    joined = (api.info().get("Swarm") or {}).get("LocalNodeState") == "active"
    networks_before = {item["Name"] for item in api.networks()}
    if not joined:
        api.init_swarm(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    rows: dict[tuple[int, str], list[float]] = {}
    failures = 0
    try:
        with tempfile.TemporaryDirectory(prefix="swarm-bench-") as folder:
            for size in sizes:
                work = Path(folder) / str(size)
                work.mkdir()
                (work / "compose.yaml").write_text(stack_file(size, version=False))
                (work / "stack.yaml").write_text(stack_file(size, version=True))
                for run in range(args.runs + 1):  # the first round warms up and is not counted
                    order = tools if run % 2 else tools[::-1]
                    for tool in order:
                        ok, figures = one_run(api, tool, size, work, args.composer.split(),
                                              waiting[0] if waiting else None)
                        failures += 0 if ok else 1
                        if run and ok:
                            for name, value in figures.items():
                                rows.setdefault((size, f"{tool}|{name}"), []).append(value)
    finally:
        if not joined:
            api.leave_swarm(force=True)
            for name in ("docker_gwbridge", "ingress"):
                if name not in networks_before:
                    try:
                        api.remove_network(name)
                    except Exception:
                        pass

    report(rows, sizes, args.runs, waiting)
    if failures:
        out(f"{failures} runs failed")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
