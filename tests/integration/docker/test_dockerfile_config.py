"""The image configuration composer's Dockerfile frontend computes, side by side with what BuildKit
writes for the same Dockerfile (``DOCKER_BUILDKIT=1 docker build`` with Debian's docker CLI on the
real dockerd): the config fields and the history each instruction adds.

The Dockerfiles here change metadata only (no RUN, COPY or ADD: building filesystems is the
builder's, not the frontend's), so the whole image config is the frontend's work. The differences
allowed, each with its reason, are listed in ALLOWED_DIFFERENCES.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from composer.dockerfile.image_config import stage_config
from composer.dockerfile.instructions import build_stages
from composer.dockerfile.parser import parse
from composer.dockerfile.stages import global_scope, needed_stages

FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes", "Labels", "StopSignal",
          "Healthcheck", "Shell", "OnBuild")
ALLOWED_DIFFERENCES = {
    # BuildKit 0.8 (Debian's dockerd 20.10) marks shell-form CMD/ENTRYPOINT ArgsEscaped on Linux too;
    # BuildKit 0.11 and later set it only for Windows images, as composer does. Not compared.
    "ArgsEscaped",
}
DOCKERFILES = {
    "metadata": """ARG BASE={image}
FROM ${{BASE}}
ENV A=1 B="two words"
ENV C c value
ENV A=replaced D=$A-and-${{B}}
LABEL org.example.x="y z" other=1 from-env=$C
EXPOSE 80 443/udp ${{PORT:-8080}}
USER 1000:1000
WORKDIR /srv
WORKDIR app/$A
VOLUME ["/data", "/logs"]
VOLUME /cache
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["/bin/sh"]
CMD echo hi
ONBUILD RUN echo built
ARG LATE=x
ARG FROMARG
ENV L=$LATE F=${{FROMARG:-none}}
""",
    "entrypoint-clears-the-base-cmd": """FROM {image}
ENTRYPOINT echo "run $HOME"
""",
    "multi-stage-target": """ARG TAG=latest
FROM {image} AS base
ENV STAGE=base
HEALTHCHECK NONE
FROM base AS middle
ARG TAG
LABEL tag=$TAG
CMD ["middle"]
FROM {image}
CMD ["last"]
""",
}
TARGETS = {"multi-stage-target": "middle"}
BUILD_ARGS = {"metadata": {"FROMARG": "given"}, "multi-stage-target": {"TAG": "1.2"}}


def _docker(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["/usr/bin/docker", *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                            env={"DOCKER_BUILDKIT": "1", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    return result.stdout


def _history(api: Any, image: str) -> list[str]:
    """The image's history, oldest first, as ``created_by`` texts."""
    return [entry.get("CreatedBy", "") for entry in reversed(api.history(image))]


@pytest.mark.parametrize("case", sorted(DOCKERFILES))
def test_the_frontends_config_equals_buildkits(case: str, docker_api: Any, busybox_image: str,
                                               tmp_path: Path) -> None:
    text = DOCKERFILES[case].format(image=busybox_image)
    (tmp_path / "Dockerfile").write_text(text)
    tag = f"composer-frontend-{case}:{uuid.uuid4().hex[:8]}"
    target = TARGETS.get(case)
    build_args = BUILD_ARGS.get(case, {})
    argv = ["build", "-q", "-t", tag, *(["--target", target] if target else [])]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    try:
        _docker(*argv, ".", cwd=tmp_path)
        built = docker_api.inspect_image(tag)["Config"]
        theirs_history = _history(docker_api, tag)
    finally:
        subprocess.run(["/usr/bin/docker", "rmi", "-f", tag], capture_output=True, check=False)

    # composer's frontend: the same Dockerfile, the base image's config from the engine.
    dockerfile = build_stages(parse(text))
    scope = global_scope(dockerfile, build_args)
    base_config = docker_api.inspect_image(busybox_image)["Config"]
    base_history = [{"created_by": entry} for entry in _history(docker_api, busybox_image)]
    states: dict[int, Any] = {}
    for stage in needed_stages(dockerfile, target, build_args):
        parent = next((states[other.index] for other in dockerfile.stages[: stage.index] if other.name
                       and other.name == stage.base.lower()), None)
        config, history = (parent.config, parent.history) if parent else (base_config, base_history)
        states[stage.index] = stage_config(stage.commands, config, history, build_args, global_args=scope)
    ours = states[dockerfile.stage(target).index]

    for name in FIELDS:
        assert (name, ours.config.get(name) or None) == (name, built.get(name) or None)
    assert [entry["created_by"] for entry in ours.history] == theirs_history
    assert set(built) - set(FIELDS) - ALLOWED_DIFFERENCES <= {"Hostname", "Domainname", "AttachStdin",
                                                             "AttachStdout", "AttachStderr", "Tty", "OpenStdin",
                                                             "StdinOnce", "Image"}, json.dumps(built)
