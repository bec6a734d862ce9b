"""Extracting untrusted tar archives (an image's, a container's) safely on every Python 3.11.x.

tarfile's extraction filters (``extractall(filter=...)``, ``tar_filter``, ``data_filter``,
``TarInfo.replace``, ``FilterError``) arrived in 3.11.4, and Debian 12's python3 is 3.11.2. So the
rule lives here, in one place, and the callers hand ``extract_all`` members already checked:

* ``check_member``: no absolute name or ``..``; the member's parent, resolved (symlinks extracted
  earlier included), stays in the destination; a hardlink's target too; a relative symlink's
  target too. An absolute symlink is allowed (it is the container's own path, and nothing is
  written through it: a later member under it fails the parent check).
* ``host_member``: the same, for the host's files, as tarfile's ``tar`` filter does: also refused
  when the member's own path already resolves out (an existing symlink would be written through),
  and setuid, setgid, sticky and group/other write bits are dropped.

Only this module may use the 3.11.4+ APIs (tests/unit/test_safe_tar.py checks the tree).
Imports only the standard library: the native backend's cp helper imports it in a container.
"""

from __future__ import annotations

import copy
import os
import stat
import tarfile

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

# 3.11.4+ (and 3.14's default filter, "data", would change modes): off, the members are ours.
_HAS_FILTERS = hasattr(tarfile, "fully_trusted_filter")

# What tarfile's "tar" filter drops from a mode.
_HOST_DROPPED_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX | stat.S_IWGRP | stat.S_IWOTH


class UnsafeMember(Exception):
    """A member that would be written, or linked, out of the destination; the message names it."""


def inside(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or under it (both resolved, absolute)."""
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def check_member(member: tarfile.TarInfo, destination: str) -> None:
    """Refuse a member that would be written, or hardlinked, or relatively symlinked, out of
    ``destination`` (a resolved path). Called just before the member is extracted, so that the
    symlinks of earlier members are seen."""
    name = member.name
    if name.startswith("/") or ".." in name.split("/"):
        raise UnsafeMember(f"refusing to extract {name!r}: absolute or with '..'")
    parent = os.path.realpath(os.path.join(destination, os.path.dirname(name)))
    if not inside(parent, destination):
        raise UnsafeMember(f"refusing to extract {name!r}: it leads out of {destination}")
    if member.islnk():
        target = os.path.realpath(os.path.join(destination, member.linkname))
        if member.linkname.startswith("/") or not inside(target, destination):
            raise UnsafeMember(f"refusing to extract {name!r}: hardlink to {member.linkname!r} out of {destination}")
    if member.issym() and not member.linkname.startswith("/"):
        target = os.path.normpath(os.path.join(parent, member.linkname))
        if not inside(target, destination):
            raise UnsafeMember(f"refusing to extract {name!r}: symlink to {member.linkname!r} out of {destination}")


def host_member(member: tarfile.TarInfo, destination: str) -> tarfile.TarInfo:
    """A checked copy of ``member`` to extract into ``destination`` (a resolved path) on the host
    (see the module doc). tarfile would open an existing symlink at the member's path and write
    through it, hence the check of the resolved path itself."""
    check_member(member, destination)
    if not inside(os.path.realpath(os.path.join(destination, member.name)), destination):
        raise UnsafeMember(f"refusing to extract {member.name!r}: it leads out of {destination}")
    checked = copy.copy(member)
    checked.mode = member.mode & 0o7777 & ~_HOST_DROPPED_BITS
    return checked


def extract_all(archive: tarfile.TarFile, destination: str, members: Iterable[tarfile.TarInfo]) -> None:
    """Extract ``members`` (checked by the caller, lazily: an iterator checks each just before it
    is extracted) into ``destination`` with numeric owners, tarfile's own filter off."""
    if _HAS_FILTERS:
        archive.extractall(destination, members=members, numeric_owner=True, filter="fully_trusted")
    else:
        archive.extractall(destination, members=members, numeric_owner=True)
