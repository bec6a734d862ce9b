"""``cp`` for NativeBackend: a container's files as tar archives (synchronous; the backend runs
each call in a worker thread).

The archives are made and unpacked by the helper of composer.backends.native.runtime.cpexec,
inside the container's files: a running container's as its processes see them (its mount
namespace: volumes, binds and tmpfs mounts included); a created or exited one's as its overlay
(image layers and writable layer) with its volumes, binds and etc files, mounted in the helper's
private mount namespace, never on the host. The container's lock is held meanwhile, so that it
cannot start halfway through (two overlay mounts must not share a writable layer).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from composer.backends.native.runtime import cpexec
from composer.backends.native.runtime.supervisor import read_json
from composer.contract.backend import ContainerRef, PathStat
from composer.errors import BackendError, NotFoundError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers
    from composer.backends.native.runtime.api import Runtime

BACKEND = "native"
OPERATION = "copy"


def stat_path(containers: NativeContainers, ref: ContainerRef, path: str) -> PathStat | None:
    """What ``path`` is in the container; None when it does not exist.

    :raises NotFoundError: no such container.
    """
    try:
        found = json.loads(_helper(containers, ref, {"op": "stat", "path": path}))
    except cpexec.CopyFailed as exc:
        if exc.code == cpexec.EXIT_MISSING:
            return None
        raise _translated(exc) from None
    return PathStat(str(found["name"]), int(found["size"]), bool(found["is_dir"]), str(found["link_target"]))


def copy_to(containers: NativeContainers, ref: ContainerRef, directory: str, archive: bytes) -> None:
    """Extract ``archive`` into ``directory`` in the container.

    :raises NotFoundError: no such container, or ``directory`` does not exist in it.
    :raises BackendError: an entry was refused (out of ``directory``), or could not be written.
    """
    try:
        _helper(containers, ref, {"op": "put", "directory": directory}, archive)
    except cpexec.CopyFailed as exc:
        raise _translated(exc) from None


def copy_from(containers: NativeContainers, ref: ContainerRef, path: str) -> bytes:
    """``path`` in the container as a tar archive whose top entry is named after it.

    :raises NotFoundError: no such container, or ``path`` does not exist in it.
    """
    try:
        return _helper(containers, ref, {"op": "get", "path": path})
    except cpexec.CopyFailed as exc:
        raise _translated(exc) from None


def _helper(containers: NativeContainers, ref: ContainerRef, request: dict[str, Any], archive: bytes = b"") -> bytes:
    project, name, config = containers.locate(ref, OPERATION)
    runtime = containers.runtime
    with runtime._locked(project, name):  # a start waits for the copy (see the module doc)
        return cpexec.run({**request, **_files(runtime, project, name, config), "container": name}, archive)


def _files(runtime: Runtime, project: str, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Where the helper finds the container's files: its PID 1's mount namespace while it runs,
    else its overlay and mounts."""
    if runtime.state(project, name).status == "running":
        state = read_json(runtime.run_dir(project, name) / "state.json") or {}
        return {"pid": state["pid"], "pid_start": state.get("pid_start")}
    return {"rootfs": config["rootfs"], "mounts": config.get("mounts") or [],
            "etc_files": config.get("etc_files") or {}}


def _translated(exc: cpexec.CopyFailed) -> BackendError:
    cls = NotFoundError if exc.code == cpexec.EXIT_MISSING else BackendError
    return cls(str(exc), backend_name=BACKEND, operation=OPERATION)
