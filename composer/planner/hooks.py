"""``post_start`` and ``pre_stop``: commands exec'd in the container, as v2 runs them
(pkg/compose/hook.go): each hook in order, with its user, privileged flag, working_dir and
environment; post_start right after the container starts, pre_stop right before it is stopped
(stop, down, restart, recreate). A hook that exits non-zero fails the operation with v2's
message, ``<service> hook exited with status <n>``: a failed post_start leaves the container
running and fails the start, a failed pre_stop leaves it running and fails the stop, as in v2.
The hooks' output is not shown (v2 shows it only when ``up`` is attached).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from composer.contract.backend import ExecSpec, Streams
from composer.errors import HookError

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ContainerRef
    from composer.spec.models import ServiceHook


def exec_spec(service_name: str, hook: ServiceHook) -> ExecSpec:
    """The exec of one hook (variables without a value are left out, as v2 leaves them unset).

    :raises HookError: the hook has no command.
    """
    if not hook.command:
        raise HookError(f"{service_name} hook has no command")
    environment = {key: value for key, value in hook.environment.items() if value is not None}
    return ExecSpec(command=tuple(hook.command), user=hook.user or None, workdir=hook.working_dir or None,
                    environment=environment, privileged=hook.privileged, tty=False, interactive=False)


async def run_hooks(backend: Backend, ref: ContainerRef, service_name: str, hooks: tuple[ServiceHook, ...]) -> None:
    """Run ``hooks`` in the container one after the other; the first failure stops them.

    :raises HookError: a hook exited non-zero.
    """
    for hook in hooks:
        spec = exec_spec(service_name, hook)
        sink = io.BytesIO()
        code = await backend.exec_in_container(ref, spec, Streams(stdout=sink, stderr=sink))
        if code:
            raise HookError(f"{service_name} hook exited with status {code}")
