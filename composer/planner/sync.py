"""``watch``'s sync, on any backend (docker/compose internal/sync/tar.go): deleted paths are removed
with ``rm -rf`` run in each of the service's containers, the others are sent as one tar archive
extracted at ``/`` (the files' own owners and modes kept, as v2's CopyUIDGID). No decision here:
composer.planner.watch made them.
"""

from __future__ import annotations

import io
import tarfile
from typing import TYPE_CHECKING

from composer.errors import BackendError

if TYPE_CHECKING:
    from composer.contract.backend import Backend, ContainerRef
    from composer.planner.watch import PathMapping, ServiceSync


def sync_archive(copies: tuple[PathMapping, ...]) -> bytes:
    """The files and folders (recursively) to copy, each named by its container path without the
    leading ``/``; a path that vanished meanwhile is left out, a later mapping of the same name wins,
    and a path under a folder also sent comes with it."""
    entries: dict[str, str] = {}
    for mapping in copies:
        assert mapping.container_path is not None
        entries[mapping.container_path.lstrip("/")] = mapping.host_path
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, host_path in sorted(entries.items()):
            parts = name.split("/")
            if any("/".join(parts[:count]) in entries for count in range(1, len(parts))):
                continue  # a new folder's files come with the folder
            try:
                archive.add(host_path, arcname=name, recursive=True)
            except FileNotFoundError:
                continue
    return buffer.getvalue()


async def sync_service(backend: Backend, refs: list[ContainerRef], sync: ServiceSync) -> None:
    """Apply ``sync`` to each running container of the service.

    :raises BackendError: the deletion or the copy failed in a container.
    """
    from composer.contract.backend import ExecSpec, Streams

    archive = sync_archive(sync.copy) if sync.copy else b""
    for ref in refs:
        if sync.delete:
            output = io.BytesIO()
            code = await backend.exec_in_container(ref, ExecSpec(("rm", "-rf", *sync.delete), interactive=False),
                                                   Streams(output, output))
            if code != 0:
                raise BackendError(f"deleting paths in {ref.name}: exit code {code}: "
                                   f"{output.getvalue().decode(errors='replace').strip()}",
                                   backend_name=backend.name, operation="watch")
        if archive:
            await backend.copy_to_container(ref, "/", archive)
