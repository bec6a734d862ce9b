"""The spawner's helper: ``python -S -I bootstrap.py init <config fd> <sync fd> [<net fd>]`` (see
bootstrap.py, which skips composer's package __init__s), or forked by the forkserver (forkserver.py).

It runs in a fresh single-threaded interpreter (the orchestrator never forks) and imports only
the standard library's ``os``/``ctypes``/``json`` and this package's ``linux``, ``cgroups`` and
``seccomp`` modules. Three processes:

* **P0**, started by the spawner, reads the container's configuration (JSON, see
  ``composer.backends.native.runtime.config``) from the config fd, forks the monitor and exits
  at once, so the container never belongs to the caller: the monitor is reparented to the
  nearest child subreaper (a project supervisor) or to init.
* **the monitor** (conmon's role) creates the cgroup, ``unshare(CLONE_NEWPID)`` and forks the
  container's PID 1. It moves it into the cgroup while PID 1 builds its root filesystem (the
  first move into a v1 cpu cgroup waits for an RCU grace period, ~15 ms here), lets it go, and
  waits for its execve: an error
  before execve arrives on a close-on-exec pipe, success closes it. It then writes ``state.json``,
  answers one JSON line on the sync fd (``{"ok": true, "pid": ...}`` or ``{"ok": false,
  "error": ...}``), writes the container's stdout and stderr as Docker json-file lines, waits for
  it and writes ``exit.json`` (exit code, 128+signal, OOM kills) and removes the cgroup.
* **a spare monitor** (``spare_monitor``, kept by the command server's forkserver) is a monitor
  made before its container: cgroup, pid namespace and PID 1 ready, the cgroup move done. It
  takes a start as P0 would hand it one (see the spare section below).
* **PID 1** unshares the mount, UTS, IPC and network namespaces, builds the root filesystem,
  waits until it is in its cgroup, unshares the cgroup namespace (rooted there) and execs the
  container's process (runc's ``linuxStandardInit`` order).

Networking (``cfg["netns"]``): ``None`` unshares a new network namespace, ``"host"`` keeps the
host's, a path (``/proc/<pid>/ns/net`` of another container) joins that one. With a network
fd (the helper's optional third argument, ``spawn(on_netns=...)``), PID 1 writes
``{"netns": <its host pid>}`` on the sync fd right after unsharing, builds its root filesystem
meanwhile, and before execve waits for one byte on the network fd: the caller configures
``/proc/<pid>/ns/net`` in between (veths, addresses, routes); EOF without a byte aborts the start.

IPC (``cfg["ipcns"]``): ``None`` unshares a new IPC namespace with a /dev/shm tmpfs of its own,
``"none"`` the same without /dev/shm, ``"host"`` keeps the host's namespace and binds its
/dev/shm, a ``/proc/<pid>/ns/ipc`` path joins that container's namespace and mounts a copy of
its /dev/shm (taken from the same process's ``ns/mnt``), as Docker shares the donor's.
PID (``cfg["pidns"]``): ``None`` makes the container's first process PID 1 of a new pid
namespace, ``"host"`` leaves it in the host's, a ``/proc/<pid>/ns/pid`` path makes it one more
process of that container's namespace (its /proc shows them all). Without a pid namespace of its
own, the kernel does not kill the container's other processes when the first one exits: the
monitor kills what is left in the cgroup (as runc does).
"""

from __future__ import annotations

import errno
import marshal
import os
import stat  # loaded by os already
import sys
import time
from _json import encode_basestring_ascii as _quote

from composer import durable, faults
from composer.backends.native.runtime import cgroups, logfiles
from composer.backends.native.runtime import linux as L

TYPE_CHECKING = False  # typing costs ~10 ms of start-up
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOT_MOVED = b"not moved into its cgroup"  # PID 1's error when the monitor could not move it


# --- small file helpers ----------------------------------------------------------------------


def dumps(value: Any) -> str:
    """``json.dumps(value)`` for JSON-shaped data, byte for byte, without importing ``json``: its
    decoder pulls in ``re`` and ``enum``, 8 ms of every container start (the helper is a fresh
    interpreter each time)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return str(_quote(value))
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return float.__repr__(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_quote(str(key))}: {dumps(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(dumps(item) for item in value) + "]"
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def atomic_json(path: str, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` atomically and durably (composer.durable: a temp name of its own,
    fsync, rename, fsync of the folder), 0600: state files hold whole environments and probe
    output, root's alone (as Docker's config.v2.json). For the store's records; a run root's
    files go through ``state_json``."""
    durable.write_file(path, dumps(data).encode(), mode=0o600)


def state_json(path: str, data: dict[str, Any]) -> None:
    """``atomic_json`` for a file of the run root (config.json, state.json, exit.json, a
    supervisor's files): written whole, not fsynced, as a new boot discards it (composer.durable's
    ``sync=False``; the store's records are what survives a crash of the kernel)."""
    durable.write_file(path, dumps(data).encode(), mode=0o600, sync=False)


# The container's last exit, kept in its store folder (which a reboot keeps: /run is emptied):
# reboot.py shows it again, and weighs it for the restart policies, as dockerd does at start.
STORE_EXIT = "exit.json"


def store_exit_path(cfg: dict[str, Any]) -> str | None:
    """``<store>/containers/<id>/exit.json`` (the folder of the writable layer), None without one."""
    upper = (cfg.get("rootfs") or {}).get("upper")
    return os.path.join(os.path.dirname(str(upper)), STORE_EXIT) if upper else None


def keep_exit(cfg: dict[str, Any], exited: dict[str, Any]) -> None:
    """Copy the exit record to the store, with the restarts counted so far (supervise.json, as
    Docker's RestartCount). Not fsynced (this runs as the container ends, on ``run --rm``'s path):
    lost in a crash, the reboot recovery says 255, as dockerd does of a container it lost."""
    path = store_exit_path(cfg)
    if path is None:
        return
    restarts = 0
    try:
        with open(os.path.join(cfg["run_dir"], "supervise.json"), "rb") as f:
            restarts = _int_field(f.read(), b"restart_count")
    except OSError:
        pass
    tmp = durable.temporary_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, dumps({**exited, "restart_count": restarts}).encode())
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:  # the store folder is gone (removed meanwhile): nothing to keep
        try:
            os.unlink(tmp)
        except OSError:
            pass


def _int_field(data: bytes, name: bytes) -> int:
    """The integer member ``name`` of a flat JSON object (0 when absent), without importing json."""
    at = data.find(b'"' + name + b'"')
    if at < 0:
        return 0
    rest = data[at + len(name) + 2:].lstrip(b" \t:")
    digits = rest[:len(rest) - len(rest.lstrip(b"0123456789"))]
    return int(digits) if digits else 0


def forget_exit(cfg: dict[str, Any]) -> None:
    """The container runs again: its previous exit is not its last any more."""
    path = store_exit_path(cfg)
    if path is not None:
        try:
            os.unlink(path)
        except OSError:
            pass


def process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat (clock ticks since boot): tells a pid's reuse apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    return int(data[data.rindex(b")") + 2:].split()[19])


IN_ROOT = L.RESOLVE_IN_ROOT | L.RESOLVE_NO_MAGICLINKS
MAX_CREATE_STEPS = 256  # components made by one open_in_root, dangling symlinks and lost races included


def open_in_root(root_fd: int, path: str, create: str | None = None) -> int:
    """An O_PATH fd of ``path`` inside the root ``root_fd``, with every symlink and ``..`` resolved
    by the kernel as if that root were ``/`` (openat2 RESOLVE_IN_ROOT; /proc magic links refused).
    Neither an image's symlink nor one that a container sharing a volume swaps in meanwhile can
    lead outside (runc after CVE-2021-30465): mount through the fd (``L.fd_path``,
    ``L.attach_mount``), never through the path again. With ``create`` ("dir" or "file") missing
    directories are made and a missing last component created as that kind, each relative to its
    parent's fd; a dangling symlink on the way is followed (inside the root) and what it names made.

    :raises OSError: ENOENT (without ``create``), ENOTDIR, ELOOP...
    """
    for _ in range(MAX_CREATE_STEPS):
        try:
            return L.openat2(root_fd, path, os.O_PATH, IN_ROOT)
        except FileNotFoundError:
            if create is None:
                raise
        path = _create_first_missing(root_fd, path, create)
    raise OSError(40, f"cannot create {path}: it keeps changing")


def _create_first_missing(root_fd: int, path: str, create: str) -> str:
    """Make the first missing component of ``path`` (see ``open_in_root``); the path to look up
    next (another one when that component is a dangling symlink)."""
    parts = [p for p in path.split("/") if p and p != "."]
    for index, part in enumerate(parts):
        try:
            os.close(L.openat2(root_fd, "/".join(parts[:index + 1]), os.O_PATH, IN_ROOT))
            continue
        except FileNotFoundError:
            pass
        parent = L.openat2(root_fd, "/".join(parts[:index]) or ".", os.O_PATH | os.O_DIRECTORY, IN_ROOT)
        try:
            if index < len(parts) - 1 or create == "dir":
                os.mkdir(part, 0o755, dir_fd=parent)
            else:
                os.close(os.open(part, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK
                                 | os.O_CLOEXEC, 0o644, dir_fd=parent))
        except FileExistsError:  # a dangling symlink: what it names, inside the root
            try:
                target = os.readlink(part, dir_fd=parent)
            except OSError:
                return path  # not a symlink (made meanwhile): look again
            base = [] if target.startswith("/") else parts[:index]
            return "/".join([*base, target, *parts[index + 1:]])
        finally:
            os.close(parent)
        return path
    return path  # everything exists now (made meanwhile): look again


def in_root(root: str, path: str, create: str | None = None) -> str:
    """``open_in_root`` for a caller that needs a path: the kernel's name of what it resolved to.
    Only where nothing can change the tree meanwhile (the root filesystem before any volume is
    mounted, no process of the container running); elsewhere keep the fd."""
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root_fd, path, create)
    finally:
        os.close(root_fd)
    try:
        return os.readlink(L.fd_path(fd))
    finally:
        os.close(fd)


# --- PID 1: the container's root filesystem and process ----------------------------------------

MASK_NO_DEV = L.MS_NOSUID | L.MS_NOEXEC | L.MS_NODEV
DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0))
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
             ("stderr", "/proc/self/fd/2"), ("ptmx", "pts/ptmx"), ("core", "/proc/kcore"))
PROPAGATION = {"private": L.MS_PRIVATE, "rprivate": L.MS_PRIVATE | L.MS_REC, "shared": L.MS_SHARED,
               "rshared": L.MS_SHARED | L.MS_REC, "slave": L.MS_SLAVE, "rslave": L.MS_SLAVE | L.MS_REC}
TMPFS_FLAGS = {"ro": L.MS_RDONLY, "noexec": L.MS_NOEXEC, "nosuid": L.MS_NOSUID, "nodev": L.MS_NODEV,
               "noatime": L.MS_NOATIME, "nodiratime": L.MS_NODIRATIME, "relatime": L.MS_RELATIME,
               "strictatime": L.MS_STRICTATIME}
TMPFS_CLEARS = {"rw": L.MS_RDONLY, "exec": L.MS_NOEXEC, "suid": L.MS_NOSUID, "dev": L.MS_NODEV}
ST_FLAGS = ((os.ST_NOSUID, L.MS_NOSUID), (os.ST_NODEV, L.MS_NODEV), (os.ST_NOEXEC, L.MS_NOEXEC))


def _locked_flags(path: str) -> int:
    flags = os.statvfs(path).f_flag
    return sum(ms for st, ms in ST_FLAGS if flags & st)


def remount_readonly(path: str, recursive: bool = False) -> None:
    L.mount(None, path, None, L.MS_BIND | L.MS_REMOUNT | L.MS_RDONLY | _locked_flags(path)
            | (L.MS_REC if recursive else 0))


def mount_dev(root: str, shm_size: int, ipcns: str | None = None, shared_shm: int = -1,
              console: bool = False) -> None:
    dev = in_root(root, "/dev", create="dir")
    L.mount("tmpfs", dev, "tmpfs", L.MS_NOSUID | L.MS_STRICTATIME, "mode=755,size=65536k")
    for name, major, minor in DEVICES:
        path = os.path.join(dev, name)
        os.mknod(path, 0o666 | 0o020000, os.makedev(major, minor))
        os.chmod(path, 0o666)
    for name, target in DEV_LINKS:
        os.symlink(target, os.path.join(dev, name))
    for name in ("pts", "shm", "mqueue"):
        os.mkdir(os.path.join(dev, name), 0o755)
    if console:  # the terminal's peer is bound here (console.open_terminal), as runc does
        os.close(os.open(os.path.join(dev, "console"), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
    L.mount("devpts", os.path.join(dev, "pts"), "devpts", L.MS_NOSUID | L.MS_NOEXEC,
            "newinstance,ptmxmode=0666,mode=0620,gid=5")
    mount_shm(os.path.join(dev, "shm"), shm_size, ipcns, shared_shm)
    L.mount("mqueue", os.path.join(dev, "mqueue"), "mqueue", MASK_NO_DEV)


def mount_shm(target: str, size: int, ipcns: str | None, shared_shm: int) -> None:
    """/dev/shm as Docker sets it up for the ipc mode (see the module doc); ``shared_shm`` is
    the joined container's, from ``clone_shm``."""
    if shared_shm >= 0:
        L.attach_mount(shared_shm, target)
        os.close(shared_shm)
    elif ipcns == "host":
        L.mount("/dev/shm", target, None, L.MS_BIND | L.MS_REC)
    elif ipcns != "none":
        L.mount("shm", target, "tmpfs", MASK_NO_DEV, f"mode=1777,size={size}")


def clone_shm(ipcns: str) -> int:
    """A detached copy of /dev/shm of the container whose IPC namespace (``/proc/<pid>/ns/ipc``)
    is joined. A mount can be copied only from the caller's own mount namespace, hence the round
    trip into that container's (``/proc/<pid>/ns/mnt``); there paths resolve inside its root, so
    nothing outside it can be reached, and a symlink at /dev/shm is not followed."""
    own = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    try:
        join_namespace(os.path.join(os.path.dirname(ipcns), "mnt"), L.CLONE_NEWNS)
        try:
            return L.clone_mount("/dev/shm")
        finally:
            L.setns(own, L.CLONE_NEWNS)
    finally:
        os.close(own)


def join_namespace(path: str, kind: int) -> None:
    """setns into the namespace at ``path`` (``/proc/<pid>/ns/<kind>``)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        L.setns(fd, kind)
    finally:
        os.close(fd)


def enter_pid_namespace(pidns: str | None) -> None:
    """Where the container's first process, forked next, will live (see the module doc): a new
    pid namespace applies to children only, and so does one joined with setns."""
    if pidns is None:
        L.unshare(L.CLONE_NEWPID)
    elif pidns != "host":
        join_namespace(pidns, L.CLONE_NEWPID)


def kill_leftovers(cgroup: cgroups.Cgroup) -> None:
    """SIGKILL whatever is still in the cgroup once the container's first process has exited,
    until nothing is (a process may fork meanwhile)."""
    for _ in range(100):
        pids = cgroups.pids(cgroup)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        time.sleep(0.01)


def tmpfs_options(options: str) -> tuple[int, str]:
    """Mount flags and data for a Compose ``tmpfs`` entry's options (Docker's defaults: nosuid,
    nodev, noexec)."""
    flags = L.MS_NOSUID | L.MS_NODEV | L.MS_NOEXEC
    data = []
    for option in filter(None, options.split(",")):
        if option in TMPFS_FLAGS:
            flags |= TMPFS_FLAGS[option]
        elif option in TMPFS_CLEARS:
            flags &= ~TMPFS_CLEARS[option]
        else:
            data.append(option)
    return flags, ",".join(data)


class MountError(OSError):
    """A mount that cannot be made: its message alone, one line (no ``[Errno N]``)."""

    def __str__(self) -> str:
        return str(self.strerror)


def mount_user(root_fd: int, mount: dict[str, Any]) -> None:
    """A Compose bind, volume or tmpfs mount, on its target resolved in the root (``open_in_root``):
    a container sharing a volume on the way cannot redirect it. Read-only binds are read-only
    recursively (their submounts too), as Docker 25 and later make them; propagation is rprivate
    unless the mount says otherwise, as Docker's.

    :raises OSError: one line naming the target (also for a target in the container's /proc, as
        runc refuses, or its root).
    """
    kind = mount["type"]
    source = str(mount.get("source") or "")
    subpath = mount.get("subpath") if kind == "volume" else None
    inside = -1
    if subpath:
        try:
            inside = open_beneath(source, subpath)
        except OSError as exc:
            reason = ("it leads through a symlink or out of the volume" if exc.errno in (errno.ELOOP, errno.EXDEV)
                      else exc.strerror or str(exc))
            raise MountError(exc.errno, f"cannot mount the volume subpath {subpath} on {mount['target']}: "
                                        f"{reason}") from None
    is_dir = stat.S_ISDIR(os.fstat(inside).st_mode) if subpath else os.path.isdir(source)
    create = "dir" if kind == "tmpfs" or is_dir else "file"
    try:
        target = open_in_root(root_fd, mount["target"], create=create)
    except OSError as exc:
        if inside >= 0:
            os.close(inside)
        raise MountError(exc.errno, f"cannot mount on {mount['target']}: {exc.strerror or exc}") from None
    try:
        _check_mount_target(root_fd, target, mount)
        if kind == "tmpfs":
            flags, data = tmpfs_options(mount.get("options") or "")
            L.mount("tmpfs", L.fd_path(target), "tmpfs", flags, data or None)
            return
        if kind == "volume" and mount.get("fill"):
            fill_volume(target, source)
        recursive = mount.get("recursive") or "enabled"
        bind(inside if subpath else source, target, readonly=bool(mount.get("readonly")),
             propagation=mount.get("propagation") or "rprivate", recursive=recursive != "disabled",
             readonly_submounts=recursive != "writable")
    except OSError as exc:
        raise MountError(exc.errno, f"cannot mount on {mount['target']}: {exc.strerror or exc}") from None
    finally:
        os.close(target)
        if inside >= 0:
            os.close(inside)


BENEATH = L.RESOLVE_BENEATH | L.RESOLVE_NO_SYMLINKS | L.RESOLVE_NO_MAGICLINKS | L.RESOLVE_NO_XDEV


def open_beneath(base: str, relative: str) -> int:
    """An O_PATH fd of ``relative`` inside the directory ``base`` (a volume's), the kernel refusing
    during the walk any symlink (ELOOP), ``..`` out of it and another mount (EXDEV): the volume's
    content is a container's to write, so the mount goes through this fd, never the path again.
    Stricter than Docker, which follows a symlink that stays inside the volume."""
    base_fd = os.open(base, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return L.openat2(base_fd, relative, os.O_PATH, BENEATH)
    finally:
        os.close(base_fd)


# The /proc files runc lets a bind replace (lxcfs's): a file of the host's, never a directory.
PROC_FILES_BOUND = frozenset(("/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat", "/proc/swaps",
                              "/proc/uptime", "/proc/loadavg", "/proc/slabinfo", "/proc/sys/kernel/ns_last_pid",
                              "/proc/sys/crypto/fips_enabled"))


def _check_mount_target(root_fd: int, target: int, mount: dict[str, Any]) -> None:
    """Refuse a target in the container's /proc (but PROC_FILES_BOUND for a bind of a file, as
    runc) or at its root."""
    path = mount["target"]
    if L.fs_type(target) == L.PROC_SUPER_MAGIC and not (
            mount["type"] != "tmpfs" and os.path.normpath("/" + path.lstrip("/")) in PROC_FILES_BOUND
            and stat.S_ISREG(os.fstat(target).st_mode) and os.path.isfile(mount.get("source") or "")):
        raise MountError(1, f"{path} resolves into the container's /proc")
    found, root = os.fstat(target), os.fstat(root_fd)
    if (found.st_dev, found.st_ino) == (root.st_dev, root.st_ino):
        raise MountError(1, f"{path} resolves to the container's root")


def bind(source: str | int, target: int, *, readonly: bool = False, propagation: str | None = None,
         recursive: bool = True, readonly_submounts: bool = True) -> None:
    """Bind ``source`` (a path, followed, or an fd) on the fd ``target``, with its submounts unless
    not ``recursive``: the tree is cloned (open_tree), made read-only while still detached
    (mount_setattr, every submount with it unless not ``readonly_submounts``: Compose's
    ``recursive: writable``) and only then attached, so it is never writable in the container,
    not even for a moment."""
    tree = L.clone_mount(source, recursive=recursive, follow=True)
    try:
        if readonly:
            L.set_mount_readonly(tree, recursive=readonly_submounts)
        L.attach_mount(tree, target)
        if propagation:
            L.mount(None, L.fd_path(tree), None, PROPAGATION[propagation])  # the attached tree's root
    finally:
        os.close(tree)


def mount_etc_files(root_fd: int, etc_files: dict[str, str]) -> None:
    """The container's /etc/hosts, hostname and resolv.conf, bound from its run directory."""
    for target, source in etc_files.items():
        fd = open_in_root(root_fd, target, create="file")
        try:
            L.mount(source, L.fd_path(fd), None, L.MS_BIND)
        finally:
            os.close(fd)


def fill_volume(image_fd: int, volume_dir: str) -> None:
    """Docker's copy-up: an empty volume gets the image's content at its mount point (``image_fd``,
    from ``open_in_root``) once, owners, modes and times kept; see ``copyup`` for why it walks by
    fds and never follows a symlink."""
    from composer.backends.native.runtime import copyup

    copyup.fill(image_fd, volume_dir)


def loopback_up() -> None:
    """Bring ``lo`` up in a new network namespace (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    import _socket  # not socket: its enums cost milliseconds of every start
    import fcntl
    import struct

    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
    try:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock.fileno(), 0x8913, request))[1]
        fcntl.ioctl(sock.fileno(), 0x8914, struct.pack("16sH14x", b"lo", flags | 0x1))
    finally:
        sock.close()


def mask_paths(root_fd: int, masked: list[str], readonly: list[str]) -> None:
    """Docker's masked paths (a directory gets an empty read-only tmpfs, a file /dev/null) and
    read-only paths (bound on themselves, read-only with every submount), resolved in the root."""
    for path in readonly:
        target = _open_existing(root_fd, path)
        if target >= 0:
            try:
                bind(target, target, readonly=True)
            finally:
                os.close(target)
    null = open_in_root(root_fd, "/dev/null")
    try:
        for path in masked:
            target = _open_existing(root_fd, path)
            if target < 0:
                continue
            try:
                if stat.S_ISDIR(os.fstat(target).st_mode):
                    L.mount("tmpfs", L.fd_path(target), "tmpfs", L.MS_RDONLY, "size=0,nr_inodes=1")
                else:
                    L.mount(L.fd_path(null), L.fd_path(target), None, L.MS_BIND)
            finally:
                os.close(target)
    finally:
        os.close(null)


def _open_existing(root_fd: int, path: str) -> int:
    """``open_in_root`` of a path that may not exist on this kernel: -1 then."""
    try:
        return open_in_root(root_fd, path)
    except (FileNotFoundError, NotADirectoryError):
        return -1


def write_sysctls(proc_fd: int, sysctls: dict[str, str]) -> None:
    """Each ``key`` (dotted, validated by config.sysctls) written to sys/<key as a path> under the
    container's procfs (``proc_fd``, closed here), never to a path built from the key: openat2
    keeps every open beneath it, follows no symlink and crosses no mount."""
    try:
        for key, value in sysctls.items():
            try:
                fd = L.open_beneath(proc_fd, "sys/" + key.replace(".", "/"), os.O_WRONLY | os.O_NOCTTY)
            except OSError as exc:
                raise OSError(exc.errno, f"sysctl {key}: {exc.strerror}") from None
            try:
                os.write(fd, str(value).encode())
            finally:
                os.close(fd)
    finally:
        os.close(proc_fd)


def setup_rootfs(cfg: dict[str, Any], shared_shm: int = -1) -> None:
    if cfg.get("netns") is None:  # a network namespace of its own: lo up (the rest is networking's)
        loopback_up()
    rootfs = cfg["rootfs"]
    root = rootfs["mountpoint"]
    # Nothing mounted here may reach the host: slave when a bind asks for shared propagation.
    shared = any((m.get("propagation") or "").endswith(("shared", "slave")) for m in cfg.get("mounts") or ())
    L.mount(None, "/", None, L.MS_REC | (L.MS_SLAVE if shared else L.MS_PRIVATE))
    os.chdir(rootfs["layers_dir"])  # short relative lowerdirs keep the option under a page
    lower = ":".join(rootfs["lower"])
    L.mount("overlay", root, "overlay", 0,
            f"lowerdir={lower},upperdir={rootfs['upper']},workdir={rootfs['work']}")
    privileged = bool(cfg.get("privileged"))
    proc = in_root(root, "/proc", create="dir")
    L.mount("proc", proc, "proc", MASK_NO_DEV)
    # the container's procfs itself, held before anything else can be mounted over its path
    proc_fd = os.open(proc, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC) if cfg.get("sysctls") else -1
    mount_dev(root, int(cfg.get("shm_size") or 64 << 20), cfg.get("ipcns"), shared_shm, bool(cfg.get("tty")))
    sys_dir = in_root(root, "/sys", create="dir")
    L.mount("sysfs", sys_dir, "sysfs", MASK_NO_DEV | (0 if privileged else L.MS_RDONLY))
    # From here on a volume may be on the way, which a running container can change: fds only.
    root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for mount in cfg.get("mounts") or ():
        mount_user(root_fd, mount)
    mount_etc_files(root_fd, cfg.get("etc_files") or {})
    if cfg.get("init_binary"):
        fd = open_in_root(root_fd, "/sbin/docker-init", create="file")
        bind(cfg["init_binary"], fd, readonly=True, recursive=False)
        os.close(fd)
    if cfg.get("working_dir"):
        os.close(open_in_root(root_fd, cfg["working_dir"], create="dir"))
    if proc_fd >= 0:
        write_sysctls(proc_fd, cfg["sysctls"])
    if not privileged:
        mask_paths(root_fd, cfg.get("masked_paths") or [], cfg.get("readonly_paths") or [])
    os.close(root_fd)
    old_root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    os.chdir(root)
    L.pivot_root(".", ".")
    os.fchdir(old_root)  # "." is the old root, stacked on the new one (runc's order)
    os.close(old_root)
    L.mount(None, ".", None, L.MS_SLAVE | L.MS_REC)  # the old root only: the container's keep their propagation
    L.umount2(".", L.MNT_DETACH)
    os.chdir("/")
    if rootfs.get("readonly"):
        remount_readonly("/")


IMAGE_FILE_LIMIT = 16 << 20  # /etc/passwd and the like: far more than any real one


def read_image_file(path: str, *, dir_fd: int | None = None, follow: bool = True,
                    limit: int = IMAGE_FILE_LIMIT) -> bytes | None:
    """The content of ``path``, a file an image provides, or None when it is missing or not a
    regular file. It is opened with O_NONBLOCK and checked before it is read, so that a FIFO or a
    device in its place cannot block or feed us forever; at most ``limit`` bytes are read.
    ``follow=False``: a symlink as the last component is not followed (None)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks: list[bytes] = []
        size = 0
        while size < limit and (chunk := os.read(fd, min(1 << 16, limit - size))):
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def _read_entries(path: str) -> list[list[str]]:
    data = read_image_file(path)
    if data is None:
        return []
    return [line.split(":") for line in data.decode(errors="replace").split("\n")
            if line.strip() and not line.startswith("#")]


def resolve_user(spec: str, group_add: list[str], *, primary_in_groups: bool = True) -> tuple[int, int, list[int], str]:
    """uid, gid, supplementary gids and home of ``spec`` (``name``, ``uid``, ``name:group``,
    ``uid:gid``...) from the container's own /etc/passwd and /etc/group. The primary gid is a
    supplementary one too, as docker run makes it, unless not ``primary_in_groups`` (a build's
    RUN: BuildKit's executor gives the user's memberships only)."""
    user, _, group = (spec or "0").partition(":")
    passwd = [e for e in _read_entries("/etc/passwd") if len(e) >= 7]
    groups = [e for e in _read_entries("/etc/group") if len(e) >= 3]
    entry = next((e for e in passwd if e[0] == user), None)
    if entry is None and user.isdigit():
        entry = next((e for e in passwd if e[2] == user), None)
    if entry is None and not user.isdigit():
        raise ValueError(f"unable to find user {user}: no matching entries in passwd file")
    uid = int(entry[2]) if entry else int(user)
    gid = int(entry[3]) if entry else 0
    home = entry[5] if entry else "/"
    name = entry[0] if entry else None

    def group_id(value: str) -> int:
        found = next((g for g in groups if g[0] == value), None)
        if found is not None:
            return int(found[2])
        if value.isdigit():
            return int(value)
        raise ValueError(f"unable to find group {value}: no matching entries in group file")

    if group:
        gid = group_id(group)
    extra = []
    if name is not None and not group:
        extra = [int(g[2]) for g in groups if len(g) >= 4 and name in g[3].split(",")]
    extra += [group_id(g) for g in group_add]
    supplementary = [gid, *extra] if primary_in_groups else extra
    return uid, gid, sorted(set(supplementary), key=supplementary.index), home


RLIMITS = {"core": 4, "cpu": 0, "data": 2, "fsize": 1, "locks": 10, "memlock": 8, "msgqueue": 12, "nice": 13,
           "nofile": 7, "nproc": 6, "rss": 5, "rtprio": 14, "rttime": 15, "sigpending": 11, "stack": 3,
           "as": 9}


def set_ulimits(ulimits: dict[str, list[int]]) -> None:
    import resource

    for name, (soft, hard) in ulimits.items():
        number = RLIMITS[name]
        _, current_hard = resource.getrlimit(number)
        if current_hard != resource.RLIM_INFINITY and (hard < 0 or hard > current_hard):
            raise ValueError(f"ulimit {name}: hard limit {hard} is above this process's own ({current_hard})")
        resource.setrlimit(number, (resource.RLIM_INFINITY if soft < 0 else soft,
                                    resource.RLIM_INFINITY if hard < 0 else hard))


def exec_path(args: list[str], env: dict[str, str]) -> str:
    command = args[0]
    if "/" in command:
        return command
    for directory in env.get("PATH", DEFAULT_PATH).split(":"):
        candidate = os.path.join(directory or ".", command)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise ValueError(f'exec: "{command}": executable file not found in $PATH')


def seccomp_program(cfg: dict[str, Any]) -> bytes | None:
    """The filter program the orchestrator compiled for the container (``seccomp_program``, hex),
    or None when it runs without one; a container that should have one and has none fails
    rather than run unconfined."""
    program = cfg.get("seccomp_program")
    if program:
        return bytes.fromhex(program)
    if cfg.get("seccomp", "default") != "unconfined" and not cfg.get("privileged") and "seccomp_program" not in cfg:
        raise RuntimeError("no seccomp program in the container's configuration")
    return None


def await_go(fd: int, failure: str) -> None:
    """Wait for the one byte that lets the start go on (none to wait for when ``fd`` < 0)."""
    if fd >= 0:
        if os.read(fd, 1) != b"1":
            raise RuntimeError(failure)
        os.close(fd)


def container_main(cfg: dict[str, Any], sync_fd: int = -1, net_fd: int = -1, cgroup_fd: int = -1,
                   console_fd: int = -1) -> None:
    """PID 1 of the new pid namespace: everything up to execve (raises on any failure).
    ``net_fd`` >= 0: announce the network namespace on ``sync_fd`` and wait for it to be
    configured (see the module doc). ``cgroup_fd`` >= 0: one byte there says the monitor has
    moved this process into the container's cgroup (awaited before the cgroup namespace).
    ``console_fd`` >= 0 (``tty``): the socket the terminal's master goes to (console.py)."""
    L.make_undumpable()  # the host's python, seen from a joined pid namespace until execve
    os.umask(0o022)
    if cfg.get("oom_score_adj") is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(cfg["oom_score_adj"]))
    caps = list(cfg.get("capabilities") or ())
    mask = L.bounding_set() if cfg.get("privileged") else L.cap_mask(caps)
    no_new_privs = bool(cfg.get("no_new_privileges"))
    seccomp = seccomp_program(cfg)
    if seccomp is not None:
        # Everything imported or dlopen'ed from the host must be loaded before pivot_root.
        from composer.backends.native.runtime.seccomp import install
    if cfg.get("ulimits"):
        import resource  # noqa: F401 - imported before pivot_root, used by set_ulimits
    terminal = _terminal_module(console_fd)  # imported before pivot_root, as seccomp
    netns = cfg.get("netns")
    if netns and netns != "host":
        join_namespace(netns, L.CLONE_NEWNET)
    ipcns = cfg.get("ipcns")
    shared_shm = -1
    if ipcns not in (None, "none", "host"):
        shared_shm = clone_shm(ipcns)  # copied from our first mount namespace, attached in the next one
        join_namespace(ipcns, L.CLONE_NEWIPC)
    L.unshare(L.CLONE_NEWNS | L.CLONE_NEWUTS
              | (L.CLONE_NEWIPC if ipcns in (None, "none") else 0) | (L.CLONE_NEWNET if netns is None else 0))
    if net_fd >= 0:  # the caller configures /proc/<pid>/ns/net while the root filesystem is built
        answer(sync_fd, {"netns": int(os.readlink("/proc/self"))})  # still the host's /proc here
        os.close(sync_fd)
    setup_rootfs(cfg, shared_shm)
    if cfg.get("hostname"):
        L.sethostname(cfg["hostname"])
    if cfg.get("domainname"):
        L.setdomainname(cfg["domainname"])
    uid, gid, groups, home = resolve_user(cfg.get("user") or "0", list(cfg.get("group_add") or ()),
                                          primary_in_groups=not cfg.get("build_step"))
    env = dict(item.split("=", 1) if "=" in item else (item, "") for item in cfg.get("env") or ())
    env.setdefault("PATH", DEFAULT_PATH)
    env.setdefault("HOME", home or "/")
    args = list(cfg["args"])
    if cfg.get("init_binary"):
        args = ["/sbin/docker-init", "--", *args]
    path = exec_path(args, env)
    await_go(net_fd, "network setup failed")
    await_go(cgroup_fd, NOT_MOVED.decode())
    L.unshare(L.CLONE_NEWCGROUP)  # in its cgroup by now: the namespace is rooted there
    if cfg.get("ulimits"):
        set_ulimits(cfg["ulimits"])
    _new_session(terminal, console_fd, cfg, uid)
    L.close_on_exec_beyond_stdio()  # the program gets 0-2 only (before the filter, which might refuse it)
    if no_new_privs:
        L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
    if seccomp is not None and not no_new_privs:
        install(seccomp)  # still holding CAP_SYS_ADMIN
    L.set_capabilities(mask, uid=uid, gid=gid, groups=groups)
    L.make_undumpable()  # again: a change of uid resets it to fs.suid_dumpable
    if seccomp is not None and no_new_privs:
        install(seccomp)  # as late as possible (runc)
    os.chdir(cfg.get("working_dir") or "/")
    os.execve(path, args, env)


def _terminal_module(console_fd: int) -> Any:
    """runtime/console.py when PID 1 makes a terminal (``console_fd`` >= 0), else None."""
    if console_fd < 0:
        return None
    from composer.backends.native.runtime import console

    return console


def _new_session(terminal: Any, console_fd: int, cfg: dict[str, Any], uid: int) -> None:
    """PID 1's session; with a terminal (runc's setupConsole), that terminal's."""
    if terminal is None:
        os.setsid()
    else:
        terminal.open_terminal(console_fd, cfg.get("console_size"), uid)


# --- the monitor -------------------------------------------------------------------------------


def rfc3339(ns: int) -> str:
    seconds, fraction = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:09d}Z"


class LogWriter:
    """Docker's json-file format: one ``{"log", "stream", "time"}`` object per line of output,
    into a file rotated as ``logging`` says (``logfiles.settings``); the ``none`` driver keeps
    nothing."""

    def __init__(self, path: str, logging: dict[str, Any] | None = None) -> None:
        wanted = logfiles.settings(logging)
        self.file = None if wanted["driver"] == "none" else logfiles.RotatingFile(
            path, wanted["max_size"], wanted["max_file"], wanted["compress"])
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        data = self.partial[stream] + data
        lines = data.split(b"\n")
        self.partial[stream] = lines.pop()
        if len(self.partial[stream]) >= 16384:  # Docker's buffer: a long line is written in pieces
            lines.append(self.partial[stream])
            self.partial[stream] = b""
        self.write(stream, [line + b"\n" for line in lines])

    def write(self, stream: str, chunks: list[bytes]) -> None:
        if not chunks or self.file is None:
            return
        now = rfc3339(time.time_ns())
        out = "".join(dumps({"log": chunk.decode("utf-8", "replace"), "stream": stream, "time": now}) + "\n"
                      for chunk in chunks)
        self.file.write(out.encode())

    def close(self) -> None:
        for stream, rest in self.partial.items():
            self.write(stream, [rest] if rest else [])
        if self.file is not None:
            self.file.close()


def answer(sync_fd: int, message: dict[str, Any]) -> None:
    if sync_fd >= 0:
        try:
            os.write(sync_fd, dumps(message).encode() + b"\n")
        except OSError:
            pass


def move_into_cgroup(cgroup: cgroups.Cgroup, child: int, go_w: int) -> OSError | None:
    """Move PID 1 into its cgroup and let it go on (it builds its root filesystem meanwhile);
    the error, if the move failed (PID 1 then fails with NOT_MOVED)."""
    try:
        cgroups.enter(cgroup, child)
        os.write(go_w, b"1")
    except OSError as exc:
        return exc
    finally:
        os.close(go_w)
    return None


def monitor(cfg: dict[str, Any], sync_fd: int, net_fd: int = -1) -> int:
    cgroup: cgroups.Cgroup | None = None
    child = 0
    try:
        limits = cgroups.Limits.from_json(cfg.get("limits") or {})
        cgroup = cgroups.create(cfg["cgroup"], limits)
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        go_r, go_w = os.pipe()
        fail_r, fail_w = os.pipe()
        ours, theirs, in_r, in_w = _interactive_fds(cfg)  # interactive (console.py)
        enter_pid_namespace(cfg.get("pidns"))
        child = os.fork()
        if child == 0:
            try:
                if net_fd < 0:
                    os.close(sync_fd)
                for fd in (out_r, err_r, go_w, fail_r, in_w):
                    if fd >= 0:
                        os.close(fd)
                if ours is not None:
                    ours.close()
                if in_r >= 0:
                    os.dup2(in_r, 0)
                    os.close(in_r)
                _standard_streams(out_w, err_w)
                container_main(cfg, sync_fd, net_fd, go_r, theirs)  # moved into the cgroup meanwhile
            except BaseException as exc:
                _first_process_failed(fail_w, exc)
        for fd in (out_w, err_w, go_r, fail_w, in_r, theirs, *((net_fd,) if net_fd >= 0 else ())):
            if fd >= 0:
                os.close(fd)
        not_moved = move_into_cgroup(cgroup, child, go_w)
        started = await_exec(cfg, cgroup, child, fail_r, not_moved)
        out_r, err_r, in_w = _take_terminal(ours, out_r, err_r, in_w)
    except BaseException as exc:
        return start_failed(sync_fd, exc, child, cgroup)
    return serve(cfg, sync_fd, cgroup, child, out_r, err_r, started, in_w)


def _interactive_fds(cfg: dict[str, Any]) -> tuple[Any, int, int, int]:
    """An interactive container's channels (console.py): the monitor's end of the terminal's
    socket and PID 1's (``tty``), or a pipe kept open as its stdin (``stdin_open``): (ours,
    theirs, in_r, in_w), None and -1 where there is none."""
    ours, theirs = _console_socket() if cfg.get("tty") else (None, -1)
    in_r, in_w = os.pipe() if cfg.get("stdin_open") and not cfg.get("tty") else (-1, -1)
    return ours, theirs, in_r, in_w


def _take_terminal(ours: Any, out_r: int, err_r: int, in_w: int) -> tuple[int, int, int]:
    """After PID 1's execve: with a terminal (``ours``, its socket), the master PID 1 sent becomes
    the container's output and input; (out_r, err_r, in_w) to serve."""
    if ours is None:
        return out_r, err_r, in_w
    from composer.backends.native.runtime import console

    master = console.receive_master(ours)
    os.close(out_r)  # nothing writes the pipes: the terminal is PID 1's output
    os.close(err_r)
    return master, -1, master


def _console_socket() -> tuple[Any, int]:
    """The monitor's end (a socket object) and PID 1's (a descriptor) of the terminal's channel."""
    import socket

    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return ours, theirs.detach()


def _standard_streams(out_w: int, err_w: int) -> None:
    os.dup2(out_w, 1)
    os.dup2(err_w, 2)
    os.close(out_w)
    os.close(err_w)


def _first_process_failed(fail_w: int, exc: BaseException) -> None:
    try:
        os.write(fail_w, str(exc).encode() or type(exc).__name__.encode())
    finally:
        os._exit(127)


def await_exec(cfg: dict[str, Any], cgroup: cgroups.Cgroup, child: int, fail_r: int,
               not_moved: OSError | None) -> float:
    """Wait for PID 1's execve (its close-on-exec failure pipe closes) and record it as running;
    when it was. Raises PID 1's error."""
    failure = b""
    while chunk := os.read(fail_r, 4096):
        failure += chunk
    os.close(fail_r)
    # PID 1 may have failed on its own meanwhile (then the move failed too): its error first
    if failure and not (not_moved and failure.startswith(NOT_MOVED)):
        os.waitpid(child, 0)
        raise RuntimeError(failure.decode(errors="replace"))
    if not_moved is not None:
        raise not_moved
    started = time.time()
    state_json(os.path.join(cfg["run_dir"], "state.json"), {
        "status": "running", "pid": child, "pid_start": process_start_time(child), "monitor": os.getpid(),
        "monitor_start": process_start_time(os.getpid()), "started": started, "cgroup": cgroup.to_json()})
    forget_exit(cfg)
    faults.point("monitor.start.state-written")
    return started


def start_failed(sync_fd: int, exc: BaseException, child: int, cgroup: cgroups.Cgroup | None) -> int:
    """Undo a start that failed (PID 1, the cgroup) and answer the error."""
    if child:
        try:
            os.kill(child, 9)
            os.waitpid(child, 0)
        except OSError:
            pass
    if cgroup is not None:
        try:
            cgroups.remove(cgroup)
        except OSError:
            pass
    text = exc.strerror if isinstance(exc, OSError) and exc.filename is None and exc.strerror else str(exc)
    answer(sync_fd, {"ok": False, "error": text or type(exc).__name__})
    return 1


def serve(cfg: dict[str, Any], sync_fd: int, cgroup: cgroups.Cgroup, child: int, out_r: int, err_r: int,
          started: float, in_w: int = -1) -> int:
    """Answer the start, then the container's life: its logs, its exit, its cgroup's removal.
    An interactive container (``tty``, ``stdin_open``: ``out_r`` is the terminal's master then,
    ``in_w`` its stdin) is pumped by console.pump, which serves the attach socket too."""
    own_pidns = cfg.get("pidns") is None  # else the container's other processes outlive its first one
    leftovers = None if own_pidns else cgroup
    if cfg.get("tty") or cfg.get("stdin_open"):
        from composer.backends.native.runtime import console

        # the attach socket exists once the start answers
        hub = console.Hub(cfg, LogWriter(cfg["log_path"], cfg.get("logging")))
        answer(sync_fd, {"ok": True, "pid": child})
        os.close(sync_fd)
        outputs = {out_r: console.STDOUT, **({err_r: console.STDERR} if err_r >= 0 else {})}
        try:
            status = console.pump(hub, child, outputs, in_w, leftovers, kill_leftovers)
            # exit.json before the socket goes: a client that finds no socket (or is let go)
            # finds the exit code, without waiting for this process's end (processes.attach_container)
            write_exit(cfg, status, cgroup, started)
        finally:
            hub.close()
    else:
        answer(sync_fd, {"ok": True, "pid": child})
        os.close(sync_fd)
        status = pump_logs(cfg["log_path"], child, out_r, err_r, leftovers, cfg.get("logging"))
        write_exit(cfg, status, cgroup, started)
    try:
        cgroups.remove(cgroup)
    except OSError:
        pass
    return 0


def write_exit(cfg: dict[str, Any], status: int, cgroup: cgroups.Cgroup, started: float) -> None:
    """exit.json: the container's exit code (128+signal when killed), its signal, OOM kills; kept in
    the store first (keep_exit), so that whoever sees exit.json (a remove) finds the monitor done with it."""
    exit_code = os.waitstatus_to_exitcode(status)
    exited = {"exit_code": exit_code if exit_code >= 0 else 128 - exit_code,
              "signal": -exit_code if exit_code < 0 else None, "oom_killed": cgroups.oom_kills(cgroup) > 0,
              "started": started, "finished": time.time()}
    keep_exit(cfg, exited)
    state_json(os.path.join(cfg["run_dir"], "exit.json"), exited)


# --- spare monitors ---------------------------------------------------------------------------
# The first move of a process into a cgroup waits for an RCU grace period (~8-15 ms here), and a
# start also pays for a monitor's fork, its cgroup's directories and PID 1's fork. A spare pays all
# that before any container asks: it creates a cgroup named SPARE_PREFIX<pid> under the containers'
# parent, forks PID 1 into a new pid namespace, moves it into that cgroup, says b"ready" and waits.
# A start it takes renames the cgroup to the container's (v1 allows a rename within one parent; the
# cgroup2 hierarchy of a hybrid host, which only tracks processes, keeps the spare's name) and
# applies its limits, hands PID 1 the configuration and descriptors, and goes on as ``monitor``.

SPARE_PREFIX = "spare-"


def spare_main(channel_fd: int, parent: str, delay: float) -> int:
    """P0 of a spare (the forkserver forks it and reaps it): forks the spare monitor and exits."""
    if os.fork() != 0:
        return 0
    os.setsid()
    try:
        code = spare_monitor(channel_fd, parent, delay)
    except BaseException:
        code = 1
    os._exit(code)


def spare_monitor(channel_fd: int, parent: str, delay: float) -> int:
    import socket

    channel = socket.socket(fileno=channel_fd)
    time.sleep(delay)  # after the start that asked for it: its own cgroup move goes first
    try:
        if channel.recv(16, socket.MSG_DONTWAIT | socket.MSG_PEEK) == b"":
            return 0  # the forkserver closed meanwhile: no spare to make
    except BlockingIOError:
        pass
    layout = cgroups.detect()
    if layout.mode not in ("v1", "hybrid"):
        return 0  # a cgroup2 cgroup cannot be renamed: no spares there
    cgroup = cgroups.create(f"{parent}/{SPARE_PREFIX}{os.getpid()}", cgroups.Limits.from_json({}), layout)
    child = 0
    sync_fd = -1
    try:
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        fail_r, fail_w = os.pipe()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        L.unshare(L.CLONE_NEWPID)
        child = os.fork()
        if child == 0:
            try:
                channel.close()
                ours.close()
                for fd in (out_r, err_r, fail_r):
                    os.close(fd)
                _standard_streams(out_w, err_w)
                _spare_first_process(theirs)
            except BaseException as exc:
                _first_process_failed(fail_w, exc)
        theirs.close()
        for fd in (out_w, err_w, fail_w):
            os.close(fd)
        cgroups.enter(cgroup, child)
        channel.send(b"ready")
        request, fds, _, _ = socket.recv_fds(channel, 64, 4, socket.MSG_CMSG_CLOEXEC)
        channel.close()
        if not request:  # dismissed (the forkserver closed, or exited)
            raise SystemExit(0)
        config_fd, sync_fd, stderr_fd = fds[:3]
        net_fd = fds[3] if len(fds) > 3 else -1
        os.dup2(stderr_fd, 2)
        os.close(stderr_fd)
        cfg = _read_config(config_fd)
        cgroup = cgroups.adopt(cgroup, cfg["cgroup"], cgroups.Limits.from_json(cfg.get("limits") or {}))
        # an interactive container's channels are made now, for this start alone, and sent to PID 1
        # with its configuration (a terminal's socket, a stdin pipe), as monitor() hands them at fork
        console_sock, console_peer, in_r, in_w = _interactive_fds(cfg)
        sent = {"sync": sync_fd, "net": net_fd, "console": console_peer, "stdin": in_r}
        sent = {key: fd for key, fd in sent.items() if fd >= 0}
        socket.send_fds(ours, [marshal.dumps((cfg, tuple(sent)))], list(sent.values()))
        ours.close()
        for key in ("net", "console", "stdin"):
            if key in sent:
                os.close(sent[key])
        started = await_exec(cfg, cgroup, child, fail_r, None)
        out_r, err_r, in_w = _take_terminal(console_sock, out_r, err_r, in_w)
    except SystemExit:
        start_failed(-1, RuntimeError("dismissed"), child, cgroup)
        return 0
    except BaseException as exc:
        return start_failed(sync_fd, exc, child, cgroup)
    return serve(cfg, sync_fd, cgroup, child, out_r, err_r, started, in_w)


def _spare_first_process(channel: Any) -> None:
    """PID 1 of a spare: waits for its configuration and descriptors (sync; network, a terminal's
    socket, a stdin pipe when the container has them), then goes on as any PID 1, already in its
    cgroup. Dismissed (EOF): exits."""
    import socket

    data, fds, _, _ = socket.recv_fds(channel, 1 << 22, 4, socket.MSG_CMSG_CLOEXEC)
    channel.close()
    if not data:
        os._exit(0)
    cfg, keys = marshal.loads(data)
    received = dict(zip(keys, fds, strict=True))
    sync_fd, net_fd = received["sync"], received.get("net", -1)
    if net_fd < 0:
        os.close(sync_fd)
        sync_fd = -1
    if "stdin" in received:  # stdin_open without a terminal: the pipe the monitor keeps open
        os.dup2(received["stdin"], 0)
        os.close(received["stdin"])
    container_main(cfg, sync_fd, net_fd, console_fd=received.get("console", -1))


def _read_config(config_fd: int) -> dict[str, Any]:
    data = b""
    while chunk := os.read(config_fd, 65536):
        data += chunk
    os.close(config_fd)
    config: dict[str, Any] = marshal.loads(data)  # spawn() writes it so: no json import here (see dumps)
    return config


def pump_logs(log_path: str, child: int, out_r: int, err_r: int, leftovers: cgroups.Cgroup | None = None,
              logging: dict[str, Any] | None = None) -> int:
    """Copy the container's output into the log until it exits; its wait status. ``leftovers``:
    the cgroup whose processes are killed once it exits (they would hold the output open)."""
    import select

    log = LogWriter(log_path, logging)
    streams = {out_r: "stdout", err_r: "stderr"}
    pidfd = os.pidfd_open(child)
    poller = select.poll()
    for fd in (*streams, pidfd):
        poller.register(fd, select.POLLIN)
    status: int | None = None
    deadline: float | None = None
    while streams:
        timeout = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
        events = poller.poll(timeout)
        if not events and deadline is not None:
            break  # exited, and nothing more came for a while (a leaked writer)
        for fd, _ in events:
            if fd == pidfd:
                poller.unregister(pidfd)
                _, status = os.waitpid(child, 0)
                if leftovers is not None:
                    kill_leftovers(leftovers)
                deadline = time.monotonic() + 1.0
                continue
            data = os.read(fd, 65536)
            if data:
                log.feed(streams[fd], data)
            else:
                poller.unregister(fd)
                os.close(fd)
                del streams[fd]
    log.close()
    if status is None:
        _, status = os.waitpid(child, 0)
    os.close(pidfd)
    return status


def main(argv: list[str]) -> int:
    config_fd, sync_fd = int(argv[1]), int(argv[2])
    net_fd = int(argv[3]) if len(argv) > 3 else -1
    os.set_inheritable(sync_fd, False)
    if net_fd >= 0:
        os.set_inheritable(net_fd, False)
    try:
        cfg = _read_config(config_fd)
    except (ValueError, EOFError, TypeError) as exc:
        answer(sync_fd, {"ok": False, "error": f"bad configuration: {exc}"})
        return 2
    if os.fork() != 0:
        return 0  # P0: the caller reaps it at once; the monitor is reparented
    try:
        code = monitor(cfg, sync_fd, net_fd)
    except BaseException as exc:
        answer(sync_fd, {"ok": False, "error": f"monitor failed: {exc}"})
        code = 1
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
