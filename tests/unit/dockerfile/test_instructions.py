"""Typed commands and stages from a parsed Dockerfile, with BuildKit's checks and messages."""

from __future__ import annotations

import pytest

from composer.dockerfile.instructions import (
    ArgCommand,
    CmdCommand,
    CopyCommand,
    EnvCommand,
    HealthcheckCommand,
    KeyValue,
    RunCommand,
    WordsCommand,
    build_stages,
)
from composer.dockerfile.parser import DockerfileSyntaxError, parse


def stages(text: str) -> object:
    return build_stages(parse(text))


def test_global_args_stages_and_commands() -> None:
    dockerfile = build_stages(parse("""ARG BASE=debian
ARG TAG
FROM $BASE:${TAG:-12} AS Build
ENV A=1 B="two words"
RUN --mount=type=cache,target=/root/.cache --network=none make
COPY --from=other --chown=1000:1000 --chmod=0644 --link --exclude=*.tmp --exclude=.git a b /dst/
CMD ["serve", "--port", "80"]
ENTRYPOINT run me
HEALTHCHECK --interval=5s --retries=2 CMD curl -f http://localhost/
FROM scratch
COPY --from=build /out /
EXPOSE 80/udp 443
ONBUILD RUN echo hi
"""))
    assert [(arg.args) for arg in dockerfile.global_args] == [(("BASE", "debian"),), (("TAG", None),)]
    build, final = dockerfile.stages
    assert (build.index, build.name, build.base, build.line) == (0, "build", "$BASE:${TAG:-12}", 3)
    env, run, copy, cmd, entrypoint, health = build.commands
    assert isinstance(env, EnvCommand)
    assert env.pairs == (KeyValue("A", "1"), KeyValue("B", '"two words"'))
    assert isinstance(run, RunCommand)
    assert (run.mounts, run.network, run.command.args, run.command.prepend_shell) == (
        ("type=cache,target=/root/.cache",), "none", ("make",), True)
    assert isinstance(copy, CopyCommand)
    assert (copy.sources, copy.destination, copy.from_, copy.chown, copy.chmod, copy.link, copy.excludes) == (
        ("a", "b"), "/dst/", "other", "1000:1000", "0644", True, ("*.tmp", ".git"))
    assert isinstance(cmd, CmdCommand)
    assert (cmd.command.args, cmd.command.prepend_shell) == (("serve", "--port", "80"), False)
    assert isinstance(entrypoint, CmdCommand)
    assert (entrypoint.name, entrypoint.command.args) == ("ENTRYPOINT", ("run me",))
    assert isinstance(health, HealthcheckCommand)
    assert (health.test, health.interval, health.retries) == (("CMD-SHELL", "curl -f http://localhost/"), "5s", 2)
    expose, onbuild = final.commands[1:]
    assert isinstance(expose, WordsCommand)
    assert expose.words == ("443", "80/udp")  # sorted, as BuildKit
    assert isinstance(onbuild, WordsCommand)
    assert onbuild.words == ("RUN echo hi",)
    assert dockerfile.stage(None) is final
    assert dockerfile.stage("BUILD") is build


def test_heredoc_sources_of_copy() -> None:
    dockerfile = build_stages(parse("FROM a\nCOPY <<EOF <<'RAW' /etc/\nhello $name\nEOF\n$kept\nRAW\n"))
    copy = dockerfile.stages[0].commands[0]
    assert isinstance(copy, CopyCommand)
    assert copy.sources == ()
    assert [(item.path, item.content, item.expand) for item in copy.inline] == [
        ("EOF", "hello $name\n", True), ("RAW", "$kept\n", False)]


@pytest.mark.parametrize(("text", "message"), [
    ("FROM a\nFOO bar\n", "Dockerfile:2: unknown instruction: FOO"),
    ("FROM a\nCOPY --nope=1 a b\n", "Dockerfile:2: unknown flag: nope"),
    ("FROM a\nADD --from=x a b\n", "Dockerfile:2: unknown flag: from"),
    ("FROM a\nCOPY a\n", "Dockerfile:2: COPY requires at least two arguments, but only one was provided"),
    ("FROM a\nCOPY a <<EOF\nx\nEOF\n", "COPY cannot accept a heredoc as a destination"),
    ("FROM a\nCOPY --link=maybe a b\n", "expecting boolean value for flag link, not: maybe"),
    ("FROM a\nCOPY --from=x --from=y a b\n", "duplicate flag specified: from"),
    ("FROM a\nSTOPSIGNAL\n", "Dockerfile:2: STOPSIGNAL requires exactly one argument"),
    ("FROM a\nWORKDIR\n", "WORKDIR requires exactly one argument"),
    ("FROM a\nSHELL sh -c\n", "SHELL requires the arguments to be in JSON form"),
    ("FROM a\nHEALTHCHECK CONNECT x\n", 'Unknown type "CONNECT" in HEALTHCHECK'),
    ("FROM a\nHEALTHCHECK NONE x\n", "HEALTHCHECK NONE takes no arguments"),
    ("FROM a\nHEALTHCHECK --retries=-1 CMD x\n", r"--retries cannot be negative \(-1\)"),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"),
    ("FROM a\nONBUILD FROM b\n", "FROM isn't allowed as an ONBUILD trigger"),
    ("FROM a AS 1st\n", 'invalid name for build stage: "1st"'),
    ("FROM a b\n", "FROM requires either one or three arguments"),
    ("RUN x\nFROM a\n", "Dockerfile:1: no build stage in current context"),
    ("FROM a AS x\nFROM b AS x\n", "Dockerfile:2: duplicate stage name 'x'"),
    ("ARG =x\nFROM a\n", "ARG names can not be blank"),
])
def test_errors_as_buildkit_words_them(text: str, message: str) -> None:
    with pytest.raises(DockerfileSyntaxError, match=message):
        stages(text)


def test_arg_in_a_stage_is_a_command() -> None:
    dockerfile = build_stages(parse("FROM a\nARG X=1 Y\n"))
    arg = dockerfile.stages[0].commands[0]
    assert isinstance(arg, ArgCommand)
    assert arg.args == (("X", "1"), ("Y", None))
