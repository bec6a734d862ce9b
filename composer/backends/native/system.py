"""``composer system check | df | prune`` on the native backend (the contract's SystemCommands),
found through composer.backends.select.system_commands without the rest of the backend.

``check`` is residue.py. ``df`` and ``prune`` follow ``docker system df`` and ``docker system
prune`` over the native store and run root:

- Images: the store's images (one per image ID); active: used by a container; size: their
  unpacked layers, each counted once; reclaimable: the layers no container's image uses.
- Containers: every container of the run root; active: running; size: their writable layers;
  reclaimable: the stopped ones'.
- Local Volumes: the store's volumes; active: mounted by a container; reclaimable: the others.
- Build Cache: the native builder's step cache records (composer.backends.native.build.cache);
  size: their own layers' blobs; all reclaimable (no build is ever using one between commands).

``prune`` removes stopped containers, networks no container uses, dangling images (content no
image names: the store's garbage) or, with ``all``, every image no container uses, and with
``volumes`` the unused anonymous volumes (named ones stay, with ``all`` too), as docker does;
``until`` keeps what was created (pulled) after that time, ``label`` filters on labels; the
build cache's dangling records (``all``: every record) go too, as docker's system prune's.
``prune_build_cache`` is ``docker builder prune``: the step cache alone.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.native.image.store import ImageStore, default_root
from composer.contract.system import Finding, PruneOptions, PruneReport, UsageRow
from composer.errors import NotFoundError

if TYPE_CHECKING:
    from composer.backends.native.lifecycle import NativeContainers
    from composer.backends.native.residue import Scope
    from composer.contract.system import SystemCommands


def _du(path: Path) -> int:
    """Bytes in the files under ``path`` (not following symlinks; hard links once)."""
    total = 0
    seen: set[tuple[int, int]] = set()
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def matches_labels(labels: Mapping[str, str], filters: tuple[str, ...]) -> bool:
    """Docker's ``label=`` filters (``key``, ``key=value``; ``!`` first for ``label!=``)."""
    for item in filters:
        negate = item.startswith("!")
        key, has_value, value = item.lstrip("!").partition("=")
        hit = key in labels and (not has_value or labels[key] == value)
        if hit == negate:
            return False
    return True


class NativeSystem:
    """The native backend's ``composer system`` commands, over COMPOSER_RUN_ROOT, COMPOSER_ROOT and
    COMPOSER_CGROUP_PARENT."""

    def __init__(self, root: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self.store_root = Path(root) if root is not None else default_root(self._environ)

    def scope(self) -> Scope:
        from composer.backends.native.residue import Scope
        from composer.backends.native.runtime.api import default_cgroup_parent, default_run_root

        return Scope(default_run_root(self._environ), self.store_root, default_cgroup_parent(self._environ))

    def check(self, *, fix: bool = False) -> list[Finding]:
        from composer.backends.native import reboot, residue

        scope = self.scope()
        reboot.recover_if_rebooted(scope.run_root, scope.store_root, scope.cgroup_parent)
        return residue.check(scope, fix=fix)

    # --- df ----------------------------------------------------------------------------------------

    def _containers(self) -> NativeContainers:
        from composer.backends.native.lifecycle import NativeContainers

        scope = self.scope()
        return NativeContainers(ImageStore.open(self.store_root), scope.run_root, scope.cgroup_parent)

    @staticmethod
    def _configs(containers: NativeContainers) -> list[tuple[str, str, dict[str, Any]]]:
        return container_configs(containers)

    def disk_usage(self) -> list[UsageRow]:
        from composer.backends.native.runtime import volumes

        containers = self._containers()
        store = containers.store
        configs = self._configs(containers)
        used_images = {str(c.get("image_id")) for _, _, c in configs}
        running = {(p, n) for p, n, c in configs if containers.state(p, n, c).status in ("running", "paused",
                                                                                     "restarting")}
        layer_sizes: dict[str, int] = {}
        used_layers: set[str] = set()
        image_ids: set[str] = set()
        for record in store.images():
            image_ids.add(record.config)
            for layer in store.layers(record):
                layer_sizes[layer.chain_id] = layer.size
                if record.config in used_images:
                    used_layers.add(layer.chain_id)
        image_size = sum(layer_sizes.values())
        images = UsageRow("Images", len(image_ids), len(image_ids & used_images), image_size,
                          image_size - sum(layer_sizes[c] for c in used_layers))
        sizes = {(p, n): _du(Path(str(c["rootfs"]["upper"]))) for p, n, c in configs}
        container_row = UsageRow("Containers", len(configs), len(running), sum(sizes.values()),
                                 sum(size for key, size in sizes.items() if key not in running))
        texts = [json.dumps(c) for _, _, c in configs]
        volume_rows = []
        for volume in volumes.listing(store.root):
            name = str(volume["name"])
            active = any(f"/volumes/{name}/_data" in text for text in texts)
            volume_rows.append((active, _du(volumes.data_dir(store.root, name))))
        volume_size = sum(size for _, size in volume_rows)
        volume_row = UsageRow("Local Volumes", len(volume_rows), sum(1 for a, _ in volume_rows if a), volume_size,
                              sum(size for active, size in volume_rows if not active))
        from composer.backends.native.build.cache import usage
        from composer.backends.native.build.mounts import cache_mounts_usage

        records, cache_size = usage(store)
        mounts, mounts_size = cache_mounts_usage(store.root)  # docker counts exec.cachemount records too
        records, cache_size = records + mounts, cache_size + mounts_size
        return [images, container_row, volume_row, UsageRow("Build Cache", records, 0, cache_size, cache_size)]

    # --- prune -------------------------------------------------------------------------------------

    def prune(self, options: PruneOptions) -> PruneReport:
        from composer.backends.native.residue import remove_unreferenced

        report = PruneReport()
        containers = self._containers()
        reclaimed = self._prune_containers(containers, options, report)
        remaining = self._configs(containers)
        self._prune_networks(containers, remaining, options, report)
        if options.volumes:
            reclaimed += self._prune_volumes(containers.store, remaining, options, report)
        if options.all:
            self._untag_unused(containers.store, remaining, options, report)
        cache, mounts_freed = _drop_build_cache(containers.store, options)
        removed_blobs, freed = remove_unreferenced(containers.store, [c for _, _, c in remaining])
        report.images.extend(f"deleted: sha256:{name}" for name in removed_blobs)
        return PruneReport(report.containers, report.networks, report.volumes, report.images, cache,
                           reclaimed + freed + mounts_freed)

    def prune_build_cache(self, options: PruneOptions) -> PruneReport:
        """``builder prune``: the builder's step cache (composer.backends.native.build.cache),
        dangling records or ``all``, ``until`` by last use, and the RUN cache mounts (as
        BuildKit's prune removes its exec.cachemount records); then the content nothing reaches."""
        from composer.backends.native.residue import remove_unreferenced

        containers = self._containers()
        removed, mounts_freed = _drop_build_cache(containers.store, options)
        _, freed = remove_unreferenced(containers.store, [c for _, _, c in self._configs(containers)])
        return PruneReport(build_cache=removed, reclaimed=freed + mounts_freed)

    def _prune_containers(self, containers: NativeContainers, options: PruneOptions, report: PruneReport) -> int:
        from composer.contract.backend import ContainerRef

        reclaimed = 0
        try:
            for project, name, config in self._configs(containers):
                if containers.state(project, name, config).status in ("running", "paused", "restarting"):
                    continue
                if not _selected(options, float(config.get("created") or 0), config.get("labels") or {}):
                    continue
                size = _du(Path(str(config["rootfs"]["upper"])))
                containers.remove(ContainerRef(str(config["id"]), name), remove_volumes=False)
                report.containers.append(str(config["id"]))
                reclaimed += size
        finally:
            containers.release()
        return reclaimed

    @staticmethod
    def _prune_networks(containers: NativeContainers, remaining: list[tuple[str, str, dict[str, Any]]],
                        options: PruneOptions, report: PruneReport) -> None:
        from composer.backends.native.network.manager import NetworkManager

        for network in NetworkManager(containers.run_root).all_networks():
            if network.get("endpoints") or any(p == network.get("project") for p, _, _ in remaining):
                continue
            if not _selected(options, float(network.get("created") or 0), network.get("labels") or {}):
                continue
            containers.remove_network(str(network["name"]))
            report.networks.append(str(network["name"]))

    @staticmethod
    def _prune_volumes(store: ImageStore, remaining: list[tuple[str, str, dict[str, Any]]], options: PruneOptions,
                       report: PruneReport) -> int:
        from composer.backends.native.runtime import volumes

        texts = [json.dumps(c) for _, _, c in remaining]
        reclaimed = 0
        for volume in volumes.listing(store.root):
            name = str(volume["name"])
            if not volume.get("anonymous") or any(f"/volumes/{name}/_data" in text for text in texts):
                continue  # named volumes stay: docker's prune since API 1.42, whatever --all says
            if not _selected(options, float(volume.get("created") or 0), volume.get("labels") or {}):
                continue
            size = _du(volumes.data_dir(store.root, name))
            if volumes.remove(store.root, name):
                report.volumes.append(name)
                reclaimed += size
        return reclaimed

    @staticmethod
    def _untag_unused(store: ImageStore, remaining: list[tuple[str, str, dict[str, Any]]], options: PruneOptions,
                      report: PruneReport) -> None:
        used = {str(c.get("image_id")) for _, _, c in remaining}
        for image in store.images():
            labels = (store.config(image).get("config") or {}).get("Labels") or {}
            if image.config in used or not _selected(options, image.pulled, labels):
                continue
            store.remove(image.reference)
            report.images.append(f"untagged: {image.reference}")


def _drop_build_cache(store: ImageStore, options: PruneOptions) -> tuple[list[str], int]:
    """The step cache's records and the cache mounts ``builder prune``/``system prune`` remove:
    their ids, and the bytes the cache mounts freed (the records' layers go with
    ``remove_unreferenced`` after)."""
    from composer.backends.native.build.cache import drop_records
    from composer.backends.native.build.mounts import drop_cache_mounts
    from composer.backends.native.image.store import flock

    removed = drop_records(store, everything=options.all, until=options.until)
    with flock(store.root / "locks" / "store.lock", exclusive=True):  # no build holds a cache mount
        mounts, freed = drop_cache_mounts(store.root, until=options.until)
    return removed + mounts, freed


def container_configs(containers: NativeContainers) -> list[tuple[str, str, dict[str, Any]]]:
    """(project, name, config) of every container of the run root, every project's."""
    run_root = containers.run_root
    found = []
    if run_root.is_dir():
        for project in sorted(run_root.iterdir()):
            if project.is_dir() and project.name != "networks":
                for name in containers.runtime.containers(project.name):
                    with contextlib.suppress(NotFoundError):  # removed meanwhile
                        found.append((project.name, name, containers.runtime.config(project.name, name)))
    return found


def remove_image(containers: NativeContainers, image: str) -> None:
    """``down --rmi``'s removal of ``image``, as dockerd's image delete without force: the name
    goes, and the image's content with its last name, unless a container (of any project, running
    or not) uses the image and this is its last name: then nothing goes, and the error says which
    container (dockerd's conflict, which v2 shows as a warning). Absent already is not an error.

    :raises BackendError: the conflict.
    """
    from composer.backends.native.errors import error
    from composer.backends.native.residue import remove_unreferenced
    from composer.image_reference import parse

    store = containers.store
    record = store.get(image)
    if record is None:
        with contextlib.suppress(ValueError):
            record = store.get(str(parse(image)))
    if record is None:
        return
    names = [other.reference for other in store.images() if other.config == record.config]
    configs = [config for _, _, config in container_configs(containers)]
    if len(names) <= 1:
        using = next((config for config in configs if config.get("image_id") == record.config), None)
        if using is not None:
            image_id = record.config.removeprefix("sha256:")[:12]
            raise error(f'conflict: unable to remove repository reference "{image}" (must force) - container '
                        f'{str(using["id"])[:12]} is using its referenced image {image_id}', "rmi")
    store.remove(record.reference)
    if len(names) <= 1:  # its last name: its content goes too (what no image or container reaches)
        remove_unreferenced(store, configs)


def _selected(options: PruneOptions, created: float, labels: Mapping[str, str]) -> bool:
    """Whether ``until=`` and ``label=`` let prune take something made at ``created``."""
    return (options.until is None or created < options.until) and matches_labels(labels, options.labels)


if TYPE_CHECKING:  # mypy checks that the class keeps to the contract
    _offered: type[SystemCommands] = NativeSystem
