"""``cp``: tar archives into and out of a container's files, made by a helper inside them.

``run`` starts a fresh single-threaded helper (``python -S -I``, as nsexec's, so that ``setns``
into a mount namespace is allowed) with a JSON request on its command line and an archive on
stdin, and returns what it wrote on stdout. The helper first makes the container's files its root:

* a running container (``pid``): ``setns`` into the mount namespace of its PID 1 (checked against
  the recorded start time), which moves the root to the container's: the view its processes
  have, volumes, binds and tmpfs mounts included;
* otherwise (``rootfs``): ``unshare`` a private mount namespace, mount the overlay on the
  container's mount point with its volumes, binds and etc files as PID 1 mounts them (not its
  tmpfs mounts, which exist only while it runs), and ``chroot`` into it. The namespace, and
  every mount in it, goes away with the helper, even after kill -9: nothing is mounted on the host.

Every path then resolves as inside the container, symlinks included (absolute ones too), and
nothing a container process does to its files meanwhile (swapping a directory for a symlink to
``/``, CVE-2018-15664) can lead the helper to the host's files. Nothing of the container's is
ever loaded either: every import happens before, and owners stay numeric, since looking names
up would load the container's NSS libraries (CVE-2019-14271).

Requests (``op``), with docker cp's rules: ``stat`` and ``get`` of ``path`` (its last component
not followed unless the path ends in ``/`` or ``/.``; the archive's top entry is named after
it), ``put`` of the archive into ``directory``: names that are absolute, contain ``..`` or lead
out of the directory are refused, as are hardlinks and relative symlinks pointing out of it; an
existing entry is replaced, but a directory and a non-directory never replace each other. Modes
and numeric owners are those of the archive. Errors: one line on stderr; exit 2 when a path does
not exist, 3 when the request is refused, 1 otherwise.

Imported by the helper itself: the standard library, ``composer.safe_tar`` (the extraction rule)
and this package's ``linux``, ``init`` and ``nsexec`` (whose launcher, bootstrap.py, it shares).
"""

from __future__ import annotations

import io
import json
import os
import stat
import sys
import tarfile

from composer import safe_tar
from composer.backends.native.runtime import bootstrap
from composer.backends.native.runtime import linux as L
from composer.backends.native.runtime.init import mount_etc_files, mount_user, process_start_time, remount_readonly

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

EXIT_MISSING = 2
EXIT_REFUSED = 3


class CopyFailed(Exception):
    """The helper's one-line error; ``code`` is its exit status (EXIT_MISSING, EXIT_REFUSED, other)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class _Missing(Exception):
    """A path that does not exist in the container (exit EXIT_MISSING)."""


class _Refused(Exception):
    """A request the helper will not carry out (exit EXIT_REFUSED)."""


def run(request: dict[str, Any], archive: bytes = b"", python: str | None = None) -> bytes:
    """What the helper writes on stdout for ``request`` (``archive`` on its stdin).

    :raises CopyFailed: it exited non-zero.
    """
    import subprocess

    done = subprocess.run(bootstrap.command("cpexec", json.dumps(request), python=python),
                          input=archive, capture_output=True, env={}, start_new_session=True, check=False)
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise CopyFailed(done.returncode, lines[-1] if lines else f"the cp helper exited {done.returncode}")
    return done.stdout


# --- getting into the container's files --------------------------------------------------------


def enter(request: dict[str, Any]) -> None:
    """Make the container's files this process's root (see the module doc)."""
    if request.get("pid") is not None:
        _join(int(request["pid"]), request.get("pid_start"))
    else:
        _mount(request)
    os.chdir("/")
    # From here on, an import could only come from the container's files: allow none.
    sys.meta_path.clear()


def _join(pid: int, start: int | None) -> None:
    fd = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if start is not None and process_start_time(pid) != start:  # checked after the open: the fd is its
            raise _Refused("it is not running anymore")
        L.setns(fd, L.CLONE_NEWNS)
    finally:
        os.close(fd)


def _mount(request: dict[str, Any]) -> None:
    rootfs = request["rootfs"]
    root = rootfs["mountpoint"]
    L.unshare(L.CLONE_NEWNS)
    L.mount(None, "/", None, L.MS_REC | L.MS_PRIVATE)  # nothing mounted from here on reaches the host
    os.chdir(rootfs["layers_dir"])  # the lowerdirs are relative to it, as PID 1 mounts them
    L.mount("overlay", root, "overlay", 0,
            f"lowerdir={':'.join(rootfs['lower'])},upperdir={rootfs['upper']},workdir={rootfs['work']}")
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)  # volumes may change: fds only
    try:
        for mount in request.get("mounts") or ():
            if mount["type"] != "tmpfs":
                # No copy-up into an empty volume (starting the container does it), no propagation.
                mount_user(root_fd, {**mount, "fill": False, "propagation": None})
        mount_etc_files(root_fd, request.get("etc_files") or {})
    finally:
        os.close(root_fd)
    if rootfs.get("readonly"):
        remount_readonly(root)
    os.chroot(root)


# --- the requests, on paths inside the container -------------------------------------------------


def resolve(path: str) -> str:
    """``path`` with its symlinks resolved, except the last component unless the path ends in
    ``/`` or ``/.`` (then it must be a directory): a symlink is copied as one."""
    if path.endswith(("/", "/.")):
        return os.path.realpath(path)
    parent, base = os.path.split(path)
    return os.path.join(os.path.realpath(parent or "."), base)


def _lstat(target: str, path: str, container: str) -> os.stat_result:
    try:
        found = os.lstat(target)
    except (FileNotFoundError, NotADirectoryError):
        raise _Missing(f"Could not find the file {path} in container {container}") from None
    if path.endswith(("/", "/.")) and not stat.S_ISDIR(found.st_mode):
        raise _Refused(f"not a directory: {path}")
    return found


def stat_path(path: str, container: str) -> dict[str, Any]:
    """Name, size, kind and (for a symlink) resolved target of ``path``."""
    target = resolve(path)
    found = _lstat(target, path, container)
    link = os.path.realpath(target) if stat.S_ISLNK(found.st_mode) else ""
    return {"name": os.path.basename(target) or "/", "size": found.st_size, "is_dir": stat.S_ISDIR(found.st_mode),
            "link_target": link}


def top_name(path: str) -> str:
    """The archive's top entry for ``path``: its last component (``.`` for ``/`` and ``dir/.``,
    whose content is copied rather than the directory)."""
    if path.endswith("/."):
        return "."
    return os.path.basename(os.path.normpath(path)) or "."


def get(path: str, container: str) -> bytes:
    """``path`` (and everything under it) as a tar archive."""
    target = resolve(path)
    _lstat(target, path, container)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        _add_tree(archive, target, top_name(path))
    return buffer.getvalue()


def _add_tree(archive: tarfile.TarFile, top: str, top_arcname: str) -> None:
    """``top`` and, for a directory, everything under it, parents first and in name order,
    never following a symlink."""
    hardlinks: dict[tuple[int, int], str] = {}
    pending = [(top, top_arcname)]
    while pending:
        path, arcname = pending.pop()
        info = tar_entry(path, arcname, hardlinks)
        if info is None:
            continue  # a socket: tar cannot hold one
        if info.isreg():
            # O_NONBLOCK: swapped for a FIFO since the lstat, it must not hang the copy
            with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC), "rb") as content:
                if not stat.S_ISREG(os.fstat(content.fileno()).st_mode):
                    raise _Refused(f"{path} changed while it was copied")
                archive.addfile(info, content)
        else:
            archive.addfile(info)
        if info.isdir():
            children = sorted(os.listdir(path), reverse=True)  # a stack: the first name comes out first
            pending += [(os.path.join(path, name), f"{arcname}/{name}") for name in children]


def tar_entry(path: str, arcname: str, hardlinks: dict[tuple[int, int], str]) -> tarfile.TarInfo | None:
    """The header of ``path`` (not followed) with numeric owners only (see the module doc); a
    file already archived under another name becomes a hardlink to it."""
    found = os.lstat(path)
    info = tarfile.TarInfo(arcname)
    info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(found.st_mode), found.st_uid, found.st_gid, found.st_mtime
    kind = stat.S_IFMT(found.st_mode)
    if kind == stat.S_IFREG:
        key = (found.st_dev, found.st_ino)
        if found.st_nlink > 1 and key in hardlinks:
            info.type, info.linkname = tarfile.LNKTYPE, hardlinks[key]
            return info
        if found.st_nlink > 1:
            hardlinks[key] = arcname
        info.size = found.st_size
    elif kind == stat.S_IFDIR:
        info.type = tarfile.DIRTYPE
    elif kind == stat.S_IFLNK:
        info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
    elif kind in (stat.S_IFCHR, stat.S_IFBLK):
        info.type = tarfile.CHRTYPE if kind == stat.S_IFCHR else tarfile.BLKTYPE
        info.devmajor, info.devminor = os.major(found.st_rdev), os.minor(found.st_rdev)
    elif kind == stat.S_IFIFO:
        info.type = tarfile.FIFOTYPE
    else:
        return None
    return info


def put(directory: str, data: bytes, container: str) -> None:
    """Extract the tar archive ``data`` into ``directory``."""
    destination = os.path.realpath(directory)
    if not stat.S_ISDIR(_lstat(destination, directory, container).st_mode):
        raise _Refused(f"extraction point is not a directory: {directory}")
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        archive.errorlevel = 2  # a failed chown or chmod is an error, not a debug message
        # The members are checked one by one just before each is extracted (checked_members),
        # with modes kept: the stdlib's filters, which would change them, are not used.
        safe_tar.extract_all(archive, destination, checked_members(archive, destination))


def checked_members(archive: tarfile.TarFile, destination: str) -> Iterator[tarfile.TarInfo]:
    """The archive's members, each checked and with room made for it, as it comes to be extracted
    (an earlier member may be a symlink that a later one would write through)."""
    for member in archive.getmembers():
        if os.path.normpath(member.name) == ".":
            continue  # the destination itself keeps its owner and mode, as with docker cp
        try:
            safe_tar.check_member(member, destination)
        except safe_tar.UnsafeMember as exc:
            raise _Refused(str(exc)) from None
        _make_room(member, os.path.join(destination, member.name))
        yield member


def _make_room(member: tarfile.TarInfo, path: str) -> None:
    """An existing directory stays for a directory (its attributes change); anything else is
    removed first, so nothing is written through an old symlink or into a file's other hardlinks."""
    try:
        existing = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(existing.st_mode) and not member.isdir():
        raise _Refused(f"cannot overwrite directory {path} with non-directory {member.name}")
    if member.isdir() and not stat.S_ISDIR(existing.st_mode):
        raise _Refused(f"cannot overwrite non-directory {path} with directory {member.name}")
    if not member.isdir():
        os.unlink(path)


# --- the helper's entry point ------------------------------------------------------------------


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


def _fail(message: str, code: int) -> int:
    os.write(2, " ".join(message.split()).encode(errors="replace") + b"\n")
    return code


def _answer(request: dict[str, Any], data: bytes) -> bytes:
    container = str(request["container"])
    if request["op"] == "stat":
        return json.dumps(stat_path(request["path"], container)).encode()
    if request["op"] == "get":
        return get(request["path"], container)
    put(request["directory"], data, container)
    return b""


def main(argv: list[str]) -> int:
    # It stays in the host's pid namespace (never visible to the container's processes) and runs
    # nothing of the container's; undumpable all the same, as nsexec's helper (CVE-2019-5736).
    L.make_undumpable()
    request: dict[str, Any] = json.loads(argv[1])
    data = sys.stdin.buffer.read() if request["op"] == "put" else b""
    try:
        enter(request)
    except (OSError, _Refused) as exc:
        return _fail(f"cannot enter container {request['container']}: {_reason(exc)}", 1)
    try:
        output = _answer(request, data)
    except _Missing as exc:
        return _fail(str(exc), EXIT_MISSING)
    except _Refused as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except tarfile.TarError as exc:
        return _fail(f"cannot read or extract the archive: {exc}", 1)
    except OSError as exc:
        return _fail(_reason(exc), 1)
    sys.stdout.buffer.write(output)
    sys.stdout.buffer.flush()
    return 0
