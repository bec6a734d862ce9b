"""``cp``: copies between a service container and the local filesystem, as tar archives
(docker cp's rules); the archive a container sends is hostile, so it is extracted strictly."""

from __future__ import annotations

import io
import os
import posixpath
import sys
import tarfile
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from composer import safe_tar
from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend


def split_container_path(argument: str) -> tuple[str | None, str]:
    """``SERVICE:PATH`` -> (service, path); a local path -> (None, path)."""
    head, sep, tail = argument.partition(":")
    if not sep or not head or "/" in head or head.startswith("."):
        return None, argument
    return head, tail


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

    The archive is the container's, so hostile (see host_members): no device node or FIFO is made
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
            safe_tar.extract_all(archive, target_dir,
                                 host_members(members, os.path.realpath(target_dir), skipped, keep_owners=keep_owners))
        except safe_tar.UnsafeMember as exc:
            raise UsageError(str(exc)) from None
        return skipped


def host_members(members: Iterable[tarfile.TarInfo], destination: str, skipped: list[str], *,
                 keep_owners: bool) -> Iterator[tarfile.TarInfo]:
    """The members to extract into ``destination`` (resolved), each checked as it comes to be
    extracted by safe_tar.host_member (nothing out of the destination; setuid, setgid, sticky and
    group/other write bits dropped, as tarfile's ``tar`` filter), and stricter: device nodes and
    FIFOs are skipped (their names added to ``skipped``), as are hardlinks to anything but a file
    extracted before them (tarfile would extract a missing target from the archive unchecked), and
    owners become the caller's unless ``keep_owners``. Docker's own cp, as root, creates the
    devices; stricter is fine."""
    files: set[str] = set()
    uid, gid = os.getuid(), os.getgid()
    for member in members:
        if member.ischr() or member.isblk() or member.isfifo() or (member.islnk() and member.linkname not in files):
            skipped.append(member.name)
            continue
        checked = safe_tar.host_member(member, destination)
        if checked.isreg():
            files.add(checked.name)
        if not keep_owners:
            checked.uid, checked.gid, checked.uname, checked.gname = uid, gid, "", ""
        yield checked


def run_cp(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.observed import observed_ref

    args = ctx.args
    project, project_name = ctx.project_or_name()
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

    ctx.run(work)
    return 0
