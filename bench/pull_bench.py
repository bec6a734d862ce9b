"""Time a pull of a multi-layer image from a local registry: composer's native backend against
`docker pull`, on the same registry, in the same run.

The image is made here from local material: FROM scratch, one COPY per layer of pseudo-random
files (incompressible, so gzip has real work to undo) plus a text layer, built by dockerd and
pushed to Debian's docker-registry started on 127.0.0.1 (tests.integration.registry). Each tool
pulls it once untimed; then the tools alternate (order swapping every run), --runs times each.
Before every composer run COMPOSER_ROOT is a fresh empty directory; before every docker run the
image is removed from dockerd (and the build's local copy too, so no layer "Already exists").
Each run is checked: composer's store has the image, dockerd has it with the same diff_ids.

Usage: .venv/bin/python bench/pull_bench.py [--runs N] [--layers N] [--layer-mib N] [--composer PATH]
Exit status: 0 when every run of both tools succeeded, 1 otherwise. Timings are reported, never asserted.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
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

from tests.integration.registry import LocalRegistry, binary  # noqa: E402


def build_context(layers: int, layer_mib: float, seed: int = 7) -> io.BytesIO:
    """A build context (tar) whose Dockerfile makes ``layers`` random layers and one text layer."""
    rng = random.Random(seed)
    lines = ["FROM scratch"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as context:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            context.addfile(info, io.BytesIO(data))

        for layer in range(layers):
            size = int(layer_mib * (1 << 20) * (0.6 + 0.8 * layer / max(1, layers - 1)))
            for part in range(4):
                add(f"l{layer}/blob{part}.bin", rng.randbytes(size // 4))
            lines.append(f"COPY l{layer} /data/l{layer}")
        text = "\n".join(f"line {i}: {rng.random()} the quick brown fox" for i in range(60000)).encode()
        add("text/words.txt", text)
        lines.append("COPY text /data/text")
        add("Dockerfile", ("\n".join(lines) + "\n").encode())
    buffer.seek(0)
    return buffer


def make_image(api: Any, registry: LocalRegistry, layers: int, layer_mib: float) -> tuple[str, list[str], int]:
    """Build, push, and drop the local copy; (reference, diff_ids, compressed bytes)."""
    from tests.integration.registry import push

    tag = f"composer-bench/pull-{uuid.uuid4().hex[:8]}:1"
    for message in api.build(fileobj=build_context(layers, layer_mib), custom_context=True, tag=tag, rm=True,
                             decode=True):
        if message.get("error"):
            raise RuntimeError(f"building the bench image: {message['error']}")
    diff_ids = list(api.inspect_image(tag)["RootFS"]["Layers"])
    reference = registry.reference(tag.split(":")[0], "1")
    push(api, tag, reference)
    api.remove_image(tag, force=True)
    manifest = json.loads(subprocess.run(
        ["curl", "-sf", "-H", "Accept: application/vnd.docker.distribution.manifest.v2+json",
         f"http://{registry.host}/v2/{tag.split(':')[0]}/manifests/1"], capture_output=True, check=True).stdout)
    return reference, diff_ids, sum(int(layer["size"]) for layer in manifest["layers"])


def remove_from_docker(api: Any, reference: str) -> None:
    try:
        api.remove_image(reference, force=True)
    except Exception:  # absent already
        pass


def time_command(argv: list[str], env: dict[str, str]) -> tuple[int, float, bytes]:
    start = time.perf_counter()
    done = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    return done.returncode, time.perf_counter() - start, done.stderr


def composer_run(composer: Path, folder: Path, reference: str, diff_ids: list[str],
                 env: dict[str, str]) -> float | None:
    root = folder / "root"
    shutil.rmtree(root, ignore_errors=True)
    run_env = {**env, "COMPOSER_ROOT": str(root)}
    rc, seconds, err = time_command([str(composer), "--backend", "native", "--progress", "quiet", "-f",
                                     str(folder / "compose.yaml"), "pull"], run_env)
    ok = rc == 0
    if ok:
        from composer.backends.native.image.store import ImageStore
        from composer.image_reference import parse

        store = ImageStore(root)
        record = store.get(str(parse(reference)))
        ok = record is not None and store.config(record)["rootfs"]["diff_ids"] == diff_ids
    shutil.rmtree(root, ignore_errors=True)
    if not ok:
        out(f"FAIL composer (exit {rc}): {err.decode(errors='replace').strip()[-400:]}")
        return None
    return seconds


def docker_run(api: Any, reference: str, diff_ids: list[str], env: dict[str, str]) -> float | None:
    remove_from_docker(api, reference)
    rc, seconds, err = time_command(["docker", "pull", "-q", reference], env)
    ok = rc == 0 and list(api.inspect_image(reference)["RootFS"]["Layers"]) == diff_ids
    remove_from_docker(api, reference)
    if not ok:
        out(f"FAIL docker pull (exit {rc}): {err.decode(errors='replace').strip()[-400:]}")
        return None
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=7, help="timed runs per tool (default 7)")
    parser.add_argument("--layers", type=int, default=6, help="random layers (default 6, plus a text layer)")
    parser.add_argument("--layer-mib", type=float, default=3.0, help="mean MiB per random layer (default 3)")
    parser.add_argument("--composer", help=f"composer executable (default {BIN / 'composer'})")
    args = parser.parse_args()

    from composer.backends.docker.client import connect_from_env

    composer = Path(args.composer).absolute() if args.composer else BIN / "composer"
    executable = binary()
    if executable is None or shutil.which("docker") is None:
        out("FAIL: needs Debian's docker-registry and the docker CLI")
        return 1
    out(f"composer: {composer}")
    out(f"cpus: {os.cpu_count()}, load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    api = connect_from_env()
    env = dict(os.environ)
    times: dict[str, list[float]] = {"composer": [], "docker": []}
    failed = False
    reference = ""
    with LocalRegistry(executable) as registry, tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp:
        try:
            reference, diff_ids, packed = make_image(api, registry, args.layers, args.layer_mib)
            out(f"image: {reference}: {len(diff_ids)} layers, {packed / (1 << 20):.1f} MiB compressed")
            folder = Path(tmp)
            (folder / "compose.yaml").write_text(f"services:\n  app:\n    image: {reference}\n")
            runners: dict[str, Callable[[], float | None]] = {
                "composer": lambda: composer_run(composer, folder, reference, diff_ids, env),
                       "docker": lambda: docker_run(api, reference, diff_ids, env)}
            for runner in runners.values():  # untimed warm-up: does it work at all
                if runner() is None:
                    failed = True
            order = list(runners)
            for run in range(args.runs if not failed else 0):
                for name in order if run % 2 == 0 else order[::-1]:
                    seconds = runners[name]()
                    if seconds is None:
                        failed = True
                        continue
                    times[name].append(seconds)
        finally:
            if reference:
                remove_from_docker(api, reference)
            api.close()
    if times["composer"] and times["docker"]:
        median_c, median_d = statistics.median(times["composer"]), statistics.median(times["docker"])
        out()
        out(f"pull of {reference.split('/', 1)[1]} over {args.runs} runs each (tools alternating):")
        out(f"  docker pull      median {median_d:.3f} s   runs {' '.join(f'{t:.3f}' for t in times['docker'])}")
        out(f"  composer native  median {median_c:.3f} s   runs {' '.join(f'{t:.3f}' for t in times['composer'])}")
        out(f"  ratio composer/docker: {fmt_ratio(median_c, median_d)} (below 1: composer is faster)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
