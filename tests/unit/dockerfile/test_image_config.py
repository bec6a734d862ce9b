"""The image config a stage's metadata instructions produce (checked against BuildKit itself in
tests/integration/docker/test_dockerfile_config.py); here the rules that need no engine."""

from __future__ import annotations

import pytest

from composer.dockerfile.image_config import nanoseconds, stage_config
from composer.dockerfile.instructions import build_stages
from composer.dockerfile.parser import DockerfileSyntaxError, parse


def _config(text: str, base: dict[str, object] | None = None, **build_args: str) -> dict[str, object]:
    dockerfile = build_stages(parse(text))
    stage = dockerfile.stages[-1]
    return stage_config(stage.commands, base, [], build_args).config


def test_scratch_gets_the_default_path_and_env_replaces_in_place() -> None:
    config = _config("FROM scratch\nENV A=1 PATH=/bin:$PATH\nENV A=2\n")
    assert config["Env"] == ["PATH=/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=2"]


def test_workdir_is_relative_to_the_previous_one_and_cleaned() -> None:
    assert _config("FROM a\nWORKDIR /a\nWORKDIR b/../c/\n", {"WorkingDir": ""})["WorkingDir"] == "/a/c"


def test_build_arguments_reach_only_declared_args() -> None:
    config = _config("FROM a\nENV X=$UNDECLARED Y=${DECLARED}\nARG DECLARED\nENV Z=$DECLARED\n",
                     UNDECLARED="u", DECLARED="d")
    assert config["Env"][-3:] == ["X=", "Y=", "Z=d"]  # type: ignore[index]


def test_go_durations() -> None:
    assert nanoseconds("1m30s") == 90_000_000_000
    assert nanoseconds("1.5h") == 5_400_000_000_000
    assert nanoseconds("250ms") == 250_000_000
    with pytest.raises(ValueError, match="invalid duration"):
        nanoseconds("5 seconds")
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: time: invalid duration"):
        _config("FROM a\nHEALTHCHECK --interval=soon CMD true\n")
