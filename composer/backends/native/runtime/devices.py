"""Device access control for cgroup2: a BPF_PROG_TYPE_CGROUP_DEVICE program made from a rule list.

cgroup2 has no devices controller; runc attaches a BPF program to the container's cgroup2
directory instead, and the kernel asks it on every open/mknod of a device node by a process of
that cgroup (or of a descendant): 0 is EPERM, 1 lets the access through. Composer does the same,
with the rules Docker's containers get (``DEFAULT_RULES``: moby's oci defaults plus runc's
built-in allow-list). On a hybrid host the program goes to the container's directory in the
cgroup2 hierarchy too, on top of the v1 devices rules: both must allow an access.

Rules are cgroup v1 ``devices.allow`` lines (``"c 1:3 rwm"``, ``"b *:* m"``, ``"a"``); all are
allow rules and everything else is denied. The program tests them in turn:

    r2 = ctx->access_type >> 16 (BPF_DEVCG_ACC_* bits), r3 = ctx->access_type & 0xffff (the type),
    r4 = ctx->major, r5 = ctx->minor
    per rule: type, then "the access asked is within the rule's", then major, then minor;
    all match: return 1; else on to the next rule
    return 0

The instructions are built once per rule set (``program``, cached; the forkserver builds the
default one before it forks any monitor), the load and attach (~0.25 ms here) are per cgroup
(a spare monitor's are done before its start), and the program stays attached until its cgroup
is removed, when the kernel frees it: nothing to clean up.

Imported by the spawner's helper (``python -S``): ``os``, ``struct`` and ``ctypes`` only.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# runc's defaults, which Docker's containers get (moby oci/defaults.go denies everything, allows
# null, zero, urandom, random, tty and console and denies fuse; runc's specconv AllowedDevices
# appends mknod of every char and block device, null, random, full, tty, zero, urandom, /dev/pts,
# ptmx and /dev/net/tun). Access to anything else, e.g. a host disk made with CAP_MKNOD or
# shipped in an image layer, is denied.
DEFAULT_RULES = ("c *:* m", "b *:* m", "c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                 "c 5:0 rwm", "c 5:1 rwm", "c 5:2 rwm", "c 136:* rwm", "c 10:200 rwm")

# include/uapi/linux/bpf.h
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_QUERY = 5, 8, 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6
BPF_F_ALLOW_MULTI = 2
DEV_BLOCK, DEV_CHAR = 1, 2  # BPF_DEVCG_DEV_*
ACCESS_BITS = {"m": 1, "r": 2, "w": 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
ALL_ACCESS = 7
SYS_BPF = {"x86_64": 321, "aarch64": 280, "riscv64": 280, "armv7l": 386, "armv8l": 386, "ppc64le": 361,
           "ppc64": 361, "s390x": 351, "i686": 357, "loongarch64": 280, "mips64": 5315}
LICENSE = b"Apache-2.0\0"  # the program calls no GPL-only helper

# eBPF opcodes (class | op | source)
_LDX_W = 0x61  # BPF_LDX | BPF_MEM | BPF_W: dst = *(u32 *)(src + off)
_MOV_X, _MOV_K = 0xBF, 0xB7  # BPF_ALU64 | BPF_MOV | BPF_X / BPF_K
_AND_K, _RSH_K = 0x57, 0x77  # BPF_ALU64 | BPF_AND / BPF_RSH | BPF_K
_JNE_K, _JNE_X = 0x55, 0x5D  # BPF_JMP | BPF_JNE | BPF_K / BPF_X
_EXIT = 0x95  # BPF_JMP | BPF_EXIT
_NEXT = 1 << 16  # a jump's offset to the next rule (no s16 offset), set once the rule's length is known


class DeviceRuleError(ValueError):
    """A device rule that is not a cgroup ``devices.allow`` line."""


def parse_rule(rule: str) -> tuple[int, int | None, int | None, int]:
    """``"c 1:3 rwm"`` as (type or 0 for any, major or None for any, minor or None, access bits)."""
    fields = rule.split()
    if fields == ["a"]:
        return 0, None, None, ALL_ACCESS
    if len(fields) != 3 or fields[0] not in ("a", "b", "c") or fields[1].count(":") != 1:
        raise DeviceRuleError(f"bad device rule {rule!r}: expected '<a|b|c> <major|*>:<minor|*> <rwm>'")
    kind = {"a": 0, "b": DEV_BLOCK, "c": DEV_CHAR}[fields[0]]
    numbers: list[int | None] = []
    for part in fields[1].split(":"):
        if part == "*":
            numbers.append(None)
        elif part.isdigit() and int(part) < 1 << 31:
            numbers.append(int(part))
        else:
            raise DeviceRuleError(f"bad device rule {rule!r}: {part!r} is not a device number or *")
    access = 0
    for letter in fields[2]:
        if letter not in ACCESS_BITS:
            raise DeviceRuleError(f"bad device rule {rule!r}: access {fields[2]!r} is not made of r, w and m")
        access |= ACCESS_BITS[letter]
    return kind, numbers[0], numbers[1], access


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> list[int]:
    return [code, dst, src, off, imm]


def _encode(insns: list[list[int]]) -> bytes:
    little = sys.byteorder == "little"  # struct bpf_insn's dst_reg:4, src_reg:4 follow the bit order
    out = bytearray()
    for code, dst, src, off, imm in insns:
        regs = (src << 4 | dst) if little else (dst << 4 | src)
        out += struct.pack("=BBhi", code, regs, off, imm)
    return bytes(out)


_programs: dict[tuple[str, ...], bytes] = {}


def program(rules: Iterable[str] = DEFAULT_RULES) -> bytes:
    """The program (struct bpf_insn array) allowing what ``rules`` allow and denying the rest;
    built once per rule set.

    :raises DeviceRuleError: a rule is malformed.
    """
    key = tuple(rules)
    cached = _programs.get(key)
    if cached is not None:
        return cached
    insns = [_insn(_LDX_W, 2, 1, 0), _insn(_MOV_X, 3, 2), _insn(_AND_K, 3, imm=0xFFFF), _insn(_RSH_K, 2, imm=16),
             _insn(_LDX_W, 4, 1, 4), _insn(_LDX_W, 5, 1, 8)]
    for rule in key:
        kind, major, minor, access = parse_rule(rule)
        block = []
        if kind:
            block.append(_insn(_JNE_K, 3, off=_NEXT, imm=kind))
        if access != ALL_ACCESS:  # every bit asked must be in the rule: (asked & allowed) == asked
            block += [_insn(_MOV_X, 6, 2), _insn(_AND_K, 6, imm=access), _insn(_JNE_X, 6, 2, off=_NEXT)]
        if major is not None:
            block.append(_insn(_JNE_K, 4, off=_NEXT, imm=major))
        if minor is not None:
            block.append(_insn(_JNE_K, 5, off=_NEXT, imm=minor))
        block += [_insn(_MOV_K, 0, imm=1), _insn(_EXIT)]
        for index, insn in enumerate(block):
            if insn[3] == _NEXT:
                insn[3] = len(block) - index - 1  # a jump goes to pc + 1 + off: the next rule's first
        insns += block
        if len(block) == 2:  # allows everything: what follows could not run (the verifier refuses that)
            break
    else:
        insns += [_insn(_MOV_K, 0, imm=0), _insn(_EXIT)]
    code = _encode(insns)
    _programs[key] = code
    return code


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    number = SYS_BPF.get(os.uname().machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"{what}: the bpf system call number of {os.uname().machine} is not known")
    result = int(_libc.syscall(ctypes.c_long(number), ctypes.c_int(command), attr, ctypes.c_uint(len(attr))))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def load(code: bytes) -> int:
    """Load ``code`` as a cgroup device program: its fd (close-on-exec).

    :raises OSError: the kernel refused it (no BPF, or the verifier's verdict in the message).
    """
    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(LICENSE, len(LICENSE))
    log = ctypes.create_string_buffer(4096)

    def attempt(log_level: int) -> int:
        attr = ctypes.create_string_buffer(128)
        struct.pack_into("=IIQQIIQ", attr, 0, BPF_PROG_TYPE_CGROUP_DEVICE, len(code) // 8,
                         ctypes.addressof(insns), ctypes.addressof(license), log_level,
                         len(log) if log_level else 0, ctypes.addressof(log) if log_level else 0)
        struct.pack_into("=I", attr, 68, BPF_CGROUP_DEVICE)  # expected_attach_type
        return _bpf(BPF_PROG_LOAD, attr, "loading the device cgroup program")

    try:
        return _memlock_retry(lambda: attempt(0))
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EINVAL):  # the verifier's refusal: again with its log
            raise
        try:
            attempt(1)
        except OSError:
            pass
        raise OSError(exc.errno, f"{exc.strerror}: {log.value.decode(errors='replace').strip()}") from None


def _memlock_retry(call: Callable[[], int]) -> int:
    """``call()``; on EPERM (kernels before 5.11 charge BPF to RLIMIT_MEMLOCK) once more with the
    limit raised, then put back, so the container's processes do not inherit the raised one."""
    try:
        return call()
    except OSError as exc:
        if exc.errno != errno.EPERM:
            raise
    import resource

    old = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    try:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (OSError, ValueError):
        return call()
    try:
        return call()
    finally:
        resource.setrlimit(resource.RLIMIT_MEMLOCK, old)


def attach(directory: str, rules: Iterable[str] = DEFAULT_RULES) -> None:
    """Attach the program for ``rules`` to the cgroup2 directory ``directory``. BPF_F_ALLOW_MULTI,
    as runc: programs attached to ancestors run too, and every one must allow an access.

    :raises OSError: BPF or the directory is unavailable (the message says which).
    """
    prog_fd = load(program(rules))
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            attr = ctypes.create_string_buffer(struct.pack("=IIIII", dir_fd, prog_fd, BPF_CGROUP_DEVICE,
                                                           BPF_F_ALLOW_MULTI, 0), 20)
            _bpf(BPF_PROG_ATTACH, attr, f"attaching the device cgroup program to {directory}")
        finally:
            os.close(dir_fd)
    finally:
        os.close(prog_fd)  # the attachment holds the program; the cgroup's removal releases it


def attached(directory: str) -> list[int]:
    """The ids of the device programs attached to ``directory`` itself (BPF_PROG_QUERY)."""
    ids = (ctypes.c_uint32 * 64)()
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attr = ctypes.create_string_buffer(struct.pack("=IIIIQI", dir_fd, BPF_CGROUP_DEVICE, 0, 0,
                                                       ctypes.addressof(ids), len(ids)), 40)
        _bpf(BPF_PROG_QUERY, attr, f"querying the device cgroup programs of {directory}")
    finally:
        os.close(dir_fd)
    (count,) = struct.unpack_from("=I", attr, 24)
    return list(ids[:count])
