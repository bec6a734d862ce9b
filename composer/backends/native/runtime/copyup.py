"""Docker's copy-up: a new, empty volume gets the image's content at its mount point, once
(``init.fill_volume``, in the container's helper before pivot_root).

Both trees may change while this runs, by a container that shares them: the volume itself, and
the image's directory when it lies in another volume (nested mounts). So nothing is looked up by
a name such a container could redirect (``cp -a``, used before, wrote through a symlink planted in
the volume: onto the host). Every directory is reached from its tree's root fd by openat2 with
RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, every entry opened relative to its directory's fd with
O_NOFOLLOW and checked to be what it was listed as, and created with O_EXCL. A symlink is copied
as a symlink, never followed; an entry that appeared in the volume meanwhile is left as it is
(and not entered); nothing is written outside the volume. Owners, modes, times, extended
attributes, device nodes and hard links within the copy are kept, as ``cp -a`` keeps them.
Iterative (a deep tree cannot exhaust the recursion limit), with one directory's fds open at a
time.

Imported by the helper only when a volume is filled (standard library ``os`` and ``stat``).
"""

from __future__ import annotations

import errno
import os
import stat

from composer.backends.native.runtime import linux as L

DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
BENEATH = L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS
# The other container was quicker: an entry appeared, went, or became a symlink (ELOOP from
# O_NOFOLLOW and RESOLVE_NO_SYMLINKS) or a mount point (EXDEV).
RACED = frozenset((errno.EEXIST, errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EXDEV))


class Raced(Exception):
    """An entry that changed under the copy (skipped)."""


def fill(image_fd: int, volume_dir: str) -> None:
    """Copy the directory ``image_fd`` (any fd of it) into ``volume_dir`` when the volume is empty
    and the directory is not (Docker's rule); nothing for a file."""
    try:
        source = os.open(".", DIRECTORY, dir_fd=image_fd)
    except NotADirectoryError:
        return
    try:
        dest = os.open(volume_dir, DIRECTORY)
        try:
            if os.listdir(source) and not os.listdir(dest):
                copy_tree(source, dest)
        finally:
            os.close(dest)
    finally:
        os.close(source)


def _open_dir(root: int, relative: str, resolve: int) -> int:
    """The directory ``relative`` under ``root``; raises Raced when it is not one anymore."""
    try:
        return os.open(".", DIRECTORY, dir_fd=root) if not relative else L.openat2(root, relative, DIRECTORY, resolve)
    except OSError as exc:
        if exc.errno in RACED:
            raise Raced(relative) from None
        raise


def copy_tree(source_root: int, dest_root: int) -> None:
    """Copy what is under ``source_root`` into ``dest_root`` (directory fds), the root's own
    owner, mode, times and extended attributes included (``cp -a src/. dest``)."""
    pending = [""]  # directories to copy, relative to both roots
    made: list[tuple[str, os.stat_result]] = []  # their modes and times are set last, deepest first
    links: dict[tuple[int, int], str] = {}  # a hard-linked file's first copy, relative to dest_root
    while pending:
        relative = pending.pop()
        try:
            source = _open_dir(source_root, relative, BENEATH)
        except Raced:
            continue  # swapped for something else meanwhile: not ours to follow
        try:
            dest = _open_dir(dest_root, relative, BENEATH | L.RESOLVE_NO_XDEV)
        except Raced:
            os.close(source)
            continue
        try:
            info = os.fstat(source)
            _own(dest, info, source)
            made.append((relative, info))
            for entry in os.scandir(source):
                child = f"{relative}/{entry.name}" if relative else entry.name
                try:
                    if _copy_entry(source, dest, entry.name, entry.stat(follow_symlinks=False), child, links,
                                   dest_root):
                        pending.append(child)
                except Raced:
                    continue
                except OSError as exc:
                    if exc.errno not in RACED:
                        raise
        finally:
            os.close(source)
            os.close(dest)
    for relative, info in reversed(made):
        try:
            dest = _open_dir(dest_root, relative, BENEATH | L.RESOLVE_NO_XDEV)
        except Raced:
            continue
        try:
            os.chmod(dest, stat.S_IMODE(info.st_mode))
            os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(dest)


def _copy_entry(source: int, dest: int, name: str, info: os.stat_result, relative: str,
                links: dict[tuple[int, int], str], dest_root: int) -> bool:
    """Copy one entry of the directory ``source`` into ``dest``; True for a directory (made, to
    be filled next). Raises Raced, or OSError with an errno of RACED, when the entry changed or
    exists already."""
    mode = info.st_mode
    if stat.S_ISDIR(mode):
        os.mkdir(name, 0o700, dir_fd=dest)  # opened to its owner only until it is filled
        return True
    key = (info.st_dev, info.st_ino)
    if info.st_nlink > 1 and key in links and _link(dest_root, links[key], dest, name):
        return False
    if stat.S_ISREG(mode):
        _copy_file(source, dest, name)
    elif stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=dest)
        _set_by_name(dest, name, info)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        os.mknod(name, stat.S_IFMT(mode) | 0o600, info.st_rdev, dir_fd=dest)
        _set_by_name(dest, name, info)
    else:
        return False  # a socket: nothing to copy
    if info.st_nlink > 1 and not stat.S_ISDIR(mode):
        links.setdefault(key, relative)
    return False


def _copy_file(source: int, dest: int, name: str) -> None:
    reader = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=source)
    try:
        info = os.fstat(reader)
        if not stat.S_ISREG(info.st_mode):
            raise Raced(name)  # swapped meanwhile (a FIFO would block, a device): skipped
        writer = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dest)
        try:
            while os.sendfile(writer, reader, None, 1 << 30) > 0:
                pass
            _own(writer, info, reader)
            os.chmod(writer, stat.S_IMODE(info.st_mode))  # after chown, which clears setuid bits
            os.utime(writer, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(writer)
    finally:
        os.close(reader)


def _own(fd: int, info: os.stat_result, source_fd: int) -> None:
    """Owner, then extended attributes (file capabilities are cleared by chown): those the
    kernel refuses are skipped, as ``cp -a`` skips them."""
    os.chown(fd, info.st_uid, info.st_gid)
    try:
        names = os.listxattr(source_fd)
    except OSError:
        return
    for name in names:
        try:
            os.setxattr(fd, name, os.getxattr(source_fd, name))
        except OSError:
            continue


def _set_by_name(dest: int, name: str, info: os.stat_result) -> None:
    """Owner, mode and times of a symlink or node just made in ``dest``, never following a
    symlink: a node is opened O_PATH and changed through its fd's magic link (there is no
    chmod that does not follow)."""
    times = (info.st_atime_ns, info.st_mtime_ns)
    if stat.S_ISLNK(info.st_mode):
        os.chown(name, info.st_uid, info.st_gid, dir_fd=dest, follow_symlinks=False)
        os.utime(name, ns=times, dir_fd=dest, follow_symlinks=False)
        return
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dest)
    try:
        if stat.S_IFMT(os.fstat(fd).st_mode) != stat.S_IFMT(info.st_mode):
            raise Raced(name)
        os.chown(L.fd_path(fd), info.st_uid, info.st_gid)
        os.chmod(L.fd_path(fd), stat.S_IMODE(info.st_mode))
        os.utime(L.fd_path(fd), ns=times)
    finally:
        os.close(fd)


def _link(dest_root: int, first: str, dest: int, name: str) -> bool:
    """Hard-link ``name`` in ``dest`` to the first copy of its file; False when that copy is gone."""
    parent, _, base = first.rpartition("/")
    try:
        folder = _open_dir(dest_root, parent, BENEATH | L.RESOLVE_NO_XDEV)
    except Raced:
        return False
    try:
        os.link(base, name, src_dir_fd=folder, dst_dir_fd=dest, follow_symlinks=False)
    except FileNotFoundError:
        return False
    finally:
        os.close(folder)
    return True
