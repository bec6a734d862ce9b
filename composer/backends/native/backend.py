"""NativeBackend: composer's own engine, no daemon. So far the image side of the Backend protocol,
on the content-addressed store and the registry client of composer.backends.native.image.

- ``observe`` reports the images in the store (under every spelling the planner may use: the
  fully qualified reference, Docker's short form, without ``:latest``, and the image ID);
  containers, networks and volumes are empty until the runtime is wired in.
- ``ensure_image`` pulls as Compose's ``pull_policy`` says (always, missing, never, build,
  daily, weekly, every_<duration>); ``push_image`` pushes from the store; ``list_images``
  answers for the containers it is given.
- ``build_image`` raises UnsupportedFeatureError: there is no native builder yet.

The container half (composer.backends.native.runtime, being built) plugs in by overriding the
methods under "containers": each raises a one-line error until then, so ``up`` fails cleanly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, NoReturn

import anyio.to_thread

from composer.backends.base import (
    BuildSpec,
    Capability,
    ContainerRef,
    ContainerSpec,
    ContainerState,
    ExecSpec,
    ImageSummary,
    LogLine,
    PathStat,
    ProcessList,
    ProjectSummary,
    Streams,
)
from composer.backends.native.image import oci
from composer.backends.native.image.reference import parse
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.errors import ImagePullError, UnsupportedFeatureError
from composer.planner.observed import ObservedState

if TYPE_CHECKING:
    from composer.events import EventSink
    from composer.spec.models import NetworkConfig, ServiceConfig, VolumeConfig

BACKEND_NAME = "native"


def image_aliases(record: ImageRecord) -> set[str]:
    """The spellings of a stored image that a Compose file may use."""
    ref = parse(record.reference)
    names = {str(ref), ref.familiar(), record.config}
    if ref.is_docker_hub:
        names.add(f"{ref.repository}:{ref.tag}" if ref.tag else ref.repository)
    for name in list(names):
        if name.endswith(":latest"):
            names.add(name.removesuffix(":latest"))
    return names


class NativeBackend:
    """The native backend: images now, containers when the runtime lands (see the module doc)."""

    name: ClassVar[str] = BACKEND_NAME
    capabilities: ClassVar[frozenset[Capability]] = frozenset()

    def __init__(self, root: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self._root = root
        self._environ = environ
        self._store: ImageStore | None = None

    @property
    def store(self) -> ImageStore:
        """The image store (COMPOSER_ROOT), created on first use."""
        if self._store is None:
            self._store = ImageStore.open(self._root, environ=self._environ)
        return self._store

    # --- observation ----------------------------------------------------------------------

    async def observe(
        self, project_name: str, *, external_networks: Sequence[str] = (), external_volumes: Sequence[str] = ()
    ) -> ObservedState:
        records = await anyio.to_thread.run_sync(lambda: self.store.images())
        images: set[str] = set()
        for record in records:
            images |= image_aliases(record)
        return ObservedState(project_name, images=frozenset(images))

    # --- images ---------------------------------------------------------------------------

    async def ensure_image(self, service: ServiceConfig, image: str, policy: str, sink: EventSink) -> None:
        """Pull ``image`` when ``policy`` asks for it (``build``: the planner builds instead).

        :raises ImageNotFoundError: missing under ``never``, or unknown to the registry.
        :raises ImagePullError: the pull failed (unreachable registry, digest mismatch...).
        """
        from composer.backends.native.image.pull import pull

        if (policy or "missing") == "build":
            return
        try:
            platform = oci.Platform.parse(service.platform) if service.platform else None
        except ValueError as exc:
            raise ImagePullError(f"service {service.name}: {exc}", backend_name=BACKEND_NAME,
                                 operation="pull") from None
        await pull(image, self.store, sink, policy, platform=platform)

    async def build_image(self, spec: BuildSpec, sink: EventSink) -> None:
        raise UnsupportedFeatureError(
            f"service {spec.service.name} has build: ; the native backend cannot build images yet "
            "(use --backend docker)", backend_name=BACKEND_NAME, operation="build")

    async def push_image(self, image: str, sink: EventSink) -> None:
        from composer.backends.native.image.push import push

        await push(image, self.store, sink)

    async def list_images(self, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
        if not refs:
            return []
        self._unavailable("images")

    async def aclose(self) -> None:
        return None

    # --- containers (composer.backends.native.runtime plugs in here) ----------------------

    def _unavailable(self, what: str) -> NoReturn:
        raise UnsupportedFeatureError(f"{what}: containers are not available yet on the native backend "
                                      "(use --backend docker)", backend_name=BACKEND_NAME, operation=what)

    async def create_network(self, project_name: str, key: str, network_name: str, config: NetworkConfig) -> str:
        self._unavailable("create network")

    async def remove_network(self, network_name: str) -> None:
        self._unavailable("remove network")

    async def create_volume(self, project_name: str, key: str, volume_name: str, config: VolumeConfig) -> str:
        self._unavailable("create volume")

    async def remove_volume(self, volume_name: str) -> None:
        self._unavailable("remove volume")

    async def create_container(self, spec: ContainerSpec) -> ContainerRef:
        self._unavailable("create container")

    async def start_container(self, ref: ContainerRef) -> None:
        self._unavailable("start container")

    async def stop_container(self, ref: ContainerRef, *, grace_seconds: float) -> None:
        self._unavailable("stop container")

    async def kill_container(self, ref: ContainerRef, *, signal: str) -> None:
        self._unavailable("kill container")

    async def remove_container(self, ref: ContainerRef, *, remove_volumes: bool) -> None:
        self._unavailable("remove container")

    async def rename_container(self, ref: ContainerRef, new_name: str) -> None:
        self._unavailable("rename container")

    async def container_state(self, ref: ContainerRef) -> ContainerState:
        self._unavailable("container state")

    def logs(self, refs: Sequence[ContainerRef], *, follow: bool, tail: int | None = None) -> AsyncIterator[LogLine]:
        self._unavailable("logs")

    async def pause_container(self, ref: ContainerRef) -> None:
        self._unavailable("pause")

    async def unpause_container(self, ref: ContainerRef) -> None:
        self._unavailable("unpause")

    async def wait_container(self, ref: ContainerRef) -> int:
        self._unavailable("wait")

    async def exec_in_container(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        self._unavailable("exec")

    async def attach_container(self, ref: ContainerRef, streams: Streams, *, tty: bool, start: bool) -> int:
        self._unavailable("attach")

    async def container_top(self, ref: ContainerRef) -> ProcessList:
        self._unavailable("top")

    async def stat_container_path(self, ref: ContainerRef, path: str) -> PathStat | None:
        self._unavailable("cp")

    async def copy_to_container(self, ref: ContainerRef, directory: str, archive: bytes) -> None:
        self._unavailable("cp")

    async def copy_from_container(self, ref: ContainerRef, path: str) -> bytes:
        self._unavailable("cp")

    async def list_projects(self, *, include_stopped: bool) -> list[ProjectSummary]:
        return []  # no native containers yet, so no projects
