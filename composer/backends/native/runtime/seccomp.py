"""A default seccomp filter equivalent to Docker's, loaded through libseccomp (Debian's
libseccomp2) with ctypes.

Docker's profile (moby profiles/seccomp/default.json) allows ~350 syscalls by name and refuses
the rest with EPERM; some are allowed only with a capability. This filter inverts it: it allows
everything except the syscalls Docker's profile does not allow, and lifts those a granted
capability re-enables, exactly as the profile's ``includes.caps`` entries do. ``clone`` with a
namespace flag and ``unshare`` need CAP_SYS_ADMIN; ``clone3`` answers ENOSYS so that libc falls
back to ``clone`` (Docker does the same). Privileged containers get no filter.

Imported by the spawner's helper (``python -S``): ``ctypes`` and ``os`` only.
"""

from __future__ import annotations

import ctypes
import errno

# Refused unless the capability in the key is granted (moby's default.json "includes.caps").
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "SYS_ADMIN": ("bpf", "fanotify_init", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
                  "fsconfig", "fsmount", "fsopen", "fspick", "name_to_handle_at", "perf_event_open", "quotactl",
                  "quotactl_fd", "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2",
                  "unshare", "pivot_root"),
    "SYS_BOOT": ("reboot",),
    "SYS_CHROOT": (),
    "SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "SYS_PACCT": ("acct",),
    "SYS_PTRACE": ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"),
    "SYS_RAWIO": ("iopl", "ioperm"),
    "SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64", "adjtimex", "clock_adjtime",
                 "clock_adjtime64"),
    "SYS_TTY_CONFIG": ("vhangup",),
    "SYS_NICE": ("get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node"),
    "SYSLOG": ("syslog",),
    "BPF": ("bpf",),
    "PERFMON": ("perf_event_open",),
    "DAC_READ_SEARCH": ("open_by_handle_at",),
}
# Refused whatever the capabilities (not in Docker's allow list at all).
ALWAYS = ("add_key", "keyctl", "request_key", "kexec_load", "kexec_file_load", "create_module", "get_kernel_syms",
          "query_module", "nfsservctl", "swapon", "swapoff", "sysfs", "_sysctl", "uselib", "userfaultfd", "ustat",
          "vm86", "vm86old", "open_by_handle_at", "afs_syscall", "break",
          "ftime", "getpmsg", "gtty", "lock", "mpx", "prof", "profil", "putpmsg", "security", "stty", "tuxcall",
          "ulimit", "vserver")
# ptrace is allowed on kernels >= 4.8 (seccomp is checked after the tracer), as Docker does.
ALLOWED_SINCE_48 = ("ptrace", "process_vm_readv", "process_vm_writev")
NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_NNP = 3


def SCMP_ACT_ERRNO(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


def refused(capabilities: set[str]) -> list[str]:
    """The syscalls the default filter refuses for a container with ``capabilities``."""
    names = set(ALWAYS)
    granted: set[str] = set()
    for cap, calls in BY_CAPABILITY.items():
        (granted if cap in capabilities else names).update(calls)
    names -= granted
    names -= set(ALLOWED_SINCE_48)
    names -= {"open_by_handle_at"} if "DAC_READ_SEARCH" in capabilities else set()
    return sorted(names)


_LOADED: dict[str, ctypes.CDLL] = {}


def load_library(name: str = "libseccomp.so.2") -> ctypes.CDLL:
    """libseccomp with its prototypes, loaded once per process: a forkserver loads it before it
    forks, so that a container's PID 1 does not pay for the dlopen (~3 ms).

    :raises OSError: libseccomp is missing.
    """
    lib = _LOADED.get(name)
    if lib is not None:
        return lib
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise OSError(errno.ENOENT, f"cannot load {name} (apt-get install libseccomp2): {exc}") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    _LOADED[name] = lib
    return lib


class Filter:
    """The default filter, built while libseccomp is reachable (before pivot_root) and loaded
    later with ``load`` (the last step before execve)."""

    def __init__(self, capabilities: set[str], *, no_new_privs: bool = False,
                 library: str = "libseccomp.so.2") -> None:
        """:raises OSError: libseccomp is missing or refuses a rule."""
        lib = self.lib = load_library(library)
        self.ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
        if not self.ctx:
            raise OSError(errno.ENOMEM, "seccomp_init failed")
        if not no_new_privs:  # libseccomp sets no_new_privs by default; Docker does not
            lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_NNP, 0)
        eperm = SCMP_ACT_ERRNO(errno.EPERM)
        for name in refused(capabilities):
            self.rule(eperm, name)
        if "SYS_ADMIN" not in capabilities:
            for flag in NAMESPACE_FLAGS:
                self.rule(eperm, "clone", _ArgCmp(0, SCMP_CMP_MASKED_EQ, flag, flag))
        self.rule(SCMP_ACT_ERRNO(errno.ENOSYS), "clone3")

    def rule(self, action: int, name: str, *args: _ArgCmp) -> None:
        number = self.lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not a syscall on this architecture
        array = (_ArgCmp * max(len(args), 1))(*args)
        rc = self.lib.seccomp_rule_add_array(self.ctx, action, number, len(args), array)
        if rc < 0:
            raise OSError(-rc, f"seccomp rule for {name}: {errno.errorcode.get(-rc, rc)}")

    def load(self) -> None:
        """Install the filter on the calling thread (needs CAP_SYS_ADMIN or no_new_privs)."""
        try:
            rc = self.lib.seccomp_load(self.ctx)
            if rc < 0:
                raise OSError(-rc, f"seccomp_load: {errno.errorcode.get(-rc, rc)}")
        finally:
            self.lib.seccomp_release(self.ctx)
