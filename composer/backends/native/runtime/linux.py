"""ctypes bindings to the Linux calls the runtime needs (glibc 2.36 exports all of them).

Imported by the spawner's helper (``python -S``): stdlib ``os`` and ``ctypes`` only.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_UNBINDABLE = 1 << 17
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MNT_DETACH = 2
AT_FDCWD = -100
AT_SYMLINK_NOFOLLOW = 0x100
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
MOVE_MOUNT_F_EMPTY_PATH = 4
CLOSE_RANGE_CLOEXEC = 4
# the same numbers on every architecture (added after the syscall tables were unified); called by
# number, so that an older glibc without the wrappers still imports this module
SYS_CLOSE_RANGE = 436
SYS_OPENAT2 = 437
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 1
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
PROC_SUPER_MAGIC = 0x9FA0

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4

CAPS = ("CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE")
CAP_NUMBERS = {name: number for number, name in enumerate(CAPS)}
# Docker's default set (moby oci/caps/defaults.go); CapBnd 0xa80425fb.
DOCKER_DEFAULT_CAPS = ("CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
                       "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE")

_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.pivot_root.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
_libc.capset.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_libc.open_tree.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
_libc.move_mount.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64)]


_libc.syscall.restype = ctypes.c_long
_libc.mount_setattr.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint, ctypes.POINTER(_MountAttr),
                                ctypes.c_size_t]


def _check(result: int, what: str) -> int:
    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)),
           f"mount {fstype or source or ''} on {target}")


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), flags), f"umount {target}")


def unshare(flags: int) -> None:
    _check(_libc.unshare(flags), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(fd, nstype), "setns")


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2): ``path`` opened relative to ``dir_fd`` under the ``resolve`` rules (RESOLVE_IN_ROOT:
    symlinks and ``..`` resolved as if ``dir_fd`` were ``/``), checked by the kernel during the walk."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_libc.syscall(SYS_OPENAT2, ctypes.c_int(dir_fd), _b(path), ctypes.byref(how),
                                ctypes.c_size_t(ctypes.sizeof(how))), f"open {path}")


def clone_mount(path: str | int, recursive: bool = True, follow: bool = False) -> int:
    """A detached copy of the mount tree at ``path`` (open_tree(OPEN_TREE_CLONE)), as an fd that
    ``attach_mount`` places elsewhere, even in another mount namespace; a final symlink is not
    followed unless ``follow``. ``path`` may be an fd (an O_PATH one from ``openat2``)."""
    flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (0 if follow else AT_SYMLINK_NOFOLLOW) | (AT_RECURSIVE if recursive else 0)
    if isinstance(path, int):
        return _check(_libc.open_tree(path, b"", flags | AT_EMPTY_PATH), "open_tree")
    return _check(_libc.open_tree(AT_FDCWD, _b(path), flags), f"open_tree {path}")


def set_mount_readonly(fd: int, recursive: bool = True) -> None:
    """mount_setattr(MOUNT_ATTR_RDONLY) on the mount ``fd`` refers to (a detached one from
    ``clone_mount`` too), and with ``recursive`` on every mount under it: a submount of a
    read-only bind is read-only as well."""
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
    _check(_libc.mount_setattr(fd, b"", flags, ctypes.byref(attr), ctypes.sizeof(attr)), "mount_setattr")


def attach_mount(fd: int, target: str | int) -> None:
    """Mount the detached tree ``fd`` (from ``clone_mount``) on ``target``: a path, or an fd
    (O_PATH, from ``openat2``: nothing is looked up again, a symlink swapped in meanwhile is moot)."""
    if isinstance(target, int):
        _check(_libc.move_mount(fd, b"", target, b"", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH),
               "move_mount")
    else:
        _check(_libc.move_mount(fd, b"", AT_FDCWD, _b(target), MOVE_MOUNT_F_EMPTY_PATH), f"move_mount on {target}")


def fs_type(fd: int) -> int:
    """The file system type (``f_type`` of fstatfs(2), e.g. PROC_SUPER_MAGIC) of what ``fd`` refers to."""
    buffer = ctypes.create_string_buffer(256)  # struct statfs (120 bytes on 64-bit); f_type comes first
    _check(_libc.fstatfs(fd, buffer), "fstatfs")
    return ctypes.c_long.from_buffer(buffer).value


def fd_path(fd: int) -> str:
    """The magic link to ``fd`` for calls that take a path (mount(2) follows it to exactly that
    file, without a lookup by name)."""
    return f"/proc/self/fd/{fd}"


def close_on_exec_beyond_stdio() -> None:
    """Mark every descriptor above 2 close-on-exec, so that the next execve hands the program only
    its standard streams, whatever this process inherited or received (runc's CVE-2024-21626 fix
    does the same). One close_range call; the /proc/self/fd walk is for kernels before 5.11 or a
    filter that refuses close_range."""
    low, high, flags = ctypes.c_uint(3), ctypes.c_uint(0xFFFFFFFF), ctypes.c_uint(CLOSE_RANGE_CLOEXEC)
    if _libc.syscall(SYS_CLOSE_RANGE, low, high, flags) == 0:
        return
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            try:
                os.set_inheritable(fd, False)
            except OSError:  # the listing's own descriptor, closed by now
                pass


def make_undumpable() -> None:
    """PR_SET_DUMPABLE 0: /proc/<pid>/exe, fd, mem... of this process become root's and need
    CAP_SYS_PTRACE, so a container process cannot open the host binary a helper runs from while
    the helper is in the container's namespaces (CVE-2019-5736); the kernel makes the process
    dumpable again when it execs the container's program."""
    prctl(PR_SET_DUMPABLE, 0)


def open_beneath(dirfd: int, path: str, flags: int) -> int:
    """openat2 of ``path`` under ``dirfd`` that never leaves it: no ``..`` above it, no absolute
    path, no symlink (magic ones included), no crossing into another mount."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0,
                   RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)
    result = _libc.syscall(SYS_OPENAT2, ctypes.c_int(dirfd), _b(path), ctypes.byref(how),
                           ctypes.c_size_t(ctypes.sizeof(how)))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), path)
    return int(result)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_libc.pivot_root(_b(new_root), _b(put_old)), "pivot_root")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")


def sethostname(name: str) -> None:
    data = name.encode()
    _check(_libc.sethostname(data, len(data)), "sethostname")


def setdomainname(name: str) -> None:
    data = name.encode()
    _check(_libc.setdomainname(data, len(data)), "setdomainname")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    for i in range(2):
        shift = 32 * i
        data[i].effective = (effective >> shift) & 0xFFFFFFFF
        data[i].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[i].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")


def cap_mask(names: list[str] | tuple[str, ...]) -> int:
    mask = 0
    for name in names:
        mask |= 1 << CAP_NUMBERS[name]
    return mask


def bounding_set(status: str = "/proc/self/status") -> int:
    """The calling process's capability bounding set (CapBnd)."""
    with open(status) as f:
        for line in f:
            if line.startswith("CapBnd:"):
                return int(line.split()[1], 16)
    return 0


def last_cap() -> int:
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            return int(f.read())
    except OSError:
        return len(CAPS) - 1


def set_capabilities(mask: int, *, uid: int, gid: int, groups: list[int]) -> None:
    """Drop every capability outside ``mask`` from the bounding set, switch to uid/gid/groups
    keeping the capabilities, then set effective = permitted = ``mask`` and inheritable and
    ambient empty (as runc and crun do, in their order)."""
    for cap in range(last_cap() + 1):
        if not mask & (1 << cap):
            _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    prctl(PR_SET_KEEPCAPS, 1)
    os.setgroups(groups)
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    capset(mask, mask, 0)
    prctl(PR_SET_KEEPCAPS, 0)
    _libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
