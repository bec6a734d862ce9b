"""Reading a ``security_opt: seccomp=<file>`` profile, for every backend.

The docker CLI and Compose v2 read the file on the client and send its JSON to the engine; the
native backend compiles it. Both read it here: a regular file only (a FIFO must not hang the
command), bounded in size (a ``/dev/zero`` must not exhaust memory), errors in one line naming the
file. The path is taken as given: relative to the working directory, as Compose v2 reads it.
"""

from __future__ import annotations

import os
import stat

from composer.errors import SpecValidationError

MAX_PROFILE_BYTES = 4 << 20  # Docker's profiles are ~20 KB


class ProfileError(SpecValidationError):
    """A seccomp profile file that cannot be used (one line, naming the file)."""


def read_profile(path: str) -> bytes:
    """The file's bytes.

    :raises ProfileError: missing, unreadable, not a regular file, or larger than MAX_PROFILE_BYTES.
    """
    try:  # O_NONBLOCK: opening a FIFO must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ProfileError(f"seccomp profile {path}: not a regular file")
            chunks, size = [], 0
            while size <= MAX_PROFILE_BYTES:
                chunk = os.read(fd, MAX_PROFILE_BYTES + 1 - size)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
    except OSError as exc:
        raise ProfileError(f"seccomp profile {path}: {exc.strerror or exc}") from None
    if size > MAX_PROFILE_BYTES:
        raise ProfileError(f"seccomp profile {path}: larger than {MAX_PROFILE_BYTES >> 20} MiB")
    return b"".join(chunks)
