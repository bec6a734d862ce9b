"""The listing commands: ps, ls, images, top and port. Arguments in, engine calls, text out as
Compose v2 prints it; the rows they print (composer.cli.tables lays them out) are unit-tested."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from composer.cli.tables import combined_status, format_ports, human_size, table
from composer.errors import ComposerError, UsageError
from composer.units import human_duration

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import ImageSummary, ProjectSummary
    from composer.contract.observed import ObservedContainer, PortMapping

PS_STATUSES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")


def published_port(ports: Iterable[PortMapping], private_port: int, protocol: str) -> str | None:
    """``port``'s answer: ``host_ip:host_port`` of the first binding of the private port."""
    for port in ports:
        if port.private_port == private_port and port.protocol == protocol and port.host_port is not None:
            return f"{port.host_ip or '0.0.0.0'}:{port.host_port}"
    return None


def ps_rows(found: Sequence[ObservedContainer], now: float) -> list[list[str]]:
    rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
    for c in found:
        created = "" if c.created is None else f"{human_duration(max(0.0, now - c.created))} ago"
        command = json.dumps(_truncate(c.command, 20), ensure_ascii=False) if c.command else '""'
        rows.append([c.name, c.image, command, c.service_name, created, c.status_text or c.state,
                     format_ports(c.ports)])
    return rows


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def ps_json(found: Sequence[ObservedContainer], project_name: str, now: float) -> list[dict[str, Any]]:
    return [{
        "ID": c.container_id, "Name": c.name, "Names": c.name, "Image": c.image,
        "Command": json.dumps(c.command, ensure_ascii=False),
        "Project": project_name, "Service": c.service_name, "State": c.state, "Health": c.health or "",
        "ExitCode": c.exit_code or 0, "Status": c.status_text or c.state,
        "CreatedAt": "" if c.created is None else time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC",
                                                               time.gmtime(c.created)),
        "RunningFor": "" if c.created is None else f"{human_duration(max(0.0, now - c.created))} ago",
        "Ports": format_ports(c.ports),
        "Publishers": [{"URL": p.host_ip or "", "TargetPort": p.private_port, "PublishedPort": p.host_port or 0,
                        "Protocol": p.protocol} for p in c.ports],
        "OOMKilled": c.oom_killed,  # not in v2's; docker inspect's State.OOMKilled, here where ps shows state
    } for c in found]


def ls_rows(found: Sequence[ProjectSummary]) -> list[list[str]]:
    rows = [["NAME", "STATUS", "CONFIG FILES"]]
    rows += [[p.name, combined_status(p.states), ",".join(p.config_files)] for p in found]
    return rows


def images_rows(found: Sequence[ImageSummary], now: float) -> list[list[str]]:
    rows = [["CONTAINER", "REPOSITORY", "TAG", "PLATFORM", "IMAGE ID", "SIZE", "CREATED"]]
    for image in found:
        created = "" if image.created is None else f"{human_duration(max(0.0, now - image.created))} ago"
        rows.append([image.container_name, image.repository, image.tag, image.platform,
                     image.image_id.removeprefix("sha256:")[:12], human_size(image.size), created])
    return rows


def status_filters(statuses: Sequence[str], filters: Sequence[str]) -> set[str]:
    """The states ``ps --status`` and ``--filter status=...`` select.

    :raises UsageError: an unknown filter or state.
    """
    wanted = set(statuses)
    for entry in filters:
        key, sep, value = entry.partition("=")
        if key != "status" or not sep:
            raise UsageError(f"invalid filter {entry!r}: only status=<state> is supported")
        wanted.add(value)
    unknown = sorted(wanted - set(PS_STATUSES))
    if unknown:
        raise UsageError(f"invalid status {unknown[0]!r}: expected one of {', '.join(PS_STATUSES)}")
    return wanted


def run_ps(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()
    if project is not None:
        for name in args.services:
            project.service(name)
    wanted = status_filters(getattr(args, "status", []) or [], getattr(args, "filter", []) or [])
    include_stopped = args.all or bool(wanted)
    found = ctx.run(lambda backend: engine.containers(project_name, backend, include_stopped=include_stopped))
    found = sorted(found, key=lambda c: (c.service_name, c.oneoff, c.number, c.name))
    if args.services:
        found = [c for c in found if c.service_name in args.services]
    if wanted:
        found = [c for c in found if c.state in wanted]
    if args.list_services:
        for service_name in dict.fromkeys(c.service_name for c in found):
            print(service_name)
        return 0
    if args.quiet:
        for container in found:
            print(container.container_id)
        return 0
    now = time.time()
    if args.format == "json":
        print(json.dumps(ps_json(found, project_name, now)))
        return 0
    for line in table(ps_rows(found, now)):
        print(line)
    return 0


def run_port(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()
    container = ctx.run(lambda backend: engine.service_container(project_name, project, backend, args.service,
                                                                 args.index))
    found = published_port(container.ports, args.private_port, args.protocol)
    if found is None:
        published = ", ".join(f"{p.host_port}/{p.protocol}" for p in container.ports if p.host_port is not None)
        raise ComposerError(f"no port {args.private_port}/{args.protocol} for container {container.name}: "
                            f"{published}".rstrip(": "))
    print(found)
    return 0


def run_top(ctx: CommandContext) -> int:
    from composer import engine

    project, project_name = ctx.project_or_name()
    found = ctx.run(lambda backend: engine.top(project_name, project, backend, tuple(ctx.args.services)))
    titles: tuple[str, ...] = ()
    rows: list[list[str]] = []
    for container, processes in found:
        titles = titles or processes.titles
        rows += [[container.service_name, str(container.number), *process] for process in processes.processes]
    if not rows:
        return 0
    for line in table([["SERVICE", "#", *titles], *rows], padding=2):
        print(line)
    return 0


def run_ls(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    found = list(ctx.run(lambda backend: engine.projects(backend, include_stopped=args.all)))
    for entry in args.filter:
        key, sep, value = entry.partition("=")
        if key != "name" or not sep:
            raise UsageError(f"invalid filter {entry!r}: only name=<project> is supported")
        found = [p for p in found if value in p.name]
    if args.quiet:
        for summary in found:
            print(summary.name)
        return 0
    if args.format == "json":
        print(json.dumps([{"Name": p.name, "Status": combined_status(p.states),
                           "ConfigFiles": ",".join(p.config_files)} for p in found]))
        return 0
    for line in table(ls_rows(found), min_width=20):
        print(line)
    return 0


def run_images(ctx: CommandContext) -> int:
    from composer import engine

    args = ctx.args
    project, project_name = ctx.project_or_name()
    found = ctx.run(lambda backend: engine.images(project_name, project, backend, tuple(args.services)))
    if args.quiet:
        for image_id in dict.fromkeys(image.image_id.removeprefix("sha256:") for image in found):
            print(image_id)
        return 0
    if args.format == "json":
        print(json.dumps([{"ID": i.image_id, "ContainerName": i.container_name, "Repository": i.repository,
                           "Tag": i.tag, "Platform": i.platform, "Size": i.size,
                           "Created": i.created} for i in found]))
        return 0
    for line in table(images_rows(found, time.time()), min_width=20):
        print(line)
    return 0
