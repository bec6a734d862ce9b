"""``ipc`` and ``pid`` set to ``service:X`` or ``container:X`` on the native backend: the container
joins X's IPC namespace (sharing its /dev/shm too) or its pid namespace when it starts, as Docker
does; X must be running then. ``host``, ``none`` and namespaces of its own are the runtime's
business (composer.backends.native.runtime.config).

The backend calls:

* ``container_settings(spec, run_root)`` at create: what config.json records under
  ``"namespaces"``: for each joined kind, X's project and name (X must exist);
* ``start_options(config)`` whenever the container is started (by the supervisor, or by an
  attached one-off): keyword arguments for ``Runtime.start`` (``ipcns=``, ``pidns=``).

``owner_project`` (X's project) and ``running_pid`` (X's pid, checked against its recorded start
time) serve network.settings' ``network_mode: service:X`` too (and ``volumes_from``: X's project).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.errors import BackendError, NotFoundError

if TYPE_CHECKING:
    from composer.contract.backend import ContainerSpec

BACKEND = "native"
KINDS = {"ipc": "IPC", "pid": "PID"}  # service key -> its name in Docker's errors


def container_settings(spec: ContainerSpec, run_root: Path) -> dict[str, dict[str, str]]:
    """The containers whose IPC or pid namespace this one joins: kind -> X's run_root, project, name.

    :raises NotFoundError: no container X.
    """
    joined: dict[str, dict[str, str]] = {}
    for key in KINDS:
        mode = getattr(spec.service, key, None)
        if not isinstance(mode, str) or not mode.startswith(("service:", "container:")):
            continue
        owner = spec.namespace_containers.get(key) or mode.partition(":")[2]
        joined[key] = {"run_root": str(run_root), "project": owner_project(run_root, spec.project_name, owner),
                       "container": owner}
    return joined


def start_options(config: dict[str, Any]) -> dict[str, Any]:
    """``ipcns``/``pidns`` for Runtime.start: ``/proc/<X's pid>/ns/<kind>`` of each joined kind.

    :raises BackendError: X is not running.
    """
    joined = config.get("namespaces") or {}
    return {f"{key}ns": f"/proc/{running_pid(settings, KINDS[key])}/ns/{key}" for key, settings in joined.items()}


def owner_project(run_root: Path, project: str, container: str) -> str:
    """The project of ``container`` (whose network namespace a service joins): this project's
    when it has one of that name, else the first other project that does. (``volumes_from``
    names its sources the same way.)

    :raises NotFoundError: no container of that name.
    :raises BackendError: an invalid project or container name (runtime.api.checked_name).
    """
    from composer.backends.native.runtime.api import checked_name, project_dir

    if (project_dir(run_root, project) / checked_name("container", container) / "config.json").is_file():
        return project
    for candidate in sorted(run_root.iterdir()) if run_root.is_dir() else ():
        if (candidate / container / "config.json").is_file():
            return candidate.name
    raise NotFoundError(f"No such container: {container}", backend_name=BACKEND, operation="create")


def running_pid(settings: dict[str, Any], kind: str) -> int:
    """The pid of the running container ``settings`` names (run_root, project, container),
    whose ``kind`` namespace is to be joined.

    :raises BackendError: it is not running (or its pid is another process's now).
    """
    from composer.backends.native.runtime.init import process_start_time

    owner = Path(settings["run_root"]) / settings["project"] / settings["container"]
    try:
        state = json.loads((owner / "state.json").read_bytes())
    except (OSError, ValueError):
        state = {}
    pid = state.get("pid") if isinstance(state, dict) else None
    if not pid or (owner / "exit.json").exists() or process_start_time(int(pid)) != state.get("pid_start"):
        raise BackendError(f"cannot join {kind} namespace of a non running container: {settings['container']}",
                           backend_name=BACKEND, operation="start")
    return int(pid)
