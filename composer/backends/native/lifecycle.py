"""NativeContainers, the container half of NativeBackend, synchronous (the backend runs each call
in a worker thread): create, start, stop, kill, remove, rename, pause and wait, and what the
other container modules share (the image store, the runtime, the projects' locks and supervisors).

Containers live in the runtime's files (composer.backends.native.runtime.api): a ContainerRef's
project is found by scanning ``<run root>/*/<name>/config.json`` for its id; starts, stops and
kills go through the project supervisor (composer.backends.native.runtime.supervisor), which owns
the restart loops and healthchecks. The rest of a container's life is in the modules beside this
one: its settings from the service (container_settings), its state and status text (status),
volumes (volume_mounts), processes (processes: exec, attach, top), logs (logs), cp (cp), and
what the backend reports (observation).

Commands that change a project hold its lock (``<run root>/<project>/lock``) from their first
observation to the end (``release``); long-lived reads (logs, exec, wait, attach) let it go.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from composer import labels
from composer.backends.native import namespaces, records
from composer.backends.native.container_settings import (
    check_user,
    exposed_ports,
    healthcheck,
    restart_policy,
    with_file_mounts,
)
from composer.backends.native.errors import error
from composer.backends.native.image.aliases import image_aliases
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.network import settings as networking
from composer.backends.native.projects import Projects
from composer.backends.native.runtime import cgroups, eventlog, volumes
from composer.backends.native.runtime.api import Runtime, checked_name, project_dir
from composer.backends.native.runtime.config import signal_number
from composer.backends.native.runtime.init import state_json
from composer.backends.native.runtime.supervisor import SupervisorError, read_json, update_intent
from composer.backends.native.status import container_state, running_cgroup
from composer.backends.native.volume_mounts import volume_paths, with_inherited_mounts
from composer.contract.backend import ContainerRef, ContainerSpec, ContainerState
from composer.errors import ImageNotFoundError, NotFoundError, UnsupportedFeatureError
from composer.image_reference import parse
from composer.names import valid_container_name


class NativeContainers:
    """The native backend's containers: their lifecycle here, the rest in the modules named above."""

    def __init__(self, store: ImageStore, run_root: Path, cgroup_parent: str = "composer",
                 warn: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.runtime = Runtime(store, run_root=run_root, cgroup_parent=cgroup_parent)
        self.run_root = run_root
        self.cgroup_parent = cgroup_parent
        self.warn = warn or _warn
        self.projects = Projects(self.runtime, run_root, store.root, cgroup_parent, self.warn)
        self.created_networks: dict[str, list[str]] = {}
        self.created_volumes: dict[str, list[str]] = {}

    def release(self) -> None:
        """Let every project lock go (see Projects.release)."""
        self.projects.release()

    def event(self, project: str, action: str, config: dict[str, Any], **attributes: str) -> None:
        """Record an event of the project's container (runtime.eventlog: ``composer events``)."""
        eventlog.record(project_dir(self.run_root, project), action, config, **attributes)

    def state(self, project: str, name: str, config: dict[str, Any] | None = None) -> ContainerState:
        return container_state(self.runtime, self.projects, project, name, config)

    def locate(self, ref: ContainerRef, operation: str) -> tuple[str, str, dict[str, Any]]:
        """(project, name, config) of a container.

        :raises NotFoundError: no such container.
        """
        if self.run_root.is_dir() and valid_container_name(ref.name):
            for folder in self.run_root.iterdir():
                config = read_json(folder / ref.name / "config.json")
                if config is not None and config.get("id") == ref.container_id:
                    return folder.name, ref.name, config
            for folder in self.run_root.iterdir():
                for child in folder.iterdir() if folder.is_dir() else ():
                    if child.name.startswith("."):
                        continue  # a staging folder of a create or remove (runtime.api.staging_name)
                    config = read_json(child / "config.json")
                    if config is not None and config.get("id") == ref.container_id:
                        return folder.name, child.name, config
        raise error(f"No such container: {ref.name}", operation, NotFoundError)

    def create_network(self, project: str, key: str, name: str, config: Any, *, config_hash: str | None = None) -> str:
        self.projects.lock(project)
        created = networking.create_network(self.run_root, project, key, name, config, config_hash=config_hash)
        self.created_networks.setdefault(project, []).append(name)
        return created

    def remove_network(self, name: str) -> None:
        networking.remove_network(self.run_root, name)

    def image_record(self, image: str) -> ImageRecord:
        record = self.store.get(image)
        if record is None:
            with contextlib.suppress(Exception):
                record = self.store.get(str(parse(image)))
        if record is None:
            record = next((r for r in self.store.images() if image in image_aliases(r)), None)
        if record is None:
            raise error(f"No such image: {image}", "create", ImageNotFoundError)
        return record

    def create(self, spec: ContainerSpec) -> ContainerRef:
        project, service = spec.project_name, with_file_mounts(spec)
        checked_name("container", spec.container_name)  # before anything is made (the planner checks it too)
        self.projects.lock(project)
        created: list[str] = []
        try:
            service = with_inherited_mounts(self, spec.project_name, service, spec.volumes_from)
            record = self.image_record(spec.image)
            image_config = self.store.config(record)
            check_platform(service.platform, spec.image, image_config)
            network = networking.container_settings(spec, self.run_root)
            joined = namespaces.container_settings(spec, self.run_root)
            check = healthcheck(service, image_config)
            policy = restart_policy(service)
            check_user(self.store, service, record, image_config)
            paths, anonymous = volume_paths(self, spec, created)
            extra = {"healthcheck": check, "restart": policy, "network": network, "namespaces": joined,
                     "anonymous_volumes": anonymous,
                     # ``run -i``: the stdin closes when the attached client's ends (Docker's StdinOnce)
                     "stdin_once": bool(service.stdin_open and spec.labels.get(labels.ONEOFF) == "True"),
                     "console_size": list(spec.console_size) if spec.console_size else None,
                     "image_ref": spec.image, "exposed": exposed_ports(service, image_config)}
            container_id = self.runtime.create(project, spec.container_name, service, record, labels=spec.labels,
                                               volume_paths=paths, extra=extra,
                                               etc_source=networking.shared_etc({"network": network}))
        except BaseException:
            for name in created:
                volumes.remove(self.store.root, name)
            if not self.runtime.containers(project):  # a failed first create leaves nothing behind
                for name in self.created_networks.pop(project, []):
                    with contextlib.suppress(NotFoundError):
                        networking.remove_network(self.run_root, name)
                for name in self.created_volumes.pop(project, []):
                    volumes.remove(self.store.root, name)
            raise
        with contextlib.suppress(Exception):
            self.event(project, "create", self.runtime.config(project, spec.container_name))
        return ContainerRef(container_id, spec.container_name)

    def start(self, ref: ContainerRef) -> None:
        project, name, config = self.locate(ref, "start")
        self.projects.lock(project)
        records.remember_stop(self.runtime.data_dir(str(config["id"])), False)
        try:
            self.projects.client(project).call("start", name=name)
        except SupervisorError as exc:
            raise error(str(exc), "start") from None

    def start_direct(self, project: str, name: str, config: dict[str, Any]) -> None:
        """Start without the supervisor (an attached one-off with no restart policy or
        healthcheck: nothing needs watching, and it saves starting one)."""
        # the namespaces first: a container X that is not running fails before any network is set up
        self.runtime.start(project, name, **namespaces.start_options(config), **networking.start_options(config))

    def stop(self, ref: ContainerRef, grace: float | None, sig: int | None = None) -> None:
        project, name, config = self.locate(ref, "stop")
        self.projects.lock(project)
        records.remember_stop(self.runtime.data_dir(str(config["id"])), True)
        arguments = {"name": name, "grace": grace, "signal": sig}
        try:
            answer = self.projects.client(project).notify("stop", **arguments)
        except SupervisorError as exc:
            raise error(str(exc), "stop") from None
        if answer is None or not answer.get("ok"):
            self._intent(project, name, manual_stop=True, restarting=False)
            self.runtime.stop(project, name, sig=sig, grace=grace)

    def _intent(self, project: str, name: str, **values: Any) -> None:
        update_intent(self.runtime.run_dir(project, name), **values)

    def kill(self, ref: ContainerRef, signal: str) -> None:
        project, name, config = self.locate(ref, "kill")
        self.projects.lock(project)
        number = signal_number(signal or "SIGKILL", default=9)
        if self.state(project, name).status not in ("running", "paused"):
            raise error(f"Cannot kill container: {name}: container is not running", "kill")
        records.remember_stop(self.runtime.data_dir(str(config["id"])), True)  # moby's killWithSignal too
        answer = self.projects.client(project).notify("kill", name=name, signal=number)
        if answer is None or not answer.get("ok"):
            self._intent(project, name, manual_stop=True, restarting=False)
            self.runtime.kill(project, name, number)

    def remove(self, ref: ContainerRef, remove_volumes: bool) -> None:
        project, name, config = self.locate(ref, "remove")
        self.projects.lock(project)
        self.projects.client(project).notify("forget", name=name)
        status = self.state(project, name, config).status
        if status == "paused":
            self._freeze(project, name, False)
        if status in ("running", "paused"):  # forgotten by the supervisor: its kill and die are ours
            self.event(project, "kill", config, signal=str(signal_number("SIGKILL", default=9)))
        self.runtime.remove(project, name, force=True)
        if status in ("running", "paused"):
            self.event(project, "die", config, exitCode="137")
        self.event(project, "destroy", config)
        networking.released(config)
        if remove_volumes:
            for volume in config.get("anonymous_volumes") or ():
                volumes.remove(self.store.root, volume)

    def rename(self, ref: ContainerRef, new_name: str) -> None:
        project, name, config = self.locate(ref, "rename")
        self.projects.lock(project)
        old_dir, new_dir = self.runtime.run_dir(project, name), self.runtime.run_dir(project, new_name)
        if self.runtime.state(project, name).status == "running":
            raise error(f"cannot rename running container {name}", "rename")
        if new_dir.exists():
            raise error(f"container name {new_name} is already in use", "rename")
        os.rename(old_dir, new_dir)
        config["name"] = new_name
        config["run_dir"] = str(new_dir)
        config["etc_files"] = {target: str(new_dir / Path(source).name)
                               for target, source in (config.get("etc_files") or {}).items()}
        state_json(str(new_dir / "config.json"), config)
        self.event(project, "rename", config, oldName=f"/{name}")  # moby's: the old name with its slash

    def container_state(self, ref: ContainerRef) -> ContainerState:
        project, name, config = self.locate(ref, "inspect")
        return self.state(project, name, config)

    def _freeze(self, project: str, name: str, frozen: bool) -> None:
        operation = "pause" if frozen else "unpause"
        try:
            cgroups.freeze(running_cgroup(self.runtime, project, name, operation), frozen)
        except OSError as exc:
            raise error(f"cannot {operation} container {name}: {exc.strerror or exc}", operation) from None

    def pause(self, ref: ContainerRef, frozen: bool) -> None:
        project, name, config = self.locate(ref, "pause")
        self.projects.lock(project)
        state = self.state(project, name)
        if frozen and state.status == "paused":
            raise error(f"container {name} is already paused", "pause")
        if not frozen and state.status != "paused":
            raise error(f"container {name} is not paused", "unpause")
        self._freeze(project, name, frozen)
        self.event(project, "pause" if frozen else "unpause", config)

    def wait(self, ref: ContainerRef) -> int:
        project, name, _ = self.locate(ref, "wait")
        final = self.runtime.wait(project, name)
        return int(final.exit_code or 0)


def _warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


def check_platform(wanted: str | None, image: str, image_config: dict[str, Any]) -> None:
    """:raises UnsupportedFeatureError: ``platform`` names another platform than the stored image's
    (Docker refuses it at create in these words rather than run it)."""
    if not wanted:
        return
    from composer.backends.native.image.oci import Platform, normalize

    actual = normalize(Platform(str(image_config.get("os") or "linux"), str(image_config.get("architecture") or ""),
                                str(image_config.get("variant") or "")))
    asked = Platform.parse(wanted)
    if (asked.os, asked.architecture, asked.variant or actual.variant) != actual:
        raise error(f"image with reference {image} was found but does not match the specified platform: wanted "
                    f"{asked}, actual: {actual}", "create", UnsupportedFeatureError)
