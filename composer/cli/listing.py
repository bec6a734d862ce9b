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
    from composer.contract.observed import ObservedContainer, ObservedVolume, PortMapping

PS_STATUSES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")


def published_port(ports: Iterable[PortMapping], private_port: int, protocol: str) -> str | None:
    """``port``'s answer: ``host_ip:host_port`` of the first binding of the private port."""
    for port in ports:
        if port.private_port == private_port and port.protocol == protocol and port.host_port is not None:
            return f"{port.host_ip or '0.0.0.0'}:{port.host_port}"
    return None


PS_TABLE = "table {{.Name}}\t{{.Image}}\t{{.Command}}\t{{.Service}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}"
PS_HEADERS = {"Command": "COMMAND", "CreatedAt": "CREATED AT", "ExitCode": "EXIT CODE", "Health": "HEALTH",
              "ID": "CONTAINER ID", "Image": "IMAGE", "Name": "NAME", "Names": "NAMES", "Ports": "PORTS",
              "Project": "PROJECT", "Publishers": "PUBLISHERS", "RunningFor": "CREATED", "Service": "SERVICE",
              "State": "STATE", "Status": "STATUS", "Labels": "LABELS", "LocalVolumes": "LOCAL VOLUMES",
              "Mounts": "MOUNTS", "Networks": "NETWORKS", "Size": "SIZE"}


def ps_rows(found: Sequence[ObservedContainer], now: float, *, no_trunc: bool = False) -> list[list[str]]:
    rows = [["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"]]
    for c in found:
        created = "" if c.created is None else f"{human_duration(max(0.0, now - c.created))} ago"
        command = json.dumps(c.command if no_trunc else _truncate(c.command, 20), ensure_ascii=False)
        rows.append([c.name, c.image, command, c.service_name, created, c.status_text or c.state,
                     format_ports(c.ports)])
    return rows


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def ps_json(found: Sequence[ObservedContainer], project_name: str, now: float, *,
            no_trunc: bool = True) -> list[dict[str, Any]]:
    """v2's fields of each container, in its order (sorted); the id, the command and the mounts
    truncated as v2 truncates them unless ``no_trunc``; Size as v2 shows it without ``--size``."""
    return [{
        "Command": json.dumps(c.command if no_trunc else _truncate(c.command, 20), ensure_ascii=False),
        "CreatedAt": "" if c.created is None else time.strftime("%Y-%m-%d %H:%M:%S +0000 UTC",
                                                               time.gmtime(c.created)),
        "ExitCode": c.exit_code or 0, "Health": c.health or "",
        "ID": c.container_id if no_trunc else c.container_id[:12], "Image": c.image,
        "Labels": ",".join(f"{key}={value}" for key, value in c.labels), "LocalVolumes": str(c.local_volumes),
        "Mounts": ",".join(name if no_trunc else _truncate(name, 15) for name in c.mounts),
        "Name": c.name, "Names": c.name, "Networks": ",".join(c.networks), "Ports": format_ports(c.ports),
        "Project": project_name,
        "Publishers": [{"URL": p.host_ip or "", "TargetPort": p.private_port, "PublishedPort": p.host_port or 0,
                        "Protocol": p.protocol} for p in c.ports],
        "RunningFor": "" if c.created is None else f"{human_duration(max(0.0, now - c.created))} ago",
        "Service": c.service_name, "Size": "0B", "State": c.state, "Status": c.status_text or c.state,
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
    if not args.orphans and project is not None:  # --orphans=false: only the project's own services
        found = [c for c in found if c.service_name in project.services]
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
    if args.format == "table":
        for line in table(ps_rows(found, now, no_trunc=args.no_trunc)):
            print(line)
        return 0
    from composer.cli.templates import render

    rows = ps_json(found, project_name, now, no_trunc=args.no_trunc)
    for line in render(args.format, rows, default_table=PS_TABLE, headers=PS_HEADERS):
        print(line)
    return 0


VOLUMES_TABLE = "table {{.Driver}}\t{{.Name}}"
VOLUMES_HEADERS = {"Availability": "AVAILABILITY", "Driver": "DRIVER", "Group": "GROUP", "Labels": "LABELS",
                   "Links": "LINKS", "Mountpoint": "MOUNTPOINT", "Name": "VOLUME NAME", "Scope": "SCOPE",
                   "Size": "SIZE", "Status": "STATUS"}


def volume_rows(found: Sequence[ObservedVolume]) -> list[dict[str, str]]:
    """``docker volume ls``'s fields of each volume (v2's ``volumes --format json``)."""
    return [{"Availability": "N/A", "Driver": v.driver, "Group": "N/A",
             "Labels": ",".join(f"{key}={value}" for key, value in v.labels), "Links": "N/A",
             "Mountpoint": v.mountpoint, "Name": v.name, "Scope": v.scope, "Size": "N/A", "Status": "N/A"}
            for v in found]


def run_volumes(ctx: CommandContext) -> int:
    from composer import engine
    from composer.cli.templates import render

    args = ctx.args
    project, project_name = ctx.project_or_name()
    if project is not None:
        for name in args.services:
            project.service(name)
    if args.format not in ("table", "json"):
        from composer.cli.templates import parse

        parse(args.format)
    found = ctx.run(lambda backend: engine.volumes(project_name, backend, tuple(args.services)))
    if args.quiet:
        for volume in found:
            print(volume.name)
        return 0
    for line in render(args.format, volume_rows(found), default_table=VOLUMES_TABLE, headers=VOLUMES_HEADERS):
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
