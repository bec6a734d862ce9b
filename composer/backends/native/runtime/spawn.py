"""Start a container from a fresh single-threaded helper process (the orchestrator never forks).

``spawn`` runs the helper (``init.main`` in ``python -S -I``, see BOOTSTRAP) through subprocess
(vfork + exec, cheap even from a large process), writes the configuration to one pipe and reads
the helper's one-line JSON answer from another, as runc's sync socket and conmon's sync pipe do.
The helper's first process exits at once; the monitor it forked owns the container.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
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


def spawn(config: dict[str, Any], *, stderr_path: str | None = None, python: str | None = None) -> int:
    """Start the container described by ``config``; return its PID 1 (in the host's pid namespace)
    once its process has been exec'd.

    :raises SpawnError: the helper failed; nothing of the container is left running.
    """
    config_r, config_w = os.pipe()
    sync_r, sync_w = os.pipe()
    stderr = open(stderr_path, "ab") if stderr_path else subprocess.DEVNULL
    try:
        process = subprocess.Popen(
            [python or sys.executable, "-S", "-I", "-c", BOOTSTRAP, str(config_r), str(sync_w)],
            pass_fds=(config_r, sync_w), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True, env={})
    except OSError as exc:
        for fd in (config_r, config_w, sync_r, sync_w):
            os.close(fd)
        raise SpawnError(f"cannot start the runtime helper: {exc}") from None
    finally:
        if not isinstance(stderr, int):
            stderr.close()
    os.close(config_r)
    os.close(sync_w)
    try:
        with os.fdopen(config_w, "wb") as pipe:
            pipe.write(json.dumps(config).encode())
    except BrokenPipeError:
        pass
    process.wait()
    answer = b""
    with os.fdopen(sync_r, "rb") as pipe:
        while not answer.endswith(b"\n"):
            chunk = pipe.read1(4096)
            if not chunk:
                break
            answer += chunk
    if not answer:
        raise SpawnError(f"the runtime helper exited ({process.returncode}) without answering")
    message = json.loads(answer)
    if not message.get("ok"):
        raise SpawnError(str(message.get("error") or "unknown error").strip().splitlines()[-1])
    return int(message["pid"])
