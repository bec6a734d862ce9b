"""Install a compiled seccomp filter on the calling thread: the container's helper (PID 1
before execve, ``nsexec`` before an exec or a healthcheck) runs this with the program the
orchestrator compiled from the container's profile (``seccomp_bpf``), so the helper loads no
libseccomp and every process of a container gets the same filter, as runc gives ``exec``.

Imported by the helpers (``python -S``): ``ctypes`` and this package's ``linux`` only.
"""

from __future__ import annotations

import ctypes

from composer.backends.native.runtime import linux as L

PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SOCK_FILTER_SIZE = 8  # struct sock_filter: u16 code, u8 jt, u8 jf, u32 k


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(program: bytes) -> None:
    """Load ``program`` (a ``struct sock_filter`` array) as this thread's seccomp filter; needs
    CAP_SYS_ADMIN or no_new_privs, as the kernel checks.

    :raises OSError: the kernel refuses it (or it is not a whole number of instructions).
    """
    if not program or len(program) % SOCK_FILTER_SIZE:
        raise OSError(22, f"seccomp: a filter of {len(program)} bytes is not a BPF program")
    code = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // SOCK_FILTER_SIZE, ctypes.addressof(code))
    L.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.addressof(fprog))
