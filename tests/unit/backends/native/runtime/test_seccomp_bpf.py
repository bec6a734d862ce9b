"""The profile compiler, run for real: a forked child installs a compiled program (with
no_new_privs, so no root is needed) and reports what a few syscalls answer."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from pathlib import Path

import pytest

from composer.backends.native.runtime import linux as L
from composer.backends.native.runtime.seccomp import install
from composer.backends.native.runtime.seccomp_bpf import SeccompError, container_program, library, program
from composer.backends.native.runtime.seccomp_profile import parse, select

# What a Python child needs to keep running and report (allowed by every profile below).
RUNTIME = ["read", "write", "close", "exit", "exit_group", "mmap", "munmap", "mprotect", "brk", "madvise", "futex",
           "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "fstat", "newfstatat", "lseek",
           "getrandom", "gettid", "getpid"]
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.syscall.argtypes = [ctypes.c_long, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]


def number(name: str) -> int:
    value = library().seccomp_syscall_resolve_name(name.encode())
    assert value >= 0, name
    return int(value)


def answers(code: bytes, calls: dict[str, tuple[int, int]]) -> dict[str, str]:
    """Each call's errno name (or "ok") in a child that installed ``code``."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            L.prctl(L.PR_SET_NO_NEW_PRIVS, 1)
            install(code)
            out = []
            for label, (nr, arg) in calls.items():
                rc = _libc.syscall(nr, arg, 0, 0)
                out.append(f"{label}={'ok' if rc != -1 else errno.errorcode[ctypes.get_errno()]}")
            os.write(write_end, "\n".join(out).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    os.waitpid(pid, 0)
    return dict(line.split("=", 1) for line in text.splitlines())


def test_errno_rules_or_ed_argument_comparisons_and_the_enosys_stub() -> None:
    profile = parse(json.dumps({
        "defaultAction": "SCMP_ACT_ERRNO",  # EPERM, as Docker's
        "syscalls": [
            {"names": RUNTIME, "action": "SCMP_ACT_ALLOW"},
            # two comparisons of one argument: either value (runc's reading), not both at once
            {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                      {"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}]},
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno.EACCES},
            {"names": ["not_a_syscall_anywhere"], "action": "SCMP_ACT_ALLOW"},
        ],
    }), "inline")
    code = program(select(profile, ()))
    got = answers(code, {"getpid": (number("getpid"), 0), "getppid": (number("getppid"), 0),
                         "personality_0": (number("personality"), 0),
                         "personality_query": (number("personality"), 0xFFFFFFFF),
                         "personality_5": (number("personality"), 5), "getuid": (number("getuid"), 0),
                         "beyond": (1000, 0)})
    assert got == {"getpid": "ok", "getppid": "EACCES", "personality_0": "ok", "personality_query": "ok",
                   "personality_5": "EPERM", "getuid": "EPERM",
                   "beyond": "ENOSYS"}  # above every syscall the profile names: ENOSYS, not EPERM


def test_an_allowing_default_adds_no_stub_and_programs_are_cached_on_disk(tmp_path: Path) -> None:
    profile = tmp_path / "p.json"
    profile.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                   "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_ERRNO"}]}))
    settings = {"seccomp": str(profile), "capabilities": ["CHOWN"], "privileged": False}
    first = container_program(settings, cache_dir=tmp_path / "cache")
    assert first is not None
    cached = list((tmp_path / "cache").iterdir())
    assert len(cached) == 1
    assert oct(cached[0].stat().st_mode & 0o777) == "0o600"
    assert container_program(settings, cache_dir=tmp_path / "cache") == first
    got = answers(bytes.fromhex(first), {"getppid": (number("getppid"), 0), "getuid": (number("getuid"), 0)})
    assert got == {"getppid": "EPERM", "getuid": "ok"}  # ERRNO without errnoRet is EPERM (runc)
    assert container_program({**settings, "privileged": True}) is None  # Docker: no filter when privileged
    assert container_program({**settings, "seccomp": "unconfined"}) is None
    (tmp_path / "off.json").write_text("{}")
    assert container_program({**settings, "seccomp": str(tmp_path / "off.json")}) is None


def test_a_profile_too_large_for_the_kernel_is_refused_when_compiled() -> None:
    profile = parse(json.dumps({  # 4200 OR'ed comparisons: one instruction each, and a few more
        "defaultAction": "SCMP_ACT_ERRNO",
        "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                      "args": [{"index": 0, "value": value, "op": "SCMP_CMP_EQ"} for value in range(4200)]}],
    }), "inline")
    with pytest.raises(SeccompError, match="more than the kernel's 4096"):
        program(select(profile, ()))
