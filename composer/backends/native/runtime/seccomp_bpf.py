"""Compile a seccomp profile (``seccomp_profile``) into the classic BPF program the kernel runs,
with libseccomp (Debian's libseccomp2) through ctypes, as runc does from the same profile.

``program`` takes what ``seccomp_profile.select`` kept for a container and returns the program's
bytes (``struct sock_filter`` array, host endianness): libseccomp's filter for the profile's
architectures (the host's and its sub-ABIs: x86 and x32 on x86_64, arm on aarch64), then, in
front of it, runc's ENOSYS stub: a syscall numbered above the highest one the profile names on
its ABI answers ENOSYS instead of the default action, so that libc falls back from a syscall
newer than the profile rather than failing (x32 syscalls, which carry bit 30, are compared with
the x32 maximum). Like runc: names libseccomp does not know are skipped, several comparisons of
one argument become separate (OR'ed) rules, a rule whose action is the default one is dropped,
ERRNO and TRACE without ``errnoRet`` return EPERM, no stub when the default action allows.

Runs in the orchestrator (create, start, exec), never in the container's helper: programs are
cached by (selection) in this process, and the helper only installs bytes (``seccomp.install``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import hashlib
import os
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from composer.backends.native.image.store import atomic_write
from composer.backends.native.runtime.seccomp_default import default_profile
from composer.backends.native.runtime.seccomp_profile import Arg, Rule, Selection, load, select
from composer.errors import BackendError

ACTIONS = {"SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000, "SCMP_ACT_KILL_PROCESS": 0x80000000,
           "SCMP_ACT_TRAP": 0x00030000, "SCMP_ACT_ERRNO": 0x00050000, "SCMP_ACT_TRACE": 0x7FF00000,
           "SCMP_ACT_LOG": 0x7FFC0000, "SCMP_ACT_ALLOW": 0x7FFF0000}
WITH_ERRNO = ("SCMP_ACT_ERRNO", "SCMP_ACT_TRACE")
ALLOWING = ("SCMP_ACT_ALLOW", "SCMP_ACT_LOG", "SCMP_ACT_TRACE")  # runc adds no ENOSYS stub for these
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4, "SCMP_CMP_GE": 5,
             "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
NR_SCMP_ERROR = -1  # libseccomp: a name it does not know (other negative numbers are pseudo-syscalls)
# The kernel's AUDIT_ARCH_* of each ABI (x32 shares x86_64's, its syscalls carry X32_SYSCALL_BIT).
AUDIT_ARCH = {"x86_64": 0xC000003E, "x32": 0xC000003E, "x86": 0x40000003, "aarch64": 0xC00000B7, "arm": 0x40000028,
              "riscv64": 0xC00000F3, "ppc64le": 0xC0000015, "s390x": 0x80000016, "s390": 0x00000016}
X32_SYSCALL_BIT = 0x40000000
# classic BPF opcodes the stub uses
BPF_LD_W_ABS, BPF_JMP_JA, BPF_JEQ_K, BPF_JGT_K, BPF_JSET_K, BPF_RET_K = 0x20, 0x05, 0x15, 0x25, 0x45, 0x06
SECCOMP_DATA_NR, SECCOMP_DATA_ARCH = 0, 4
CACHE_FORMAT = 1  # bump when the program for a selection changes (the stub, the rule mapping)
MAX_PROGRAM_BYTES = 4096 * 8  # BPF_MAXINSNS


class SeccompError(BackendError):
    """libseccomp is missing or refuses the profile."""

    def __init__(self, message: str) -> None:
        super().__init__(message, backend_name="native", operation="create")


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int), ("datum_a", ctypes.c_uint64),
                ("datum_b", ctypes.c_uint64)]


@functools.cache
def library(name: str = "libseccomp.so.2") -> ctypes.CDLL:
    """libseccomp with the prototypes used here, loaded once per process.

    :raises SeccompError: it is not installed.
    """
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError as exc:
        raise SeccompError(f"seccomp: cannot load {name} (apt-get install libseccomp2): {exc}") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_native.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name_arch.argtypes = [ctypes.c_uint32, ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ArgCmp)]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    return lib


def action_value(action: str, errno_ret: int | None) -> int:
    value = ACTIONS[action]
    if action in WITH_ERRNO:
        value |= (errno.EPERM if errno_ret is None else errno_ret) & 0xFFFF
    return value


def arch_name(scmp_arch: str) -> str:
    """SCMP_ARCH_X86_64 -> x86_64, libseccomp's name."""
    return scmp_arch.removeprefix("SCMP_ARCH_").lower()


def container_program(settings: Mapping[str, Any], cache_dir: Path | None = None) -> str | None:
    """The hex of the filter program for a container's settings (``config.service_config``:
    ``seccomp`` "default", "unconfined" or a profile file, ``capabilities``, ``privileged``);
    None for no filter: privileged (Docker ignores any profile then), unconfined, or a profile
    that disables seccomp. ``cache_dir`` keeps compiled programs across processes.

    :raises ProfileError: the profile file cannot be used.
    :raises SeccompError: libseccomp is missing or refuses the profile.
    """
    setting = settings.get("seccomp") or "default"
    if settings.get("privileged") or setting == "unconfined":
        return None
    profile = default_profile() if setting == "default" else load(str(setting))
    if profile.disabled:
        return None
    code = program(select(profile, list(settings.get("capabilities") or ())), cache_dir)
    return code.hex()


def program(selection: Selection, cache_dir: Path | None = None) -> bytes:
    """Compile ``selection``, or take it from the caches: this process's, then ``cache_dir``'s
    (compiling Docker's profile for three ABIs takes 15-35 ms; a program depends only on the
    selection, this libseccomp and this machine).

    :raises SeccompError: libseccomp is missing or refuses a rule or an architecture.
    """
    if cache_dir is None:
        return _compiled(selection)
    key = _cache_key(selection)
    path = cache_dir / f"{key}.bpf"
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            cached = f.read(MAX_PROGRAM_BYTES + 1)
        if cached and len(cached) % 8 == 0 and len(cached) <= MAX_PROGRAM_BYTES:
            return cached
    code = _compiled(selection)
    with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
        cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(path, code, mode=0o600)
    return code


def _cache_key(selection: Selection) -> str:
    version = library().seccomp_version().contents
    text = f"{CACHE_FORMAT}|{os.uname().machine}|{version.major}.{version.minor}.{version.micro}|{selection!r}"
    return hashlib.sha256(text.encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _compiled(selection: Selection) -> bytes:
    lib = library()
    default = action_value(selection.default_action, selection.default_errno_ret)
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise SeccompError("seccomp: seccomp_init failed")
    try:
        tokens = _add_arches(lib, ctx, selection.architectures)
        for rule in selection.rules:
            _add_rule(lib, ctx, rule, default)
        filter_code = _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)
    code = filter_code
    if selection.default_action not in ALLOWING:
        code = enosys_stub(_highest_syscalls(lib, tokens, selection.rules)) + filter_code
    if len(code) > MAX_PROGRAM_BYTES:  # refused now rather than by the kernel at every start
        raise SeccompError(f"seccomp: the profile compiles to {len(code) // 8} BPF instructions, more than the "
                           f"kernel's {MAX_PROGRAM_BYTES // 8}")
    return code


def _add_arches(lib: ctypes.CDLL, ctx: int, architectures: Sequence[str]) -> dict[str, int]:
    """Add the profile's architectures (the native one is there already); name -> token."""
    native = int(lib.seccomp_arch_native())
    tokens: dict[str, int] = {}
    for scmp in architectures:
        name = arch_name(scmp)
        token = int(lib.seccomp_arch_resolve_name(name.encode()))
        if token == 0:
            raise SeccompError(f"seccomp: architecture {scmp} is not known to this libseccomp")
        tokens[name] = token
        if token != native:
            rc = lib.seccomp_arch_add(ctx, token)
            if rc < 0 and rc != -errno.EEXIST:
                raise SeccompError(f"seccomp: cannot add architecture {scmp}: {os.strerror(-rc)}")
    if native not in tokens.values():
        for name in AUDIT_ARCH:
            if int(lib.seccomp_arch_resolve_name(name.encode())) == native:
                tokens[name] = native
    return tokens


def _conditions(args: Sequence[Arg]) -> list[list[_ArgCmp]]:
    """One rule's argument comparisons: all together, or one rule each when an argument is
    compared more than once (runc's reading: OR, not an impossible AND)."""
    compared = [_ArgCmp(arg.index, OPERATORS[arg.op], arg.value, arg.value_two) for arg in args]
    indexes = [arg.index for arg in args]
    if len(set(indexes)) < len(indexes):
        return [[cmp] for cmp in compared]
    return [compared]


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: Rule, default: int) -> None:
    action = action_value(rule.action, rule.errno_ret)
    if action == default:
        return  # libseccomp refuses it, and it would change nothing
    for name in rule.names:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number == NR_SCMP_ERROR:
            continue  # not a syscall this libseccomp knows, on any architecture
        for conditions in _conditions(rule.args):
            array = (_ArgCmp * max(len(conditions), 1))(*conditions)
            rc = lib.seccomp_rule_add_array(ctx, action, number, len(conditions), array)
            if rc < 0:
                raise SeccompError(f"seccomp: rule for {name} refused by libseccomp: {os.strerror(-rc)}")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
    try:
        rc = lib.seccomp_export_bpf(ctx, fd)
        if rc < 0:
            raise SeccompError(f"seccomp: cannot export the filter: {os.strerror(-rc)}")
        size = os.lseek(fd, 0, os.SEEK_CUR)
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)


def _highest_syscalls(lib: ctypes.CDLL, tokens: dict[str, int], rules: Sequence[Rule]) -> dict[str, int]:
    """ABI name -> the highest syscall number the rules name on it (ABIs naming none left out)."""
    names = {name for rule in rules for name in rule.names}
    highest: dict[str, int] = {}
    for arch, token in tokens.items():
        numbers = [lib.seccomp_syscall_resolve_name_arch(token, name.encode()) for name in names]
        known = [n for n in numbers if n >= 0]
        if known and arch in AUDIT_ARCH:
            highest[arch] = max(known)
    return highest


def enosys_stub(highest: dict[str, int]) -> bytes:
    """BPF run before libseccomp's filter: per ABI, a syscall above ``highest[abi]`` returns
    ENOSYS; everything else falls through to the filter (which checks the architecture again).

    Each ABI section: ``jeq arch`` (else skip the section), ``ld nr``, the comparisons, ``ja
    filter``; the stub ends with ``ja filter`` (other architectures) and ``ret ENOSYS``. x86_64
    and x32 share AUDIT_ARCH_X86_64 and are told apart by bit 30 of the number."""
    by_audit: dict[int, dict[str, int]] = {}
    for arch, number in highest.items():
        by_audit.setdefault(AUDIT_ARCH[arch], {})[arch] = number
    sections: list[list[tuple[int, int | str, int | str, int | str]]] = []
    for audit, abis in by_audit.items():
        body: list[tuple[int, int | str, int | str, int | str]] = [(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR)]
        if "x32" in abis:
            if "x86_64" in abis:  # bit 30 set: x32 (two instructions below), else x86_64
                body += [(BPF_JSET_K, 2, 0, X32_SYSCALL_BIT),
                         (BPF_JGT_K, "enosys", 0, abis["x86_64"]), (BPF_JMP_JA, 0, 0, "filter")]
            else:  # only x32 named: x86_64 numbers go to the filter as they are
                body += [(BPF_JSET_K, 0, "filter", X32_SYSCALL_BIT)]
            body += [(BPF_JGT_K, "enosys", 0, abis["x32"]), (BPF_JMP_JA, 0, 0, "filter")]
        else:
            (only,) = abis.values()
            if "x86_64" in abis:  # x32 syscalls are not this section's business
                body += [(BPF_JSET_K, "filter", 0, X32_SYSCALL_BIT)]
            body += [(BPF_JGT_K, "enosys", 0, only), (BPF_JMP_JA, 0, 0, "filter")]
        sections.append([(BPF_JEQ_K, 0, len(body), audit), *body])
    code: list[tuple[int, int | str, int | str, int | str]] = [(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH)]
    for section in sections:
        code += section
    code += [(BPF_JMP_JA, 0, 0, "filter"), (BPF_RET_K, 0, 0, ACTIONS["SCMP_ACT_ERRNO"] | errno.ENOSYS)]
    labels = {"enosys": len(code) - 1, "filter": len(code)}
    out = bytearray()
    for i, (op, jt, jf, k) in enumerate(code):
        jt_, jf_, k_ = (labels[v] - (i + 1) if isinstance(v, str) else v for v in (jt, jf, k))
        if not (0 <= jt_ <= 255 and 0 <= jf_ <= 255):
            raise SeccompError("seccomp: the ENOSYS stub is too long")  # never with a few ABIs
        out += struct.pack("=HBBI", op, jt_, jf_, k_)
    return bytes(out)
