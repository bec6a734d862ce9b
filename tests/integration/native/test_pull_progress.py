"""A pull's progress on the native backend, through the real CLI: on a real pseudo-terminal each
layer's line fills its bar and counts its bytes while it downloads and extracts (as v2 and docker
draw a pull by dockerd), and ``--progress json`` carries v2 2.40's current/total/percent.

The image has a layer of 48 MB of random data (gzip: as large packed), big enough that fetching
and unpacking it spans several 0.1 s frames on loopback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from composer.backends.native.image import oci
from tests.integration.native.conftest import pusher
from tests.integration.registry import LocalRegistry
from tests.integration.terminal import Terminal
from tests.integration.timeouts import scaled
from tests.support import oci_images as oi

SIZES = {"B": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}
ROW = re.compile(r"Layer ([0-9a-f]{12})  (Downloading|Download complete|Extracting|Pull complete)"
                 r"(?: \[=*>\s*\]\s+([\d.]+)(B|kB|MB|GB)/([\d.]+)(B|kB|MB|GB))?")


class Pulled:
    def __init__(self, folder: Path, reference: str, layer: str, size: int) -> None:
        self.folder = folder
        self.reference = reference
        self.layer = layer  # the big layer's 12 hex, as the CLI names it
        self.size = size  # its blob's size, as the manifest says
        self.environ = {**os.environ, "COMPOSER_ROOT": str(folder / "store"), "COMPOSER_RUN_ROOT": str(folder / "run"),
                        "COMPOSER_REGISTRY_CONFIG": str(folder / "no-registries.json"), "COMPOSER_SERVER": "0",
                        "NO_COLOR": "1"}
        self.environ.pop("COMPOSER_REGISTRY_MIRRORS", None)
        self.environ.pop("COMPOSE_PROGRESS", None)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "composer", "--backend", "native", "-p", "progress", *args, "pull"]


@pytest.fixture(scope="module")
def big_image(local_registry: LocalRegistry) -> tuple[str, oi.Image]:
    image = oi.make_image([oi.busybox_layer(), oi.tar_bytes([oi.file("big", os.urandom(48 << 20))])])
    reference = local_registry.reference(f"composer-native/progress{uuid.uuid4().hex[:8]}", "1")
    oi.push_image(pusher(local_registry.host), reference, image)
    return reference, image


@pytest.fixture
def pulled(big_image: tuple[str, oi.Image], tmp_path: Path) -> Pulled:
    reference, image = big_image
    (tmp_path / "compose.yaml").write_text(f"services:\n  big:\n    image: {reference}\n")
    digest = image.layer_digests[1]
    return Pulled(tmp_path, reference, oci.digest_hex(digest)[:12], len(image.blobs[digest]))


def size(number: str, unit: str) -> float:
    return float(number) * SIZES[unit]


def test_a_pull_on_a_terminal_fills_each_layers_bar_with_its_bytes(pulled: Pulled) -> None:
    terminal = Terminal(pulled.command(), env=pulled.environ, cwd=pulled.folder, rows=40, columns=140)
    try:
        assert terminal.wait(120) == 0, terminal.output.decode(errors="replace")
        terminal.reader.join(10)
        output = terminal.output.decode()
    finally:
        terminal.close()
    frames = [frame for frame in re.split(r"\x1b\[\d+F", output) if frame.strip()]
    seen: list[tuple[str, float, float]] = []  # the big layer's (text, bytes, total) in each frame, in order
    for frame in frames:
        for found in ROW.finditer(frame):
            if found.group(1) != pulled.layer:
                continue
            text = found.group(2).replace("Download complete", "Downloading")  # its bar is full
            if text == "Pull complete":
                seen.append((text, 0, 0))
            elif found.group(3):
                seen.append((text, size(found.group(3), found.group(4)), size(found.group(5), found.group(6))))
    done = next(i for i, (text, _, _) in enumerate(seen) if text == "Pull complete")
    before = seen[:done]
    for phase in ("Downloading", "Extracting"):
        counts = [current for text, current, _ in before if text == phase]
        assert len(set(counts)) >= 2, (phase, len(frames), seen)  # several frames, with a growing count
        assert counts == sorted(counts), (phase, seen)
        assert counts[-1] > counts[0]
    assert {round(total / 1e4) for text, _, total in before} == {round(pulled.size / 1e4)}  # 4 digits, as v2
    rows = [row for frame in frames for row in frame.split("\r\n")]
    assert all(len(row.removeprefix("\x1b[2K")) < 140 for row in rows)  # no row wraps


def test_json_progress_carries_current_total_and_percent(pulled: Pulled) -> None:
    result = subprocess.run(pulled.command("--progress", "json"), cwd=pulled.folder, env=pulled.environ,
                            capture_output=True, text=True, timeout=scaled(120))
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stderr.splitlines()]
    layer = [event for event in events if event["id"] == f"layer:{pulled.layer}"]
    assert all(event["parent_id"] == f"image:{pulled.reference}" for event in layer)
    assert all(event["total"] == pulled.size for event in layer)
    for phase in ("Downloading", "Extracting"):
        counted = [event for event in layer if event["text"] == phase]
        currents = [event["current"] for event in counted]
        assert len(currents) >= 2, layer
        assert currents == sorted(currents)
        assert currents[-1] == pulled.size  # the last byte is always told
        assert [event["percent"] for event in counted] == [current * 100 // pulled.size for current in currents]
    assert layer[-1]["text"] == "Pull complete"
    assert layer[-1]["percent"] == 100
    pulled_event = events[-1]
    assert (pulled_event["id"], pulled_event["status"], pulled_event["text"]) == (
        f"image:{pulled.reference}", "done", "Pulled")
