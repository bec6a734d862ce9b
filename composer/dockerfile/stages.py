"""Which stages a build needs, in which order: the target's stage and, transitively, every stage
it is built FROM, COPYs ``--from`` or mounts ``from=``. Stages nothing needs are not built (as
BuildKit skips them), and the order lets independent stages build in parallel.

FROM's image is expanded with the global ARGs (those before the first FROM, with the build
arguments given); ``--from`` values with the global ARGs too, as BuildKit does for stage
references.
"""

from __future__ import annotations

from collections.abc import Mapping

from composer.dockerfile.expand import ExpansionError, expand_word
from composer.dockerfile.instructions import CopyCommand, Dockerfile, RunCommand, Stage
from composer.dockerfile.parser import DockerfileSyntaxError

HOST_PLATFORM = "linux/amd64"  # what the builders build on and for (other platforms are refused)


def platform_args(platform: str = HOST_PLATFORM) -> dict[str, str]:
    """BuildKit's predefined platform ARGs for a build on and for ``platform``: usable in FROM
    without an ARG, and the value of a stage's ``ARG TARGETPLATFORM`` (BUILD*, TARGET*)."""
    os_name, architecture, *rest = platform.split("/")
    values: dict[str, str] = {}
    for prefix in ("BUILD", "TARGET"):
        values.update({f"{prefix}PLATFORM": platform, f"{prefix}OS": os_name, f"{prefix}ARCH": architecture,
                       f"{prefix}VARIANT": rest[0] if rest else ""})
    return values


def global_scope(dockerfile: Dockerfile, build_args: Mapping[str, str]) -> dict[str, str]:
    """The global ARGs' values: the build argument given, else the default (expanded with the
    ARGs before it); an ARG without either is not set. BuildKit's platform ARGs are there too,
    without an ARG."""
    scope: dict[str, str] = platform_args()
    for command in dockerfile.global_args:
        for name, default in command.args:
            if name in build_args:
                scope[name] = build_args[name]
            elif default is not None:
                scope[name] = _expand(dockerfile, command.line, default, scope)
    return scope


def _expand(dockerfile: Dockerfile, line: int, word: str, scope: Mapping[str, str]) -> str:
    try:
        return expand_word(word, scope, escape=dockerfile.escape)
    except ExpansionError as exc:
        raise DockerfileSyntaxError(str(exc), line=line, path=dockerfile.path) from None


def _reference(dockerfile: Dockerfile, name: str) -> Stage | None:
    """The stage a FROM or --from names (a stage name, or an index), or None for an image."""
    lowered = name.lower()
    for stage in dockerfile.stages:
        if stage.name and stage.name == lowered:
            return stage
    if name.isdigit() and int(name) < len(dockerfile.stages):
        return dockerfile.stages[int(name)]
    return None


def _mount_sources(mount: str) -> list[str]:
    """The ``from=`` of a ``--mount`` value (``type=bind,from=build,target=/src``)."""
    return [part.partition("=")[2] for part in mount.split(",") if part.partition("=")[0].strip() == "from"]


def dependencies(dockerfile: Dockerfile, stage: Stage, scope: Mapping[str, str]) -> list[Stage]:
    """The stages ``stage`` reads directly: its base, and the sources of its COPY --from and
    RUN --mount from=.

    :raises DockerfileSyntaxError: a stage refers to itself or to a later stage.
    """
    found: list[Stage] = []
    references = [(stage.line, _expand(dockerfile, stage.line, stage.base, scope))]
    for command in stage.commands:
        if isinstance(command, CopyCommand) and command.from_:
            references.append((command.line, _expand(dockerfile, command.line, command.from_, scope)))
        if isinstance(command, RunCommand):
            references += [(command.line, _expand(dockerfile, command.line, source, scope))
                           for mount in command.mounts for source in _mount_sources(mount)]
    for line, name in references:
        other = _reference(dockerfile, name)
        if other is None:
            continue
        if other.index >= stage.index:
            raise DockerfileSyntaxError(f"stage {name!r} is used before it is defined (or by itself)", line=line,
                                        path=dockerfile.path)
        if other not in found:
            found.append(other)
    return found


def needed_stages(dockerfile: Dockerfile, target: str | None, build_args: Mapping[str, str]) -> list[Stage]:
    """The stages building ``target`` (the last stage when None) takes, each after those it reads,
    by stage index where the order is free.

    :raises DockerfileSyntaxError: the target does not exist, or a reference goes forward.
    """
    scope = global_scope(dockerfile, build_args)
    wanted: dict[int, Stage] = {}
    pending = [dockerfile.stage(target)]
    while pending:
        stage = pending.pop()
        if stage.index in wanted:
            continue
        wanted[stage.index] = stage
        pending += dependencies(dockerfile, stage, scope)
    return [wanted[index] for index in sorted(wanted)]  # references only go backwards: index order is topological
