"""CLI glue for the container commands: ps, start, restart, kill, rm, pause, unpause, create,
wait, port, top, ls, images, exec, cp and run. Arguments in, engine calls, text out as Compose
v2 prints it; the pure renderers (tables, durations, sizes, ports) are unit-tested."""

from __future__ import annotations

import argparse
import io
import json
import os
import posixpath
import sys
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from composer.cli.lifecycle import _load_project, _run, _scale
from composer.errors import ComposerError, UsageError

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ImageSummary, ProjectSummary, Streams
    from composer.contract.observed import ObservedContainer, PortMapping
    from composer.spec.models import Project

PS_STATUSES = ("paused", "restarting", "removing", "running", "dead", "created", "exited")


# --- pure renderers -------------------------------------------------------------------------------


def table(rows: Sequence[Sequence[str]], *, padding: int = 3, min_width: int = 0) -> list[str]:
    """Columns as Go's tabwriter lays them out: each cell padded to its column's width plus
    ``padding`` (at least ``min_width``); the last column unpadded, trailing spaces dropped."""
    if not rows:
        return []
    count = max(len(row) for row in rows)
    widths = [max(min_width, max(len(row[i]) if i < len(row) else 0 for row in rows) + padding)
              for i in range(count)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return lines


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration, which ``docker ps`` and v2 use ("2 seconds", "About a minute")."""
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_size(size: float) -> str:
    """go-units' HumanSizeWithPrecision(size, 3): decimal units, three significant digits."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.3g}{units[index]}"


def format_ports(ports: Iterable[PortMapping]) -> str:
    """``0.0.0.0:32768->80/tcp, [::]:32768->80/tcp``, or ``80/tcp`` for an exposed port."""
    parts = []
    for port in ports:
        if port.host_port is None:
            parts.append(f"{port.private_port}/{port.protocol}")
            continue
        host = port.host_ip or "0.0.0.0"
        host = f"[{host}]" if ":" in host else host
        parts.append(f"{host}:{port.host_port}->{port.private_port}/{port.protocol}")
    return ", ".join(dict.fromkeys(parts))


def published_port(ports: Iterable[PortMapping], private_port: int, protocol: str) -> str | None:
    """``port``'s answer: ``host_ip:host_port`` of the first binding of the private port."""
    for port in ports:
        if port.private_port == private_port and port.protocol == protocol and port.host_port is not None:
            return f"{port.host_ip or '0.0.0.0'}:{port.host_port}"
    return None


def combined_status(states: Iterable[str]) -> str:
    """v2's project status: ``running(2)``, ``exited(1), running(1)`` (states sorted)."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{state}({counts[state]})" for state in sorted(counts))


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


def parse_env(entries: Iterable[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """``KEY=VALUE`` entries; a bare ``KEY`` takes the value from the environment (skipped if unset)."""
    source = os.environ if environ is None else environ
    result: dict[str, str] = {}
    for entry in entries:
        key, sep, value = entry.partition("=")
        if sep:
            result[key] = value
        elif key in source:
            result[key] = source[key]
    return result


def split_container_path(argument: str) -> tuple[str | None, str]:
    """``SERVICE:PATH`` -> (service, path); a local path -> (None, path)."""
    head, sep, tail = argument.partition(":")
    if not sep or not head or "/" in head or head.startswith("."):
        return None, argument
    return head, tail


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


# --- helpers ----------------------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> tuple[str, Project | None]:
    """The project name and, when a Compose file is found, the project."""
    try:
        project = _load_project(args)
    except ComposerError:
        if not args.project_name:
            raise
        return str(args.project_name), None
    return project.name, project


def _sink(args: argparse.Namespace) -> Any:
    from composer.cli.progress import make_renderer

    return make_renderer(args.progress)


def _print_plan(args: argparse.Namespace, plan: Any) -> None:
    if args.dry_run:
        sys.stdout.write(plan.render() + "\n")


@contextmanager
def _raw_terminal(enabled: bool) -> Iterator[None]:
    """The terminal in raw mode while a tty session runs (keys go to the container)."""
    if not enabled:
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setraw(fd)
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _streams(interactive: bool) -> Streams:
    from composer.contract.backend import Streams

    sys.stdout.flush()
    sys.stderr.flush()
    return Streams(sys.stdout.buffer, sys.stderr.buffer, sys.stdin.buffer if interactive else None)


def _stdin_is_tty() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


# --- commands -------------------------------------------------------------------------------------


def run_ps(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    if project is not None:
        for name in args.services:
            project.service(name)
    wanted = status_filters(getattr(args, "status", []) or [], getattr(args, "filter", []) or [])
    include_stopped = args.all or bool(wanted)
    found = _run(args, lambda backend: engine.containers(project_name, backend, include_stopped=include_stopped))
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


def run_start(args: argparse.Namespace) -> int:
    from composer import engine

    project = _load_project(args)
    outcome = _run(args, lambda backend: engine.start(project, backend, tuple(args.services), _sink(args),
                                                      parallel=args.parallel, dry_run=args.dry_run))
    _print_plan(args, outcome.plan)
    return 0


def run_restart(args: argparse.Namespace) -> int:
    from composer import engine

    project = _load_project(args)
    services = tuple(args.services)
    outcome = _run(args, lambda backend: engine.restart(project, backend, services, _sink(args),
                                                        stop_timeout=args.timeout, parallel=args.parallel,
                                                        dry_run=args.dry_run))
    _print_plan(args, outcome.plan)
    return 0


def run_kill(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    outcome = _run(args, lambda backend: engine.kill(project_name, project, backend, tuple(args.services),
                                                     args.signal, _sink(args), parallel=args.parallel,
                                                     dry_run=args.dry_run))
    _print_plan(args, outcome.plan)
    return 0


def run_rm(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    services = tuple(args.services)

    async def work(backend: Backend) -> int:
        found = await engine.removable(project_name, project, backend, services, stop=args.stop)
        if not found:
            print("No stopped containers", file=sys.stderr)
            return 0
        if not args.force and not args.dry_run:
            print(f"Going to remove {', '.join(c.name for c in found)}")
            sys.stdout.write("Are you sure? [yN] ")
            sys.stdout.flush()
            answer = sys.stdin.readline().strip().lower()
            if answer not in ("y", "yes"):
                return 0
        outcome = await engine.remove(project_name, project, backend, services, _sink(args), stop=args.stop,
                                      remove_volumes=args.volumes, parallel=args.parallel, dry_run=args.dry_run)
        _print_plan(args, outcome.plan)
        return 0

    return _run(args, work)


def _pause(args: argparse.Namespace, paused: bool) -> int:
    from composer import engine

    project_name, project = _context(args)
    verb = engine.pause if paused else engine.unpause
    _run(args, lambda backend: verb(project_name, project, backend, tuple(args.services), _sink(args)))
    return 0


def run_pause(args: argparse.Namespace) -> int:
    return _pause(args, True)


def run_unpause(args: argparse.Namespace) -> int:
    return _pause(args, False)


def run_create(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.options import UpOptions

    project = _load_project(args)
    options = UpOptions(services=tuple(args.services), force_recreate=args.force_recreate,
                        no_recreate=args.no_recreate, remove_orphans=args.remove_orphans, scale=_scale(args.scale),
                        pull=args.pull, build=args.build, no_start=True)
    outcome = _run(args, lambda backend: engine.up(project, backend, options, _sink(args), parallel=args.parallel,
                                                   dry_run=args.dry_run))
    for warning in outcome.plan.warnings:
        print(f"WARN[0000] {warning}", file=sys.stderr)
    _print_plan(args, outcome.plan)
    return 0


def run_wait(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)

    def exited(container: ObservedContainer, code: int) -> None:
        print(f'container "{container.container_id}" exited with status code {code}', flush=True)

    async def work(backend: Backend) -> int:
        code = await engine.wait(project_name, project, backend, tuple(args.services), exited)
        if args.down_project:
            from composer.contract.options import DownOptions

            await engine.down(project_name, project, backend, DownOptions(), _sink(args))
        return code

    return _run(args, work)


def run_port(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    container = _run(args, lambda backend: engine.service_container(project_name, project, backend, args.service,
                                                                     args.index))
    found = published_port(container.ports, args.private_port, args.protocol)
    if found is None:
        published = ", ".join(f"{p.host_port}/{p.protocol}" for p in container.ports if p.host_port is not None)
        raise ComposerError(f"no port {args.private_port}/{args.protocol} for container {container.name}: "
                            f"{published}".rstrip(": "))
    print(found)
    return 0


def run_top(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    found = _run(args, lambda backend: engine.top(project_name, project, backend, tuple(args.services)))
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


def run_ls(args: argparse.Namespace) -> int:
    from composer import engine

    found = list(_run(args, lambda backend: engine.projects(backend, include_stopped=args.all)))
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


def run_images(args: argparse.Namespace) -> int:
    from composer import engine

    project_name, project = _context(args)
    found = _run(args, lambda backend: engine.images(project_name, project, backend, tuple(args.services)))
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


def run_exec(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.backend import ExecSpec

    if not args.cmd:
        raise UsageError("exec requires at least 2 arguments: SERVICE COMMAND")
    project_name, project = _context(args)
    tty = not args.no_tty and not args.detach and _stdin_is_tty()
    spec = ExecSpec(tuple(args.cmd), user=args.user, workdir=args.workdir, environment=parse_env(args.env),
                    privileged=args.privileged, tty=tty, interactive=args.interactive and not args.detach)
    streams = None if args.detach else _streams(spec.interactive)
    with _raw_terminal(tty):
        code = _run(args, lambda backend: engine.exec_(project_name, project, backend, args.service, spec, streams,
                                                       index=args.index))
    return code or 0


def run_run(args: argparse.Namespace) -> int:
    import shlex

    from composer import engine
    from composer.contract.options import RunOptions

    project = _load_project(args)
    project.service(args.service)
    tty = not args.no_tty and not args.detach and _stdin_is_tty()
    interactive = args.interactive and not args.detach
    options = RunOptions(
        command=tuple(args.cmd) if args.cmd else None,
        entrypoint=tuple(shlex.split(args.entrypoint)) if args.entrypoint is not None else None,
        environment=parse_env(args.env), user=args.user, workdir=args.workdir,
        volumes=tuple(_volume(entry, project.working_dir) for entry in args.volume),
        ports=tuple(port for entry in args.publish for port in _ports(entry)), service_ports=args.service_ports,
        name=args.name, tty=tty, interactive=interactive, use_aliases=args.use_aliases,
        labels=parse_env(args.label, {}),
    )
    streams = None if args.detach else _streams(interactive)
    with _raw_terminal(tty):
        ref, code = _run(args, lambda backend: engine.run(project, backend, args.service, options, streams,
                                                          _sink(args), no_deps=args.no_deps, remove=args.rm,
                                                          pull=args.pull, parallel=args.parallel))
    if args.detach:
        print(ref.container_id)
        return 0
    return code or 0


def _volume(entry: str, working_dir: str) -> Any:
    from composer.spec.models.service import ServiceVolume
    from composer.spec.shortsyntax import parse_volume

    fields = parse_volume(entry)
    source = fields.get("source")
    if fields.get("type") == "bind" and source and not os.path.isabs(source):
        fields["source"] = os.path.normpath(os.path.join(working_dir, os.path.expanduser(source)))
    return ServiceVolume.model_validate(fields)


def _ports(entry: str) -> list[Any]:
    from composer.spec.models.service import PortConfig
    from composer.spec.shortsyntax import parse_port

    return [PortConfig.model_validate(fields) for fields in parse_port(entry)]


# --- cp ---------------------------------------------------------------------------------------------


def local_archive(source: str, arcname: str) -> bytes:
    """``source`` (a file or a folder) as a tar archive whose top entry is ``arcname``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        archive.add(source, arcname=arcname)
    return buffer.getvalue()


def _rebased(name: str, new_top: str) -> str:
    """An archive path with its first component replaced by ``new_top``."""
    rest = name.split("/", 1)[1] if "/" in name else ""
    return f"{new_top}/{rest}" if rest else new_top


def extract_archive(data: bytes, destination: str, *, keep_owners: bool = False) -> list[str]:
    """Extract a tar archive from the engine to ``destination`` (docker cp's rules): into it
    when it is a folder, else as it, renaming the archive's top entry.

    The archive is the container's, so hostile (see host_filter): no device node or FIFO is made
    on the host (their names are returned, for a warning), and files belong to the caller unless
    ``keep_owners`` (``cp -a``: the archive's numeric owners).

    :raises UsageError: a missing destination folder, or an entry that leads out of it.
    """
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        members = archive.getmembers()
        if not members:
            return []
        top = members[0].name.split("/", 1)[0]
        if os.path.isdir(destination):
            target_dir, new_top = destination, top
        else:
            target_dir, new_top = os.path.dirname(os.path.abspath(destination)), os.path.basename(destination)
            if not os.path.isdir(target_dir):
                raise UsageError(f"no such directory: {target_dir}")
        for member in members:
            member.name = _rebased(member.name, new_top)
            if member.islnk():  # a hardlink names its target by its path in the archive
                member.linkname = _rebased(member.linkname, new_top)
            if member.name.startswith("/") or ".." in member.name.split("/"):
                raise UsageError(f"refusing to extract {member.name!r}")
        skipped: list[str] = []
        try:
            archive.extractall(target_dir, members=members, numeric_owner=True,
                               filter=host_filter(skipped, keep_owners=keep_owners))
        except tarfile.FilterError as exc:
            raise UsageError(f"refusing to extract: {exc}") from None
        return skipped


def host_filter(skipped: list[str], *, keep_owners: bool) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo | None]:
    """tarfile's ``tar`` filter (nothing out of the destination; setuid, setgid, sticky and
    group/other write bits dropped), and stricter: device nodes and FIFOs are skipped (their
    names added to ``skipped``), as are hardlinks to anything but a file extracted before them
    (tarfile would extract a missing target from the archive unfiltered), and owners become the
    caller's unless ``keep_owners``. Docker's own cp, as root, creates the devices; stricter is fine."""
    files: set[str] = set()
    uid, gid = os.getuid(), os.getgid()

    def filtered(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo | None:
        if member.ischr() or member.isblk() or member.isfifo() or (member.islnk() and member.linkname not in files):
            skipped.append(member.name)
            return None
        checked = tarfile.tar_filter(member, path)
        if checked.isreg():
            files.add(checked.name)
        if keep_owners:
            return checked
        return checked.replace(uid=uid, gid=gid, uname="", gname="", deep=False)

    return filtered


def run_cp(args: argparse.Namespace) -> int:
    from composer import engine
    from composer.contract.observed import observed_ref

    project_name, project = _context(args)
    source_service, source = split_container_path(args.source)
    dest_service, destination = split_container_path(args.destination)
    if (source_service is None) == (dest_service is None):
        raise UsageError("cp copies between a service container and the local filesystem: "
                         "use SERVICE:SRC_PATH DEST_PATH or SRC_PATH SERVICE:DEST_PATH")
    service = source_service or dest_service
    assert service is not None
    if dest_service is not None and not os.path.exists(source):
        raise UsageError(f"no such file or directory: {source}")
    source_name = os.path.basename(os.path.normpath(source))

    async def work(backend: Backend) -> None:
        container = await engine.service_container(project_name, project, backend, service, args.index or 1,
                                                   running=False)
        ref = observed_ref(container)
        if source_service is not None:
            skipped = extract_archive(await backend.copy_from_container(ref, source), destination,
                                      keep_owners=bool(getattr(args, "archive", False)))
            if skipped:
                print(f"WARN[0000] not copied (device nodes, FIFOs and links to them are never created on the "
                      f"host): {', '.join(skipped)}", file=sys.stderr)
            return
        stat = await backend.stat_container_path(ref, destination)
        if stat is not None and stat.is_dir:
            directory, name = destination, source_name
        elif destination.endswith("/"):
            raise UsageError(f"no such directory in {container.name}: {destination}")
        else:
            directory = posixpath.dirname(destination.rstrip("/")) or "/"
            name = posixpath.basename(destination.rstrip("/"))
        await backend.copy_to_container(ref, directory, local_archive(source, name))

    _run(args, work)
    return 0
