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


YAML_FILE = """
services:
  app:
    image: busybox
    x-s: []
    x-t: {a: null}
    command: []
    init: false
    deploy:
      replicas: 2
    depends_on:
      db: {condition: service_started, x-why: order}
    blkio_config:
      device_read_bps: [{path: /dev/sda, rate: 1mb}]
    develop:
      watch:
        - {path: ./src, action: sync, target: /src, x-note: n}
    networks:
      front: {x-net: null}
  db:
    image: busybox
networks:
  front:
    x-n: [1]
models:
  llm: {model: ai/smollm2}
x-b: []
"""


@pytest.mark.skipif(not V2_BINARY.exists(), reason="the Compose v2 binary is installed by make install")
def test_the_yaml_is_v2s_yaml_not_its_json_side_by_side(tmp_path: Path) -> None:
    """v2's two printers differ: its YAML keeps each struct's x- keys and the models, and leaves
    out empty structs (ipam, deploy's placement, a watch rule's exec) and unset command/entrypoint."""
    from ruamel.yaml import YAML

    (tmp_path / "compose.yaml").write_text(YAML_FILE)
    (tmp_path / "src").mkdir()
    environment = {**os.environ, "COMPOSER_SERVER": "0", "PYTHONPATH": str(Path(__file__).parents[3])}
    outputs = []
    for command in ([str(V2_BINARY)], [sys.executable, "-m", "composer"]):
        result = subprocess.run([*command, "config"], cwd=tmp_path, env=environment, capture_output=True, text=True,
                                timeout=60, check=True)
        outputs.append(YAML(typ="safe").load(result.stdout))
    v2, ours = outputs
    assert ours == v2
    assert ours["services"]["app"]["x-s"] == []
    assert "command" not in ours["services"]["db"]
    assert "ipam" not in ours["networks"]["front"]
