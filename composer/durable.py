"""State files that survive a crash: the one way composer writes a file others read.

``write_file`` writes to a temporary name that no other writer uses (pid plus random bytes,
``O_EXCL``: threads of one process never share it), fsyncs it, renames it over the target and
fsyncs the folder, so a reader (or the next boot) sees the old content or the new one, never a
part, and a rename that returned is on disk. A writer killed before the rename leaves only a
``.<name>.*.tmp`` file: ``is_temporary`` tells those apart for whoever cleans a folder.

``sync=False`` is for the files of the native backend's run root (config.json, state.json,
exit.json, networks, supervisors, DNS): written whole the same way, without the two fsyncs (~2.5 ms
each on this project's hosts, tens of ms on a busy disk, on every container start and end). Only
a crash of the kernel loses a write that a process crash keeps (the page cache survives a
``kill -9``), and a crashed kernel is a new boot: what the run root then holds describes
processes, cgroups and bridges that died with it, and the first command rebuilds it from the
store's records (native/reboot.py), which are written with ``sync=True``, as the image store is.

Only ``os`` is imported: the container's monitor (runtime/init.py, a fresh interpreter per
start) writes its state through here.
"""

from __future__ import annotations

import os

from composer import faults

__all__ = ["TEMP_SUFFIX", "fsync_dir", "is_temporary", "remove_stale_temporaries", "write_file"]

TEMP_SUFFIX = ".tmp"


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the folder's entries (a rename, a new or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary_name(path: str | os.PathLike[str], tmp_dir: str | os.PathLike[str] | None = None) -> str:
    """A name for ``path``'s next content that no other writer (thread or process) uses."""
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(os.fspath(tmp_dir) if tmp_dir is not None else folder,
                        f".{name}.{os.getpid()}.{os.urandom(6).hex()}{TEMP_SUFFIX}")


def is_temporary(name: str) -> bool:
    """Whether a folder entry is a ``write_file`` temporary (left by a writer killed mid-write)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def _writer_alive(name: str) -> bool:
    """Whether the writer whose pid a temporary's name holds still runs (or cannot be told)."""
    parts = name[:-len(TEMP_SUFFIX)].split(".")
    pid = parts[-2] if len(parts) >= 3 else ""
    if not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporaries in ``folder`` left by writers killed mid-write (their pid is gone);
    the names removed. A live writer's (or a reused pid's) temporary is left alone."""
    removed: list[str] = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if is_temporary(name) and not _writer_alive(name):
            try:
                os.unlink(os.path.join(folder, name))
                removed.append(name)
            except OSError:
                pass
    return removed


def write_file(path: str | os.PathLike[str], data: bytes, *, mode: int = 0o600,
               tmp_dir: str | os.PathLike[str] | None = None, fault: str | None = None, sync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically and durably (``mode`` whatever the umask);
    ``tmp_dir``: where the temporary goes, on the same filesystem (the folder by default);
    ``fault``: the crash point (composer.faults) between the fsynced temporary and the rename;
    ``sync``: False for a file a new boot discards (see the module doc): atomic, not fsynced.

    :raises OSError: the write, the fsyncs or the rename failed (the temporary is removed).
    """
    tmp = temporary_name(path, tmp_dir)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            if os.fstat(fd).st_mode & 0o7777 != mode:
                os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
        if fault is not None:
            faults.point(fault)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_dir(os.path.dirname(os.fspath(path)) or ".")
