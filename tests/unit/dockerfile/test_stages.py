"""Which stages a target needs, and in which order."""

from __future__ import annotations

import pytest

from composer.dockerfile.instructions import build_stages
from composer.dockerfile.parser import DockerfileSyntaxError, parse
from composer.dockerfile.stages import global_scope, needed_stages, platform_args

MULTI = """ARG VARIANT=slim
ARG FROM_STAGE=deps
FROM debian:${VARIANT} AS base
FROM base AS deps
RUN make deps
FROM base AS unused
RUN sleep 100
FROM golang AS tools
FROM base AS build
COPY --from=${FROM_STAGE} /deps /deps
RUN --mount=type=bind,from=tools,target=/tools make
FROM scratch
COPY --from=build /out /
"""


def test_only_what_the_target_reads_is_built_in_dependency_order() -> None:
    dockerfile = build_stages(parse(MULTI))
    assert [stage.name for stage in needed_stages(dockerfile, None, {})] == ["base", "deps", "tools", "build", ""]
    assert [stage.name for stage in needed_stages(dockerfile, "deps", {})] == ["base", "deps"]
    assert [stage.name for stage in needed_stages(dockerfile, "unused", {})] == ["base", "unused"]
    # A build argument redirects a reference.
    assert [stage.name for stage in needed_stages(dockerfile, "build", {"FROM_STAGE": "unused"})] == [
        "base", "unused", "tools", "build"]


def test_global_args_take_the_build_arguments_then_their_defaults() -> None:
    dockerfile = build_stages(parse("ARG A=1\nARG B=${A}2\nARG C\nFROM x\n"))
    assert global_scope(dockerfile, {}) == {**platform_args(), "A": "1", "B": "12"}
    assert global_scope(dockerfile, {"A": "9", "C": "c"}) == {**platform_args(), "A": "9", "B": "92", "C": "c"}
    assert platform_args("linux/arm/v7")["TARGETVARIANT"] == "v7"
    assert global_scope(dockerfile, {})["BUILDPLATFORM"] == "linux/amd64"


def test_a_missing_target_and_a_forward_reference_are_refused() -> None:
    dockerfile = build_stages(parse(MULTI))
    with pytest.raises(DockerfileSyntaxError, match="target stage 'nope' could not be found"):
        needed_stages(dockerfile, "nope", {})
    forward = build_stages(parse("FROM a AS one\nCOPY --from=two / /\nFROM b AS two\n"))
    with pytest.raises(DockerfileSyntaxError, match="Dockerfile:2: stage 'two' is used before it is defined"):
        needed_stages(forward, "one", {})
