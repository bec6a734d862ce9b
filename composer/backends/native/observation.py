"""What the native backend reports: a project's containers, networks and volumes as the planner
observes them (no supervisor needed, so ``ps`` and ``down`` work after it died), the projects
(``ls``) and the images of containers (``images``)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer import labels
from composer.backends.native.network import settings as networking
from composer.backends.native.runtime import volumes
from composer.backends.native.status import listed_ports, status_text
from composer.contract.backend import ContainerRef, ImageSummary, ProjectSummary
from composer.contract.observed import ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume
from composer.errors import NotFoundError
from composer.image_reference import parse

if TYPE_CHECKING:
    from composer.backends.native.image.store import ImageStore
    from composer.backends.native.lifecycle import NativeContainers


def observe(containers: NativeContainers, project: str, external_networks: Sequence[str],
            external_volumes: Sequence[str], image_ids: tuple[tuple[str, str], ...],
            project_images: tuple[tuple[str, str], ...] = ()) -> ObservedState:
    """The project's containers, networks and volumes, the external ones named, and the local
    images: ``image_ids`` holds (reference, id) for each spelling of each; ``project_images``
    (tag, service) those built for the project (``built_images``)."""
    containers.projects.lock(project)
    containers.projects.check_supervisor(
        project, lambda name: containers.state(project, name).status == "running")
    observed = []
    published = networking.published_ports(containers.run_root)
    for name in containers.runtime.containers(project):
        try:
            config = containers.runtime.config(project, name)
            state = containers.state(project, name, config)
        except NotFoundError:
            continue
        found = config.get("labels") or {}
        if labels.SERVICE not in found:
            continue
        number = str(found.get(labels.CONTAINER_NUMBER, ""))
        observed.append(ObservedContainer(
            container_id=str(config["id"]), name=name, service_name=found[labels.SERVICE],
            number=int(number) if number.isdigit() else 0, config_hash=found.get(labels.CONFIG_HASH, ""),
            state=state.status, health=state.health, exit_code=state.exit_code,
            oneoff=found.get(labels.ONEOFF, "False").lower() == "true", image_id=config.get("image_id"),
            image=str(config.get("image_ref") or config.get("image") or ""),
            command=" ".join(config.get("args") or ()), created=config.get("created"),
            status_text=status_text(containers.runtime, project, name, state),
            ports=listed_ports(config, published.get(name, []) if state.status == "running" else []),
            **_listing(config), oom_killed=state.oom_killed))
    own_networks, named_networks = [], []
    for record in networking.networks(containers.run_root):
        found = record.get("labels") or {}
        if found.get(labels.PROJECT) == project and labels.NETWORK in found:
            own_networks.append(ObservedNetwork(str(record["id"]), str(record["name"]), found[labels.NETWORK],
                                                found.get(labels.CONFIG_HASH)))
        elif record.get("name") in external_networks:
            named_networks.append(ObservedNetwork(str(record["id"]), str(record["name"]), ""))
    own_volumes, named_volumes = [], []
    for record in volumes.listing(containers.store.root):
        found = record.get("labels") or {}
        if found.get(labels.PROJECT) == project and labels.VOLUME in found:
            own_volumes.append(ObservedVolume(
                str(record["name"]), found[labels.VOLUME], found.get(labels.CONFIG_HASH),
                labels=tuple(sorted((str(k), str(v)) for k, v in found.items())),
                mountpoint=str(volumes.data_dir(containers.store.root, str(record["name"])))))
        elif record.get("name") in external_volumes:
            named_volumes.append(ObservedVolume(str(record["name"]), ""))
    return ObservedState(
        project_name=project,
        containers=tuple(sorted(observed, key=lambda c: (c.service_name, c.oneoff, c.number, c.name))),
        networks=tuple(sorted(own_networks + named_networks, key=lambda n: (n.key, n.name))),
        volumes=tuple(sorted(own_volumes + named_volumes, key=lambda v: (v.key, v.name))),
        images=frozenset(reference for reference, _ in image_ids), image_ids=image_ids,
        project_images=project_images)


def built_images(store: ImageStore, project: str) -> tuple[tuple[str, str], ...]:
    """(tag, service) of the store's images labelled with the project (its builds: the builder
    writes v2's project and service labels into the image's config), as v2's ``down --rmi local``
    finds them on dockerd."""
    found = set()
    for record in store.images():
        with contextlib.suppress(Exception):  # an image whose config cannot be read is no build of ours
            found_labels = (store.config(record).get("config") or {}).get("Labels") or {}
            if found_labels.get(labels.PROJECT) == project:
                found.add((parse(record.reference).familiar(), str(found_labels.get(labels.SERVICE, ""))))
    return tuple(sorted(found))


def _listing(config: dict[str, Any]) -> dict[str, Any]:
    """What ``ps`` and ``volumes`` show of a container beyond its state: its volumes (a volume's
    mount source is its data folder, ``<store>/volumes/<name>/_data``), labels, networks, mounts."""
    mounts = [m for m in config.get("mounts") or () if m.get("type") in ("volume", "bind") and m.get("source")]
    volume_names = tuple(Path(m["source"]).parent.name for m in mounts if m["type"] == "volume")
    network = config.get("network") or {}
    if network.get("mode") == "bridge":
        networks = tuple(sorted(str(a.get("network")) for a in network.get("attachments") or ()))
    else:
        networks = (str(network["mode"]),) if network.get("mode") in ("host", "none") else ()
    return {"volumes": volume_names, "labels": tuple(sorted((config.get("labels") or {}).items())),
            "networks": networks,
            "mounts": tuple(Path(m["source"]).parent.name if m["type"] == "volume" else str(m["source"])
                            for m in mounts),
            "local_volumes": len(volume_names)}


def list_projects(containers: NativeContainers, include_stopped: bool) -> list[ProjectSummary]:
    found = []
    for folder in sorted(containers.run_root.iterdir()) if containers.run_root.is_dir() else ():
        states: list[str] = []
        files: tuple[str, ...] = ()
        for name in containers.runtime.containers(folder.name):
            with contextlib.suppress(NotFoundError):
                config = containers.runtime.config(folder.name, name)
                states.append(containers.state(folder.name, name, config).status)
                files = tuple(filter(None, str((config.get("labels") or {}).get(labels.CONFIG_FILES, ""))
                                     .split(","))) or files
        if states and (include_stopped or "running" in states):
            found.append(ProjectSummary(folder.name, tuple(states), files))
    return found


def list_images(containers: NativeContainers, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
    found = []
    for ref in refs:
        _, name, config = containers.locate(ref, "images")
        reference = parse(str(config.get("image")))
        record = containers.store.get(str(config.get("image")))
        size = sum(layer.size for layer in containers.store.layers(record)) if record is not None else 0
        repository = reference.familiar().rsplit(":", 1)[0] if reference.tag else reference.familiar()
        found.append(ImageSummary(name, repository, reference.tag or "<none>",
                                  str(config.get("image_id") or ""), size,
                                  record.pulled if record is not None else None,
                                  record.platform if record is not None else ""))
    return found
