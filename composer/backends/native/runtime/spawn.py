"""Start a container from a fresh single-threaded helper process (the orchestrator never forks).

``spawn`` runs the helper (``init.main`` in ``python -S -I``, see BOOTSTRAP) through subprocess
(vfork + exec, cheap even from a large process), writes the configuration to one pipe and reads
the helper's one-line JSON answer from another, as runc's sync socket and conmon's sync pipe do.
The helper's first process exits at once; the monitor it forked owns the container.
"""

from __future__ import annotations

import contextlib
import json
import marshal
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

_FOLDER = str(Path(__file__).resolve().parent)
# ``python -S -I -c BOOTSTRAP``: register the enclosing packages as bare namespaces so that importing
# init (byte-compiled and cached, unlike a script) does not run composer's package __init__s
# (typing, errors...: 10-15 ms of every container start).
BOOTSTRAP = f"""import sys, types
folder = {_FOLDER!r}
for name in ("composer.backends.native.runtime", "composer.backends.native", "composer.backends", "composer"):
    package = types.ModuleType(name)
    package.__path__ = [folder]
    sys.modules[name] = package
    folder = folder.rsplit("/", 1)[0]
from composer.backends.native.runtime.init import main
sys.exit(main(sys.argv))
"""


class SpawnError(Exception):
    """The helper reported an error (or died without answering); the message is one line."""


def spawn(config: dict[str, Any], *, stderr_path: str | None = None, python: str | None = None,
          on_netns: Callable[[int], None] | None = None) -> int:
    """Start the container described by ``config``; return its PID 1 (in the host's pid namespace)
    once its process has been exec'd.

    ``on_netns(pid)`` (optional) is called once PID 1 is in its network namespace
    (``/proc/<pid>/ns/net``) and before its command runs, which waits until the call returns. An
    exception from it aborts the start and is re-raised once the container is gone.

    :raises SpawnError: the helper failed; nothing of the container is left running.
    """
    config_r, config_w = os.pipe()
    sync_r, sync_w = os.pipe()
    net_r, net_w = os.pipe() if on_netns is not None else (-1, -1)
    extra = (net_r,) if on_netns is not None else ()
    stderr = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [python or sys.executable, "-S", "-I", "-c", BOOTSTRAP, str(config_r), str(sync_w),
             *map(str, extra)],
            pass_fds=(config_r, sync_w, *extra), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=stderr, start_new_session=True, env={})
    except OSError as exc:
        for fd in (config_r, config_w, sync_r, sync_w, *extra, *((net_w,) if extra else ())):
            os.close(fd)
        raise SpawnError(f"cannot start the runtime helper: {exc}") from None
    finally:
        if not isinstance(stderr, int):
            stderr.close()
    os.close(config_r)
    os.close(sync_w)
    for fd in extra:
        os.close(fd)
    net = [net_w] if net_w >= 0 else []
    try:
        return _run(process, config, config_w, sync_r, net, on_netns)
    finally:
        for fd in net:
            os.close(fd)


def _run(process: subprocess.Popen[bytes], config: dict[str, Any], config_w: int, sync_r: int, net: list[int],
         on_netns: Callable[[int], None] | None) -> int:
    try:
        with os.fdopen(config_w, "wb") as pipe:
            pipe.write(marshal.dumps(config))  # the helper reads it without importing json
    except BrokenPipeError:
        pass
    process.wait()
    hook_error: BaseException | None = None
    with os.fdopen(sync_r, "rb") as pipe:
        while True:
            answer = pipe.readline()
            if not answer:
                raise SpawnError(f"the runtime helper exited ({process.returncode}) without answering")
            message = json.loads(answer)
            if "netns" not in message:
                break
            try:
                assert on_netns is not None
                on_netns(int(message["netns"]))
            except BaseException as exc:  # PID 1 sees EOF and fails: its answer follows
                hook_error = exc
            else:
                with contextlib.suppress(OSError):
                    os.write(net[0], b"1")
            os.close(net.pop())
    if hook_error is not None:
        raise hook_error
    if not message.get("ok"):
        raise SpawnError(str(message.get("error") or "unknown error").strip().splitlines()[-1])
    return int(message["pid"])
