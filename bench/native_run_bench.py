"""Start-to-exit of a trivial container: ``composer --backend native run --rm`` against
``docker run --rm`` and ``runc run`` on the same busybox image, interleaved in one run.

The image is dockerd's ``composer-test/busybox`` (``make engine`` / the integration tests build
it; ``--image`` for another): loaded into a throw-away native store (COMPOSER_ROOT) with
``composer image load``, run by docker as it is, and exported to an OCI bundle for runc
(``runc spec``, args ``true``, no terminal). Prints median, p90 and ratios (tool / composer).

composer runs the command in a worker of its warm command server (composer/cli/server.py: started by
the untimed warm-up, in a folder of the benchmark's own, stopped at the end); the row "composer
native run --rm (cold)" runs with COMPOSER_SERVER=0, importing composer in the command's own process.

Usage: .venv/bin/python bench/native_run_bench.py [--runs N] [--image REF]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from tests.support.images import TEST_IMAGE, ensure_busybox_image  # noqa: E402


def timed(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv[:6])}... failed ({result.returncode}): {result.stderr.decode()[-500:]}")
    return elapsed


def runc_bundle(image: str, folder: Path) -> Path:
    bundle = folder / "bundle"
    rootfs = bundle / "rootfs"
    rootfs.mkdir(parents=True)
    container = subprocess.run(["docker", "create", image, "true"], check=True, capture_output=True,
                               text=True).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(rootfs)], stdin=export.stdout, check=True)
        export.wait()
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["args"] = ["true"]
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    return bundle


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=20, help="timed runs per tool (default 20)")
    parser.add_argument("--image", default=TEST_IMAGE, help="dockerd's image to use")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (the native backend and runc need it)")
    for program in ("docker", "runc"):
        if shutil.which(program) is None:
            raise SystemExit(f"{program} is missing (apt-get install docker.io runc)")
    folder = Path(tempfile.mkdtemp(prefix="native-run-bench-"))
    # bytecode may be written, as it is for an installed composer (pip compiles it)
    env = {**{k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"},
           "COMPOSER_ROOT": str(folder / "store"), "COMPOSER_RUN_ROOT": str(folder / "run"),
           "COMPOSER_BACKEND": "native", "COMPOSER_SERVER_DIR": str(folder / "servers")}
    cold_env = {**env, "COMPOSER_SERVER": "0"}
    try:
        if args.image == TEST_IMAGE:  # a fresh machine has not built it yet (the test suite builds it too)
            from composer.backends.docker.client import connect, resolve_endpoint

            api = connect(resolve_endpoint(os.environ), timeout=120)
            ensure_busybox_image(api)
            api.close()
        composer = str(BIN / "composer")
        save = subprocess.Popen(["docker", "save", args.image], stdout=subprocess.PIPE)
        subprocess.run([composer, "--backend", "native", "image", "load"], stdin=save.stdout, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        save.wait()
        (folder / "compose.yaml").write_text(f"services:\n  t:\n    image: {args.image}\n    command: [\"true\"]\n")
        bundle = runc_bundle(args.image, folder)
        tools: dict[str, Callable[[int], float]] = {
            "composer native run --rm": lambda i: timed([composer, "--backend", "native", "--progress", "quiet", "-p",
                                                         "bench", "run", "--rm", "t"], env, folder),
            "composer native run --rm (cold)": lambda i: timed([composer, "--backend", "native", "--progress", "quiet",
                                                                "-p", "bench", "run", "--rm", "t"], cold_env, folder),
            "docker run --rm": lambda i: timed(["docker", "run", "--rm", args.image, "true"]),
            "runc run": lambda i: timed(["runc", "run", "--bundle", str(bundle), f"bench-{os.getpid()}-{i}"]),
        }
        for tool in tools.values():  # warm-up (page cache, dockerd, the store)
            tool(-1)
        deadline = time.monotonic() + 20  # the command server the warm-up started: ready to serve
        while not list((folder / "servers").glob("*.sock")) and time.monotonic() < deadline:
            time.sleep(0.1)
        tools["composer native run --rm"](-1)
        samples: dict[str, list[float]] = {name: [] for name in tools}
        for i in range(args.runs):
            for name, tool in tools.items():
                samples[name].append(tool(i))
        reference = statistics.median(samples["composer native run --rm"])
        print(f"{'tool':<34}{'median':>10}{'p90':>10}{'ratio':>9}   ({args.runs} runs each, interleaved)")
        for name, values in samples.items():
            ordered = sorted(values)
            median = statistics.median(values)
            p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
            print(f"{name:<34}{median * 1000:>8.1f}ms{p90 * 1000:>8.1f}ms{median / reference:>8.2f}x")
        print("ratio = tool / composer native (above 1: composer is faster)")
    finally:
        # run --rm keeps the project's network (as v2 does): down removes it, its DNS daemon and rules
        subprocess.run([str(BIN / "composer"), "--backend", "native", "-p", "bench", "down"], env=env, cwd=folder,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        from composer.cli.server import stop_servers

        stop_servers(str(folder / "servers"))
        subprocess.run(["rm", "-rf", str(folder)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
