"""Cold and fully cached builds of (a) the WordPress example's stand-in images and (b) a 20-instruction
Dockerfile with a multi-stage compile: ``composer --backend native build`` against ``DOCKER_BUILDKIT=1
/usr/bin/docker build`` (the engine's BuildKit, driven by Debian's docker CLI: a newer CLI first on PATH
may lack buildx) and the classic builder (``DOCKER_BUILDKIT=0``), interleaved in one run.

(a) examples/wordpress-mysql/images/{mariadb,wordpress}/Dockerfile (apt-get installs from Debian's
mirror, then COPYs), each timed on its own, FROM the debootstrap base that scripts/prepare-example-images
imports into dockerd (``composer-example/debian:bookworm-<hash>``, named by the script's own hash; the
script runs when the base is missing), passed as ``--build-arg BASE=`` (``build.args`` for composer).
Every tool's image is tagged ``composer-bench/example:<pid>-<name>[-bk|-classic]``, never the example's
``mariadb:11`` / ``wordpress:6-apache``; after the cold runs the bench checks that each tool's image is
there. A cold build here is minutes of apt-get, so (a) has no cold warm-up and one cold run by default.
(b) the base image is dockerd's ``composer-test/busybox`` (``make engine`` / the integration tests
build it).

Each base is loaded into a throw-away native store (COMPOSER_ROOT) with ``composer image load``.
Cold: ``--no-cache`` for every tool (the base image is there, no step is reused; a global
``docker builder prune`` would empty the shared engine's cache for everyone, so BuildKit's cache
records of the bench's steps stay for the engine's own garbage collection). Cached: the same
build again, nothing changed, every step reused. composer is the command users get from ``make
install``: the compiled client (composer/cli/client.c, built here for this checkout; ``python -m
composer`` without a C compiler, and the bench says which) handing the command to a worker of its
warm command server (composer/cli/server.py); for (b) once more with COMPOSER_SERVER=0 (the client
runs the command in a Python process of its own: the imports included), and through ``python -m
composer`` to the same server (the Python client: the interpreter's start-up on top). Prints median, p90 and
ratios (composer / tool), and the load average, as the numbers mean little on a busy machine. The
bench's dockerd tags, the images its rebuilds left untagged, its store, command server and temporary
folder go at the end, also on Ctrl-C, SIGTERM and SIGHUP.

Usage: .venv/bin/python bench/build_bench.py [--parts example,steps] [--example-cold-runs N]
    [--example-cached-runs N] [--cold-runs N] [--cached-runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.machinery
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402

DOCKER = "/usr/bin/docker"  # Debian's CLI: DOCKER_BUILDKIT=1 drives the engine's BuildKit without buildx
TAG = f"composer-bench/build:{os.getpid()}"
BENCH_LABEL = "org.example.bench=build"  # (b)'s Dockerfile carries it: the prune of what rebuilds left untagged
# (a): the WordPress example's stand-in recipes, FROM the base scripts/prepare-example-images imports
PREPARE = ROOT / "scripts" / "prepare-example-images"
EXAMPLE_IMAGES = ROOT / "examples" / "wordpress-mysql" / "images"
EXAMPLE_STAND_INS = ("mariadb", "wordpress")
EXAMPLE_TAG = f"composer-bench/example:{os.getpid()}"  # never the example's own mariadb:11 / wordpress:6-apache
EXAMPLE_LABEL = "org.example.bench.stand-in"  # every tool's build gets it (the same image from each)

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


def timed(argv: list[str], env: dict[str, str], cwd: Path, log: Path | None = None) -> float:
    """The command's wall time; with ``log``, its output is appended there as it comes (an interrupted
    build's too), else dropped."""
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log.open("ab")) if log is not None else subprocess.DEVNULL
        result = subprocess.run(argv, env=env, cwd=cwd, stdout=output, stderr=subprocess.PIPE)
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


class Bench:
    """What both parts share: the throw-away native store and command server, the composer command
    as users run it, and the environments of the three tools."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
                    "COMPOSER_ROOT": str(folder / "store"), "COMPOSER_RUN_ROOT": str(folder / "run"),
                    "COMPOSER_BACKEND": "native", "COMPOSER_SERVER_DIR": str(folder / "servers"),
                    "PYTHONPATH": str(ROOT)}
        self.cold_env = {**self.env, "COMPOSER_SERVER": "0"}
        self.buildkit = {**os.environ, "DOCKER_BUILDKIT": "1"}
        self.classic = {**os.environ, "DOCKER_BUILDKIT": "0"}
        self.client = composer_client(folder / "bin")
        self.composer = [*self.client, "--backend", "native", "--progress", "quiet", "build"]
        # the Python script's way to the same server (the console script without the compiled client)
        self.python_composer = [sys.executable, "-m", "composer", *self.composer[len(self.client):]]
        self.docker_tags: list[str] = []  # every dockerd tag the bench made, dropped at the end
        # the classic builds' output, for the images they printed per step: a stage before the last one
        # leaves its final image untagged and unlabelled (only the last stage gets LABEL and --label)
        self.classic_log = folder / "classic.log"

    def load(self, image: str) -> None:
        """dockerd's image into the throw-away native store (``composer image load``)."""
        save = subprocess.Popen([DOCKER, "save", image], stdout=subprocess.PIPE)
        subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "image", "load"], stdin=save.stdout,
                       env=self.env, check=True, stdout=subprocess.DEVNULL)
        if save.wait() != 0:
            raise SystemExit(f"docker save {image} failed ({save.returncode})")

    def docker(self, extra: list[str], tag: str, context: str = ".", quiet: bool = True) -> list[str]:
        if tag not in self.docker_tags:
            self.docker_tags.append(tag)
        return [DOCKER, "build", *(["-q"] if quiet else []), *extra, "-t", tag, context]

    def classic_build(self, extra: list[str], tag: str, cwd: Path, context: str = ".") -> float:
        """A timed classic build; its output (the step images' IDs) read, not shown."""
        return timed(self.docker(extra, tag, context, quiet=False), self.classic, cwd, self.classic_log)

    def wait_for_server(self) -> None:
        deadline = time.monotonic() + 20
        while not list((self.folder / "servers").glob("*.sock")) and time.monotonic() < deadline:
            time.sleep(0.1)

    def cleanup(self) -> None:
        from composer.cli.server import stop_servers

        stop_servers(str(self.folder / "servers"))
        if self.docker_tags:
            subprocess.run([DOCKER, "rmi", "-f", *self.docker_tags], capture_output=True, check=False)
        # what a rebuild left untagged (only the bench's own images carry these labels)
        for label in (BENCH_LABEL, EXAMPLE_LABEL):
            subprocess.run([DOCKER, "image", "prune", "-f", "--filter", f"label={label}"],
                           capture_output=True, check=False)
        # of the classic builder's step images, those left untagged (never a base: FROM's line prints its
        # ID too), and the untagged ones made on top of them (a step an interruption cut off as it
        # committed: its ID was never printed); without -f, an image another image builds on stays
        printed = self.classic_log.read_text(errors="replace") if self.classic_log.exists() else ""
        steps = set(re.findall(r"^ ---> ([0-9a-f]{12})$", printed, re.MULTILINE))
        if not steps:
            return
        dangling = subprocess.run([DOCKER, "images", "-q", "--no-trunc", "--filter", "dangling=true"],
                                  capture_output=True, text=True, check=False).stdout.split()
        parents = subprocess.run([DOCKER, "image", "inspect", "--format", "{{.Id}} {{.Parent}}", *dangling],
                                 capture_output=True, text=True, check=False).stdout if dangling else ""
        for line in parents.splitlines():
            image, _, parent = line.partition(" ")
            if parent.removeprefix("sha256:")[:12] in steps:
                steps.add(image.removeprefix("sha256:")[:12])
        for _ in range(2):  # the second pass: the parents whose children the first removed
            for image in sorted(steps):
                tags = subprocess.run([DOCKER, "image", "inspect", "--format", "{{len .RepoTags}}", image],
                                      capture_output=True, text=True, check=False)
                if tags.returncode == 0 and tags.stdout.strip() == "0":
                    subprocess.run([DOCKER, "rmi", image], capture_output=True, check=False)


def load_average() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def steps_part(bench: Bench, cold_runs: int, cached_runs: int) -> None:
    """(b): the 20-instruction two-stage Dockerfile on dockerd's busybox."""
    context = bench.folder / "project"
    project(context)
    env, cold_env, composer, docker = bench.env, bench.cold_env, bench.composer, bench.docker
    from composer.backends.docker.client import connect, resolve_endpoint

    api = connect(resolve_endpoint(os.environ), timeout=120)
    ensure_busybox_image(api)
    api.close()
    bench.load(TEST_IMAGE)
    cold: dict[str, Callable[[], float]] = {
        "composer native build --no-cache": lambda: timed([*composer, "--no-cache"], env, context),
        "BuildKit docker build --no-cache": lambda: timed(docker(["--no-cache"], TAG + "-bk"), bench.buildkit,
                                                          context),
        "classic docker build --no-cache": lambda: bench.classic_build(["--no-cache"], TAG + "-classic", context),
    }
    cached: dict[str, Callable[[], float]] = {
        "composer native build (cached)": lambda: timed(composer, env, context),
        "composer native build (cached, cold CLI)": lambda: timed(composer, cold_env, context),
        **({"composer native build (cached, python -m)": lambda: timed(bench.python_composer, env, context)}
           if bench.python_composer != composer else {}),
        "BuildKit docker build (cached)": lambda: timed(docker([], TAG + "-bk"), bench.buildkit, context),
        "classic docker build (cached)": lambda: bench.classic_build([], TAG + "-classic", context),
    }
    for tool in cold.values():  # warm-up: page cache, dockerd, the store, the command server
        tool()
    bench.wait_for_server()
    for tool in cached.values():
        tool()
    cold_samples: dict[str, list[float]] = {name: [] for name in cold}
    for _ in range(cold_runs):
        for name, tool in cold.items():
            cold_samples[name].append(tool())
    for tool in cached.values():  # the cold runs replaced the images: cached from here on
        tool()
    cached_samples: dict[str, list[float]] = {name: [] for name in cached}
    for _ in range(cached_runs):
        for name, tool in cached.items():
            cached_samples[name].append(tool())
    print(f"\n(b) {DOCKERFILE.count(chr(10))}-instruction Dockerfile, two stages; {load_average()}")
    report(f"(b) cold ({cold_runs} runs each, interleaved)", cold_samples, "composer native build --no-cache")
    report(f"(b) fully cached ({cached_runs} runs each, interleaved)", cached_samples,
           "composer native build (cached)")


def example_base() -> str:
    """The debootstrap base the stand-ins are FROM, as scripts/prepare-example-images names it (the
    script's own hash of images/base/: one rule); the script runs when dockerd lacks it."""
    loader = importlib.machinery.SourceFileLoader("prepare_example_images", str(PREPARE))
    module = types.ModuleType(loader.name)
    module.__file__ = str(PREPARE)
    loader.exec_module(module)
    recipes: Path = module.RECIPES
    tag = (f"{module.BASE_REPOSITORY}:{module.read_conf(recipes / 'base' / 'debootstrap.conf')['SUITE']}-"
           f"{module.tree_hash(recipes / 'base')[:16]}")
    if subprocess.run([DOCKER, "image", "inspect", tag], capture_output=True, check=False).returncode != 0:
        print(f"{tag} is missing: running scripts/prepare-example-images (minutes)", flush=True)
        subprocess.run([str(PREPARE)], check=True, stdout=subprocess.DEVNULL)
    return tag


def example_part(bench: Bench, cold_runs: int, cached_runs: int) -> None:
    """(a): the WordPress example's stand-ins (apt-get installs from Debian's mirror) FROM the base."""
    base = example_base()
    bench.load(base)
    context = bench.folder / "example"
    context.mkdir()
    services = "".join(
        f"  {name}:\n    build:\n      context: {EXAMPLE_IMAGES / name}\n      args:\n        BASE: {base}\n"
        f"      labels:\n        {EXAMPLE_LABEL}: {name}\n    image: {EXAMPLE_TAG}-{name}\n"
        for name in EXAMPLE_STAND_INS)
    (context / "compose.yaml").write_text(f"services:\n{services}")
    env, composer = bench.env, bench.composer

    def options(extra: list[str], name: str) -> list[str]:
        return ["--build-arg", f"BASE={base}", "--label", f"{EXAMPLE_LABEL}={name}", *extra]

    def tools(name: str, cache: list[str]) -> dict[str, Callable[[], float]]:
        suffix = " --no-cache" if cache else " (cached)"
        return {
            f"composer native build{suffix}": lambda: timed([*composer, *cache, name], env, context),
            f"BuildKit docker build{suffix}": lambda: timed(
                bench.docker(options(cache, name), f"{EXAMPLE_TAG}-{name}-bk", str(EXAMPLE_IMAGES / name)),
                bench.buildkit, context),
            f"classic docker build{suffix}": lambda: bench.classic_build(
                options(cache, name), f"{EXAMPLE_TAG}-{name}-classic", context, str(EXAMPLE_IMAGES / name)),
        }

    cold = {name: tools(name, ["--no-cache"]) for name in EXAMPLE_STAND_INS}
    cached = {name: tools(name, []) for name in EXAMPLE_STAND_INS}
    # no cold warm-up (minutes of apt-get each): the first cold run is measured
    cold_samples: dict[str, dict[str, list[float]]] = {name: {tool: [] for tool in runs} for name, runs in cold.items()}
    for _ in range(cold_runs):
        for name, runs in cold.items():
            for tool, run in runs.items():
                cold_samples[name][tool].append(run())
    check_example_images(bench)
    bench.wait_for_server()
    for runs in cached.values():  # warm-up: the command server, and every tool's last image is its cold one
        for run in runs.values():
            run()
    cached_samples: dict[str, dict[str, list[float]]] = {
        name: {tool: [] for tool in runs} for name, runs in cached.items()}
    for _ in range(cached_runs):
        for name, runs in cached.items():
            for tool, run in runs.items():
                cached_samples[name][tool].append(run())
    print(f"\n(a) the WordPress example's stand-ins FROM {base} (apt-get from Debian's mirror); {load_average()}")
    for name in EXAMPLE_STAND_INS:
        report(f"(a) {name} cold ({cold_runs} runs each, interleaved)", cold_samples[name],
               "composer native build --no-cache")
    for name in EXAMPLE_STAND_INS:
        report(f"(a) {name} fully cached ({cached_runs} runs each, interleaved)", cached_samples[name],
               "composer native build (cached)")


def check_example_images(bench: Bench) -> None:
    """Cheaply: every tool's build left its tagged image (composer's in the native store)."""
    stored = subprocess.run([sys.executable, "-m", "composer", "--backend", "native", "image", "ls"], env=bench.env,
                            capture_output=True, text=True, check=True).stdout
    rows = {tuple(line.split()[:2]) for line in stored.splitlines()}
    for name in EXAMPLE_STAND_INS:
        if tuple(f"{EXAMPLE_TAG}-{name}".rsplit(":", 1)) not in rows:
            raise SystemExit(f"composer build reported success but {EXAMPLE_TAG}-{name} is not in its store:\n{stored}")
        for tool in ("bk", "classic"):
            tag = f"{EXAMPLE_TAG}-{name}-{tool}"
            if subprocess.run([DOCKER, "image", "inspect", tag], capture_output=True, check=False).returncode:
                raise SystemExit(f"docker build reported success but {tag} is missing")


def interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")  # the cleanup in main's finally runs on SIGTERM too


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--parts", default="example,steps",
                        help="comma-separated: example (a), steps (b) (default example,steps)")
    parser.add_argument("--cold-runs", type=int, default=3, help="(b): timed cold builds per tool (default 3)")
    parser.add_argument("--cached-runs", type=int, default=10, help="(b): timed cached builds per tool (default 10)")
    parser.add_argument("--example-cold-runs", type=int, default=1,
                        help="(a): timed cold builds per tool and stand-in (default 1: minutes of apt-get each)")
    parser.add_argument("--example-cached-runs", type=int, default=5,
                        help="(a): timed cached builds per tool and stand-in (default 5)")
    args = parser.parse_args()
    parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = sorted(set(parts) - {"example", "steps"})
    if unknown or not parts:
        parser.error(f"--parts: unknown part {', '.join(unknown)} (example, steps)" if unknown else "--parts: none")
    if os.geteuid() != 0:
        raise SystemExit("run as root (the native backend needs it)")
    if not Path(DOCKER).is_file():
        raise SystemExit(f"{DOCKER} is missing (apt-get install docker.io)")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    folder = Path(tempfile.mkdtemp(prefix="build-bench-"))
    bench: Bench | None = None
    try:
        bench = Bench(folder)
        print("composer client: " + ("compiled (composer/cli/client.c, as make install puts it on PATH)"
                                     if len(bench.client) == 1 else " ".join(bench.client)), flush=True)
        if "example" in parts:
            example_part(bench, args.example_cold_runs, args.example_cached_runs)
        if "steps" in parts:
            steps_part(bench, args.cold_runs, args.cached_runs)
        print("\ncomposer/tool below 1: composer is faster (goals: cold <= 1.0x BuildKit, cached <= 0.3x BuildKit "
              "and <= 0.3 s)")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if bench is not None:
            bench.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
