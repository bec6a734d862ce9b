"""Volumes of native containers: the project's named volumes, a container's volume mounts (anonymous
ones made at create) and ``volumes_from`` resolved into binds of the same directories."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from composer import labels
from composer.backends.native import namespaces
from composer.backends.native.errors import error, unsupported
from composer.backends.native.runtime import volumes
from composer.errors import NotFoundError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers
    from composer.contract.backend import ContainerSpec
    from composer.spec.models import ServiceConfig, VolumeConfig

ANONYMOUS_LABEL = "com.docker.volume.anonymous"


def create_volume(containers: NativeContainers, project: str, key: str, name: str, config: VolumeConfig) -> str:
    containers.projects.lock(project)
    if config.driver not in (None, "local"):
        raise unsupported(f"volume {name}: driver {config.driver} is not supported by the native backend yet",
                          "create volume")
    if config.driver_opts:
        from composer.backends.native.coverage import COVERAGE

        raise unsupported(f"volume {name}: {COVERAGE['volumes.driver_opts'].note}", "create volume")
    if volumes.inspect(containers.store.root, name) is None:
        containers.created_volumes.setdefault(project, []).append(name)
    volumes.create(containers.store.root, name, {**config.labels, labels.VOLUME: key, labels.PROJECT: project,
                                           labels.VERSION: labels.COMPATIBLE_VERSION})
    return name

def remove_volume(containers: NativeContainers, name: str) -> None:
    if not volumes.remove(containers.store.root, name):
        raise error(f"get {name}: no such volume", "remove volume", NotFoundError)


def with_inherited_mounts(containers: NativeContainers, project: str, service: ServiceConfig,
                          sources: Sequence[str]) -> ServiceConfig:
    """``volumes_from``: each source container's volumes and binds, as binds of the same
    directories (``:ro`` / ``:rw`` override their mode), after the service's own mounts;
    a target the service mounts itself keeps the service's.

    :raises NotFoundError: a source container does not exist.
    """
    if not sources:
        return service
    from composer.spec.models import ServiceVolume  # the models load lazily

    taken = {volume.target for volume in service.volumes}
    inherited: list[ServiceVolume] = []
    for entry in sources:
        name, _, mode = entry.partition(":")
        owner = namespaces.owner_project(containers.run_root, project, name)
        for mount in containers.runtime.config(owner, name).get("mounts") or ():
            if mount.get("type") not in ("bind", "volume") or mount["target"] in taken:
                continue
            taken.add(mount["target"])
            read_only = mode == "ro" or (mode != "rw" and bool(mount.get("readonly")))
            inherited.append(ServiceVolume(type="bind", source=mount["source"], target=mount["target"],
                                           read_only=read_only))
    # resolved here into mounts: the runtime, which refuses volumes_from, never sees it
    return service.model_copy(update={"volumes": (*service.volumes, *inherited), "volumes_from": ()})


def volume_paths(containers: NativeContainers, spec: ContainerSpec, created: list[str]
                 ) -> tuple[dict[str, str], list[str]]:
    """target -> data directory of each volume mount (anonymous ones created here)."""
    paths: dict[str, str] = {}
    anonymous: list[str] = []
    for volume in spec.service.volumes:
        if volume.type != "volume" or volume.target is None:
            continue
        if volume.source:
            name = spec.volume_names.get(volume.source, volume.source)
            if volumes.inspect(containers.store.root, name) is None:
                volumes.create(containers.store.root, name, {})
                created.append(name)
        else:
            name = volumes.anonymous_name()
            volumes.create(containers.store.root, name, {labels.PROJECT: spec.project_name, ANONYMOUS_LABEL: ""},
                           anonymous=True)
            created.append(name)
            anonymous.append(name)
        paths[volume.target] = str(volumes.data_dir(containers.store.root, name))
    return paths, anonymous
