"""``composer config``'s printing (composer/spec/render.py), checked against the v2 binary side by side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from composer.spec.render import to_json, to_yaml

V2_BINARY = Path(sys.prefix) / "bin" / "docker-compose"


def test_an_empty_sequence_in_an_extension_is_null_in_json_only() -> None:
    output = {"name": "p", "services": {}, "x-a": [], "x-b": {"list": [], "nested": [[], {}], "map": {}, "n": None}}
    assert json.loads(to_json(output)) == {"name": "p", "services": {}, "x-a": None,
                                           "x-b": {"list": None, "nested": [None, {}], "map": {}, "n": None}}
    assert "x-a: []" in to_yaml(output)  # v2's YAML keeps them
    assert output["x-a"] == []  # the output itself is left as it was


EXTENSIONS_FILE = """
services:
  app:
    image: busybox
    x-s: []
x-a: &a
  k:
  l: []
x-b: []
x-c: {}
x-d:
x-h: {a: [], b: [[]], c: {d: []}, e: {}}
x-i: [[], {}, [1]]
"""


@pytest.mark.skipif(not V2_BINARY.exists(), reason="the Compose v2 binary is installed by make install")
def test_extensions_print_as_v2_prints_them_side_by_side(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(EXTENSIONS_FILE)
    environment = {**os.environ, "COMPOSER_SERVER": "0", "PYTHONPATH": str(Path(__file__).parents[3])}
    outputs = []
    for command in ([str(V2_BINARY)], [sys.executable, "-m", "composer"]):
        result = subprocess.run([*command, "config", "--format", "json"], cwd=tmp_path, env=environment,
                                capture_output=True, text=True, timeout=60, check=True)
        outputs.append(json.loads(result.stdout))
    v2, ours = outputs
    assert ours == v2
    assert ours["x-b"] is None
    assert ours["x-h"]["b"] == [None]
