"""Removing directory trees without recursion, by file descriptors.

``shutil.rmtree`` recurses once per level (on 3.11 in Python, so a tree deeper than the
recursion limit, which any image layer can ship, can never be removed) and keeps one descriptor
open per level. Here the walk is a loop: each directory is opened relative to its parent with
O_NOFOLLOW, its non-directories are unlinked at once and its subdirectories remembered by name;
going back up opens ``..`` and checks it is the directory we came from (device and inode), so
only one descriptor is open at a time whatever the depth. Symlinks are removed, never followed,
and the walk never enters another filesystem (a mount point left in the tree fails the removal
instead of having the mounted files deleted).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import NamedTuple

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_OWNER_ALL = stat.S_IRWXU


class _Level(NamedTuple):
    name: str  # in its parent
    ident: tuple[int, int]  # (st_dev, st_ino)
    pending: list[str]  # subdirectories still to remove


def remove_tree(path: Path | str) -> None:
    """Remove ``path``: a file, a symlink (not followed) or a whole tree, even with read-only
    directories in it. A missing path is not an error.

    :raises OSError: something in it cannot be removed.
    """
    path = Path(path)
    try:
        parent_fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        remove_at(parent_fd, path.name)
    finally:
        os.close(parent_fd)


def remove_at(parent_fd: int, name: str) -> None:
    """Remove the entry ``name`` of the directory ``parent_fd`` (a tree, a file, a symlink)."""
    try:
        found = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(found.st_mode):
        os.unlink(name, dir_fd=parent_fd)
        return
    fd = _open_dir(parent_fd, name)
    top = os.fstat(fd)
    if top.st_dev != os.fstat(parent_fd).st_dev:
        os.close(fd)
        raise OSError(errno.EBUSY, "a mount point is in the tree", name)
    levels = [_Level(name, (top.st_dev, top.st_ino), _clear(fd, top))]
    try:
        while levels:
            level = levels[-1]
            if level.pending:
                child_name = level.pending.pop()
                try:
                    child = _open_dir(fd, child_name)
                except FileNotFoundError:
                    continue
                except NotADirectoryError:  # replaced meanwhile by something else: not ours to walk
                    os.unlink(child_name, dir_fd=fd)
                    continue
                info = os.fstat(child)
                if info.st_dev != top.st_dev:
                    os.close(child)
                    raise OSError(errno.EBUSY, "a mount point is in the tree", child_name)
                os.close(fd)
                fd = child
                levels.append(_Level(child_name, (info.st_dev, info.st_ino), _clear(fd, info)))
                continue
            levels.pop()
            if levels:
                parent = os.open("..", _DIR_FLAGS, dir_fd=fd)
                info = os.fstat(parent)
                if (info.st_dev, info.st_ino) != levels[-1].ident:
                    os.close(parent)
                    raise OSError(errno.ESTALE, "the tree was moved while it was being removed", level.name)
            else:
                parent = os.dup(parent_fd)
            os.close(fd)
            fd = parent
            os.rmdir(level.name, dir_fd=fd)
    finally:
        os.close(fd)


def _open_dir(parent_fd: int, name: str) -> int:
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:  # an unprivileged caller and a directory without r or x for its owner
        os.chmod(name, _OWNER_ALL, dir_fd=parent_fd)
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", name) from None
        raise


def _clear(fd: int, info: os.stat_result) -> list[str]:
    """Unlink every non-directory in ``fd``; return the names of its subdirectories."""
    if info.st_mode & _OWNER_ALL != _OWNER_ALL:
        os.fchmod(fd, stat.S_IMODE(info.st_mode) | _OWNER_ALL)  # read-only directories come in layers
    subdirectories = []
    with os.scandir(fd) as listing:
        entries = list(listing)  # read whole before unlinking anything
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            subdirectories.append(entry.name)
        else:
            try:
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
    return subdirectories
