"""Cold and fully cached builds of a 20-instruction Dockerfile with a multi-stage compile:
``composer --backend native build`` against ``DOCKER_BUILDKIT=1 /usr/bin/docker build`` (the
engine's BuildKit, driven by Debian's docker CLI: a newer CLI first on PATH may lack buildx) and
the classic builder (``DOCKER_BUILDKIT=0``), interleaved in one run.

The base image is dockerd's ``composer-test/busybox`` (``make engine`` / the integration tests
build it), loaded into a throw-away native store (COMPOSER_ROOT) with ``composer image load``.
Cold: ``--no-cache`` for every tool (the base image is there, no step is reused; a global
``docker builder prune`` would empty the shared engine's cache for everyone). Cached: the same
build again, nothing changed, every step reused. composer is the command users get from ``make
install``: the compiled client (composer/cli/client.c, built here for this checkout; ``python -m
composer`` without a C compiler, and the bench says which) handing the command to a worker of its
warm command server (composer/cli/server.py); once more with COMPOSER_SERVER=0 (the client
runs the command in a Python process of its own: the imports included), and through ``python -m
composer`` to the same server (the Python client: the interpreter's start-up on top). Prints median, p90 and
ratios (composer / tool), and the load average, as the numbers mean little on a busy machine.

Usage: .venv/bin/python bench/build_bench.py [--cold-runs N] [--cached-runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402

DOCKER = "/usr/bin/docker"  # Debian's CLI: DOCKER_BUILDKIT=1 drives the engine's BuildKit without buildx
TAG = f"composer-bench/build:{os.getpid()}"

DOCKERFILE = f"""\
FROM {TEST_IMAGE} AS compile
WORKDIR /src
COPY src/ ./
RUN mkdir -p /out && for f in *.c; do sed 's/main/entry/g' "$f" > "/out/${{f%.c}}.o"; done
RUN cat /out/*.o | gzip -9 > /out/app.gz
RUN md5sum /out/app.gz > /out/app.sum
FROM {TEST_IMAGE}
ARG VERSION=1.0
ENV APP_HOME=/app VERSION=$VERSION
WORKDIR /app
COPY config/ ./config/
RUN echo 'app:x:1000:1000::/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group
COPY --from=compile /out/app.gz /out/app.sum ./
RUN gunzip -c app.gz > app.bin && mkdir -p data logs && chown -R app data logs
COPY static/ ./static/
RUN find /app -type f | wc -l > /app/count
LABEL org.example.bench=build
EXPOSE 8080
USER app
CMD ["sh", "-c", "cat /app/count"]
"""


def project(folder: Path) -> None:
    (folder / "src").mkdir(parents=True)
    for index in range(40):
        (folder / "src" / f"unit{index}.c").write_text(
            "".join(f"int main_{index}_{line}(void) {{ return {line}; }}\n" for line in range(200)))
    (folder / "config").mkdir()
    for name in ("app.ini", "log.ini", "db.ini"):
        (folder / "config" / name).write_text(f"[{name}]\nkey = value\n")
    (folder / "static").mkdir()
    for index in range(100):
        (folder / "static" / f"page{index}.html").write_text(f"<p>page {index}</p>\n" * 20)
    (folder / "Dockerfile").write_text(DOCKERFILE)
    (folder / ".dockerignore").write_text("compose.yaml\n")
    (folder / "compose.yaml").write_text(f"services:\n  app:\n    build: .\n    image: {TAG}\n")


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])}... failed ({result.returncode}): {result.stderr.decode()[-800:]}")
    return elapsed


def composer_client(folder: Path) -> list[str]:
    """The command users run: the compiled client ``make install`` puts on PATH
    (composer/cli/client.c), built for this checkout (the installed one's serves the installed
    checkout's server); ``python -m composer`` where no C compiler can build it."""
    from composer.cli.build_client import BuildError, build

    folder.mkdir()
    try:
        build(folder / "composer")
    except BuildError as exc:
        print(f"{exc}: measuring python -m composer")
        return [sys.executable, "-m", "composer"]
    return [str(folder / "composer")]


def report(title: str, samples: dict[str, list[float]], reference: str) -> None:
    base = statistics.median(samples[reference])
    print(f"\n{title}")
    print(f"{'tool':<40}{'median':>10}{'p90':>10}{'composer/tool':>15}")
    for name, values in samples.items():
        ordered = sorted(values)
        median = statistics.median(values)
        p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
        print(f"{name:<40}{median:>9.3f}s{p90:>9.3f}s{base / median:>14.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cold-runs", type=int, default=3, help="timed cold builds per tool (default 3)")
    parser.add_argument("--cached-runs", type=int, default=10, help="timed cached builds per tool (default 10)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the native backend needs it)")
    if not Path(DOCKER).is_file():
        raise SystemExit(f"{DOCKER} is missing (apt-get install docker.io)")
    folder = Path(tempfile.mkdtemp(prefix="build-bench-"))
    context = folder / "project"
    project(context)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "COMPOSER_ROOT": str(folder / "store"), "COMPOSER_RUN_ROOT": str(folder / "run"),
           "COMPOSER_BACKEND": "native", "COMPOSER_SERVER_DIR": str(folder / "servers")}
    cold_env = {**env, "COMPOSER_SERVER": "0"}
    buildkit = {**os.environ, "DOCKER_BUILDKIT": "1"}
    classic = {**os.environ, "DOCKER_BUILDKIT": "0"}
    env["PYTHONPATH"] = cold_env["PYTHONPATH"] = str(ROOT)
    client = composer_client(folder / "bin")
    composer = [*client, "--backend", "native", "--progress", "quiet", "build"]
    # the Python script's way to the same server (the console script without the compiled client)
    python_composer = [sys.executable, "-m", "composer", *composer[len(client):]]

    def docker(extra: list[str], tag: str) -> list[str]:
        return [DOCKER, "build", "-q", *extra, "-t", tag, "."]

    try:
        from composer.backends.docker.client import connect, resolve_endpoint

        api = connect(resolve_endpoint(os.environ), timeout=120)
        ensure_busybox_image(api)
        api.close()
        save = subprocess.Popen([DOCKER, "save", TEST_IMAGE], stdout=subprocess.PIPE)
        subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "image", "load"], stdin=save.stdout,
                       env=env, check=True, stdout=subprocess.DEVNULL)
        save.wait()
        cold: dict[str, Callable[[], float]] = {
            "composer native build --no-cache": lambda: timed([*composer, "--no-cache"], env, context),
            "BuildKit docker build --no-cache": lambda: timed(docker(["--no-cache"], TAG + "-bk"), buildkit, context),
            "classic docker build --no-cache": lambda: timed(docker(["--no-cache"], TAG + "-classic"), classic,
                                                             context),
        }
        cached: dict[str, Callable[[], float]] = {
            "composer native build (cached)": lambda: timed(composer, env, context),
            "composer native build (cached, cold CLI)": lambda: timed(composer, cold_env, context),
            **({"composer native build (cached, python -m)": lambda: timed(python_composer, env, context)}
               if python_composer != composer else {}),
            "BuildKit docker build (cached)": lambda: timed(docker([], TAG + "-bk"), buildkit, context),
            "classic docker build (cached)": lambda: timed(docker([], TAG + "-classic"), classic, context),
        }
        for tool in cold.values():  # warm-up: page cache, dockerd, the store, the command server
            tool()
        deadline = time.monotonic() + 20
        while not list((folder / "servers").glob("*.sock")) and time.monotonic() < deadline:
            time.sleep(0.1)
        for tool in cached.values():
            tool()
        cold_samples: dict[str, list[float]] = {name: [] for name in cold}
        for _ in range(args.cold_runs):
            for name, tool in cold.items():
                cold_samples[name].append(tool())
        for tool in cached.values():  # the cold runs replaced the images: cached from here on
            tool()
        cached_samples: dict[str, list[float]] = {name: [] for name in cached}
        for _ in range(args.cached_runs):
            for name, tool in cached.items():
                cached_samples[name].append(tool())
        load = os.getloadavg()
        print(f"{DOCKERFILE.count(chr(10))}-instruction Dockerfile, two stages; {os.cpu_count()} CPUs, "
              f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print("composer client: " + ("compiled (composer/cli/client.c, as make install puts it on PATH)"
                                     if len(client) == 1 else " ".join(client)))
        report(f"cold ({args.cold_runs} runs each, interleaved)", cold_samples, "composer native build --no-cache")
        report(f"fully cached ({args.cached_runs} runs each, interleaved)", cached_samples,
               "composer native build (cached)")
        print("\ncomposer/tool below 1: composer is faster (goals: cold <= 1.0x BuildKit, cached <= 0.3x BuildKit "
              "and <= 0.3 s)")
    finally:
        from composer.cli.server import stop_servers

        stop_servers(str(folder / "servers"))
        subprocess.run([DOCKER, "rmi", "-f", TAG + "-bk", TAG + "-classic"], capture_output=True, check=False)
        subprocess.run([DOCKER, "image", "prune", "-f", "--filter", "label=org.example.bench=build"],
                       capture_output=True, check=False)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
