"""Docker's default seccomp profile, as data in this package's own form (``seccomp_profile``).

The facts are moby's (github.com/moby/profiles, seccomp/default_linux.go, the source its
default.json is generated from): refuse everything with EPERM, allow ~370 syscalls by name, a few
more by architecture, kernel version or capability, ``socket`` for the address families the
kernel still implements minus AF_ALG and AF_VSOCK, five ``personality`` values, ``clone``
without namespace flags unless CAP_SYS_ADMIN, and ``clone3`` answers ENOSYS without it (libc
then falls back to ``clone``, whose flags a filter can read). Syscalls newer than every one the
profile names answer ENOSYS too (the compiler adds that, as runc does).

Only the data lives here: ``seccomp_profile.Profile`` is the model, ``seccomp_bpf`` compiles it.
"""

from __future__ import annotations

import errno
import functools

from composer.backends.native.runtime.seccomp_profile import Arg, Condition, Profile, Rule

# Allowed to every container.
ALLOWED = """
accept accept4 access adjtimex alarm bind brk cachestat capget capset chdir chmod chown chown32
clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep
clock_nanosleep_time64 close close_range connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1
epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2
fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr flistxattr flock fork fremovexattr fsetxattr fstat
fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64 futex_wait
futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid
getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom
getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname getsockopt
get_thread_area gettid gettimeofday getuid getuid32 getxattr getxattrat inotify_add_watch inotify_init
inotify_init1 inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64
ioprio_get ioprio_set io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
lchown lchown32 lgetxattr link linkat listen listmount listxattr listxattrat llistxattr _llseek lremovexattr lseek
lsetxattr lstat lstat64 madvise map_shadow_stack membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
mknodat mlock mlock2 mlockall mmap mmap2 mprotect mq_getsetattr mq_notify mq_open mq_timedreceive
mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap mseal msgctl msgget msgrcv msgsnd msync
munlock munlockall munmap nanosleep newfstatat _newselect open openat openat2 pause pidfd_open
pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl pread64 preadv
preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead readlink
readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr removexattrat rename
renameat renameat2 restart_syscall riscv_hwprobe rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask
rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo
sched_getaffinity sched_getattr sched_getparam sched_get_priority_max sched_get_priority_min sched_getscheduler
sched_rr_get_interval sched_rr_get_interval_time64 sched_setaffinity sched_setattr sched_setparam
sched_setscheduler sched_yield seccomp select semctl semget semop semtimedop semtimedop_time64 send sendfile
sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32 setgid setgid32 setgroups setgroups32
setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32
setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid setuid32 setxattr setxattrat
shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall socketpair
splice stat stat64 statfs statfs64 statmount statx symlink symlinkat sync sync_file_range syncfs sysinfo tee
tgkill time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill
truncate truncate64 ugetrlimit umask uname unlink unlinkat uretprobe utime utimensat utimensat_time64 utimes
vfork vmsplice wait4 waitid waitpid write writev
""".split()

# Allowed on kernels >= 4.8, where seccomp runs after the tracer has had its say. Current moby
# allows process_vm_readv/writev here too; Docker 20.10 (Debian 12's dockerd, which the isolation
# probe compares with) wants CAP_SYS_PTRACE for them. Where the two differ, composer takes the
# stricter: they stay with CAP_SYS_PTRACE below.
SINCE_4_8 = ("ptrace",)

# socket(2) families allowed (AF_UNIX..AF_MCTP, the ones the kernel still implements), without
# AF_ALG (38: the kernel crypto API, CVE-2026-31431) and AF_VSOCK (40: host/guest channel). One
# "less than" for the first run from AF_UNIX, then one equality per family, because several
# comparisons on one argument are OR'ed rules (runc), so a bounded range cannot be written.
SOCKET_FAMILIES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 21, 22, 24, 26, 27, 28, 29, 30, 31,
                   32, 33, 35, 36, 39, 41, 42, 43, 44, 45)

# personality(2) values allowed: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query.
PERSONALITIES = (0x0, 0x0008, 0x20000, 0x20008, 0xFFFFFFFF)

# By architecture (matched against the host's, in Go's names as Docker does).
BY_ARCH: tuple[tuple[tuple[str, ...], tuple[str, ...]], ...] = (
    (("ppc64le",), ("sync_file_range2", "swapcontext")),
    (("arm", "arm64"), ("arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint", "cacheflush",
                        "set_tls")),
    (("amd64", "x32"), ("arch_prctl",)),
    (("amd64", "x32", "x86"), ("modify_ldt",)),
    (("s390", "s390x"), ("s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr")),
    (("riscv64",), ("riscv_flush_icache",)),
)

# Allowed only with the capability (the container's bounding set).
BY_CAPABILITY: tuple[tuple[str, tuple[str, ...]], ...] = (
    # name_to_handle_at: allowed to all by current moby, refused by Docker 20.10; the stricter of the two,
    # next to the call that uses its handles.
    ("CAP_DAC_READ_SEARCH", ("name_to_handle_at", "open_by_handle_at")),
    ("CAP_SYS_ADMIN", ("bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
                       "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
                       "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
                       "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare")),
    ("CAP_SYS_BOOT", ("reboot",)),
    ("CAP_SYS_CHROOT", ("chroot",)),
    ("CAP_SYS_MODULE", ("delete_module", "init_module", "finit_module")),
    ("CAP_SYS_PACCT", ("acct",)),
    ("CAP_SYS_PTRACE", ("kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace")),
    ("CAP_SYS_RAWIO", ("iopl", "ioperm")),
    ("CAP_SYS_TIME", ("settimeofday", "stime", "clock_settime", "clock_settime64")),
    ("CAP_SYS_TTY_CONFIG", ("vhangup",)),
    ("CAP_SYS_NICE", ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node")),
    ("CAP_SYSLOG", ("syslog",)),
    ("CAP_BPF", ("bpf",)),
    ("CAP_PERFMON", ("perf_event_open",)),
)

# CLONE_NEWNS|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWCGROUP: clone may set none of them without
# CAP_SYS_ADMIN (the flags are argument 0, argument 1 on s390).
NAMESPACE_FLAGS = 0x7E020000

# Docker's archMap: the host's architecture and the ABIs its kernel also runs.
ARCH_MAP: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("SCMP_ARCH_X86_64", ("SCMP_ARCH_X86", "SCMP_ARCH_X32")),
    ("SCMP_ARCH_AARCH64", ("SCMP_ARCH_ARM",)),
    ("SCMP_ARCH_MIPS64", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32")),
    ("SCMP_ARCH_MIPS64N32", ("SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64")),
    ("SCMP_ARCH_MIPSEL64", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32")),
    ("SCMP_ARCH_MIPSEL64N32", ("SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64")),
    ("SCMP_ARCH_S390X", ("SCMP_ARCH_S390",)),
    ("SCMP_ARCH_RISCV64", ()),
    ("SCMP_ARCH_LOONGARCH64", ()),
)


ALWAYS = Condition()


def _allow(names: tuple[str, ...] | list[str], *args: Arg, includes: Condition = ALWAYS,
           excludes: Condition = ALWAYS) -> Rule:
    return Rule(names=tuple(names), action="SCMP_ACT_ALLOW", args=args, includes=includes, excludes=excludes)


@functools.cache
def default_profile() -> Profile:
    """Docker's default profile (immutable, built once)."""
    rules = [_allow(ALLOWED), _allow(SINCE_4_8, includes=Condition(min_kernel=(4, 8)))]
    contiguous = 0  # AF_UNIX and the families that follow it without a gap: one "less than"
    while contiguous < len(SOCKET_FAMILIES) and SOCKET_FAMILIES[contiguous] == contiguous + 1:
        contiguous += 1
    rules.append(_allow(("socket",), Arg(0, contiguous + 1, 0, "SCMP_CMP_LT")))
    rules += [_allow(("socket",), Arg(0, family, 0, "SCMP_CMP_EQ")) for family in SOCKET_FAMILIES[contiguous:]]
    rules += [_allow(("personality",), Arg(0, value, 0, "SCMP_CMP_EQ")) for value in PERSONALITIES]
    rules += [_allow(names, includes=Condition(arches=arches)) for arches, names in BY_ARCH]
    rules += [_allow(names, includes=Condition(caps=(cap,))) for cap, names in BY_CAPABILITY[:2]]
    rules += [
        _allow(("clone",), Arg(0, NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),
               excludes=Condition(caps=("CAP_SYS_ADMIN",), arches=("s390", "s390x"))),
        _allow(("clone",), Arg(1, NAMESPACE_FLAGS, 0, "SCMP_CMP_MASKED_EQ"),
               includes=Condition(arches=("s390", "s390x")), excludes=Condition(caps=("CAP_SYS_ADMIN",))),
        Rule(names=("clone3",), action="SCMP_ACT_ERRNO", errno_ret=errno.ENOSYS,
             excludes=Condition(caps=("CAP_SYS_ADMIN",))),
    ]
    rules += [_allow(names, includes=Condition(caps=(cap,))) for cap, names in BY_CAPABILITY[2:]]
    return Profile(default_action="SCMP_ACT_ERRNO", default_errno_ret=errno.EPERM, arch_map=ARCH_MAP,
                   rules=tuple(rules))
