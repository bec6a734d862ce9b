"""The container half of NativeBackend, synchronous (the backend runs each call in a worker thread).

Containers live in the runtime's files (composer.backends.native.runtime.containers): the
backend finds a ContainerRef's project by scanning ``<run root>/*/<name>/config.json`` for its
id, reads states from the state files (plus paused from the cgroup freezer, restarting from the
supervisor's ``supervise.json`` and health from ``health.json``), and starts, stops and kills
through the project supervisor (composer.backends.native.runtime.supervisor), which owns the
restart loops and healthchecks. Observation needs no supervisor, so ``ps`` and ``down`` work
after it died.

Commands that change a project hold its lock (``<run root>/<project>/lock``) from their first
observation to the end (``release``); long-lived reads (logs, exec, wait, attach) let it go.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from composer import labels
from composer.backends.native import namespaces, networking
from composer.backends.native.image.reference import parse
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.backends.native.runtime import cgroups, nsexec, volumes
from composer.backends.native.runtime.config import signal_number
from composer.backends.native.runtime.containers import (
    Runtime,
    checked_name,
    open_pidfd,
    private_project_dir,
    project_dir,
    wait_pidfd,
)
from composer.backends.native.runtime.init import atomic_json, read_image_file
from composer.backends.native.runtime.supervisor import (
    LOCK,
    Client,
    SupervisorError,
    read_json,
    supervise_state,
)
from composer.contract.backend import (
    ContainerRef,
    ContainerSpec,
    ContainerState,
    ExecSpec,
    ImageSummary,
    LogLine,
    ProcessList,
    ProjectSummary,
    Streams,
)
from composer.contract.observed import ObservedContainer, ObservedNetwork, ObservedState, ObservedVolume, PortMapping
from composer.errors import (
    BackendError,
    ImageNotFoundError,
    NotFoundError,
    UnsupportedFeatureError,
)
from composer.names import valid_container_name

if TYPE_CHECKING:
    from composer.spec.models import ServiceConfig, VolumeConfig

BACKEND = "native"
ANONYMOUS_LABEL = "com.docker.volume.anonymous"
SECOND = 1_000_000_000


def _error(message: str, operation: str, cls: type[BackendError] = BackendError) -> BackendError:
    return cls(" ".join(message.split()), backend_name=BACKEND, operation=operation)


def _unsupported(message: str, operation: str = "create") -> UnsupportedFeatureError:
    return UnsupportedFeatureError(message, backend_name=BACKEND, operation=operation)


def _seconds(duration: Any, default: float) -> float:
    if duration is None:
        return default
    return float(duration.nanoseconds) / SECOND


def with_file_mounts(spec: ContainerSpec) -> ServiceConfig:
    """The service with its file-based secrets and configs added as read-only bind mounts, as
    v2 mounts them without Swarm (uid, gid and mode cannot apply to a bind mount)."""
    pairs = spec.file_mounts()
    if not pairs:
        return spec.service
    from composer.spec.models import ServiceVolume  # the models load lazily

    binds = tuple(ServiceVolume(type="bind", source=source, target=target, read_only=True)
                  for source, target in pairs)
    return spec.service.model_copy(update={"volumes": (*spec.service.volumes, *binds)})


def exposed_ports(service: ServiceConfig, image_config: Mapping[str, Any]) -> list[str]:
    """``80/tcp`` for each port the image exposes or the service lists under ``expose``."""
    found = list((image_config.get("config") or {}).get("ExposedPorts") or {})
    for entry in service.expose:
        ports, _, protocol = str(entry).partition("/")
        first, _, last = ports.partition("-")
        if first.isdigit() and (not last or last.isdigit()):
            found += [f"{port}/{protocol or 'tcp'}" for port in range(int(first), int(last or first) + 1)]
    return list(dict.fromkeys(found))


def listed_ports(config: Mapping[str, Any], published: Sequence[PortMapping]) -> tuple[PortMapping, ...]:
    """What ``ps`` shows: the published ports, then exposed ones that are not published (as docker)."""
    from composer.contract.observed import PortMapping

    seen = {(port.private_port, port.protocol) for port in published}
    exposed = []
    for entry in config.get("exposed") or ():
        port, _, protocol = str(entry).partition("/")
        if port.isdigit() and (int(port), protocol or "tcp") not in seen:
            exposed.append(PortMapping(int(port), protocol or "tcp"))
    return (*published, *exposed)


def healthcheck(service: ServiceConfig, image_config: Mapping[str, Any]) -> dict[str, Any] | None:
    """The effective healthcheck (the service's over the image's HEALTHCHECK), in seconds; None
    when there is none or it is disabled.

    :raises UnsupportedFeatureError: a test that is not CMD, CMD-SHELL or NONE, or an empty one.
    """
    image = (image_config.get("config") or {}).get("Healthcheck") or {}
    check = service.healthcheck
    if check is not None and check.disable:
        return None
    test = list(check.test) if check is not None and check.test is not None else list(image.get("Test") or ())
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL") or len(test) < 2 or not any(part.strip() for part in test[1:]):
        raise _unsupported(f"service {service.name}: healthcheck test {test!r} is not valid: it must be "
                           "[\"CMD\", args...], [\"CMD-SHELL\", command] or [\"NONE\"]")

    def pick(attribute: str, key: str, default: float) -> float:
        value = getattr(check, attribute, None) if check is not None else None
        if value is not None:
            return _seconds(value, default)
        return float(image[key]) / SECOND if image.get(key) else default

    retries = check.retries if check is not None and check.retries is not None else image.get("Retries")
    interval = pick("interval", "Interval", 30.0)
    # start_interval unset: the supervisor takes the shorter of the interval and Docker's 5 s
    return {"test": test, "interval": interval, "timeout": pick("timeout", "Timeout", 30.0),
            "start_period": pick("start_period", "StartPeriod", 0.0),
            "start_interval": pick("start_interval", "StartInterval", 0.0) or None,
            "retries": int(retries) if retries else 3}


def restart_policy(service: ServiceConfig) -> dict[str, Any] | None:
    """``restart`` (no, always, on-failure[:N], unless-stopped) or ``deploy.restart_policy``."""
    policy = service.deploy.restart_policy if service.deploy is not None else None
    if service.restart:
        name, _, maximum = service.restart.partition(":")
        if name not in ("no", "always", "on-failure", "unless-stopped"):
            raise _unsupported(f"service {service.name}: unknown restart policy {service.restart!r}")
        return {"name": name, "max_attempts": int(maximum) if maximum.isdigit() else 0}
    if policy is not None:
        condition = {"none": "no", "on-failure": "on-failure", "any": "always", None: "always"}.get(policy.condition)
        if condition is None:
            raise _unsupported(f"service {service.name}: unknown restart_policy condition {policy.condition!r}")
        return {"name": condition, "max_attempts": policy.max_attempts or 0,
                "delay": _seconds(policy.delay, 0.0)}
    return None


def _age(seconds: float) -> str:
    """Docker's units.HumanDuration."""
    if seconds < 1:
        return "Less than a second"
    if seconds < 60:
        return f"{int(seconds)} second{'s' if int(seconds) != 1 else ''}"
    minutes = seconds / 60
    if minutes < 60:
        return "About a minute" if int(minutes) == 1 else f"{int(minutes)} minutes"
    hours = minutes / 60
    if hours < 48:
        return "About an hour" if round(hours) == 1 else f"{round(hours)} hours"
    return f"{int(hours / 24)} days"


class NativeContainers:
    def __init__(self, store: ImageStore, run_root: Path, cgroup_parent: str = "composer",
                 warn: Callable[[str], None] | None = None) -> None:
        self.store = store
        self.runtime = Runtime(store, run_root=run_root, cgroup_parent=cgroup_parent)
        self.run_root = run_root
        self.cgroup_parent = cgroup_parent
        self.warn = warn or _warn
        self._locks: dict[str, int] = {}
        self._locks_guard = threading.Lock()
        self._created_networks: dict[str, list[str]] = {}
        self._created_volumes: dict[str, list[str]] = {}
        self._checked: set[str] = set()

    # --- plumbing ------------------------------------------------------------------------------

    def client(self, project: str) -> Client:
        return Client(self.run_root, project, self.store.root, self.cgroup_parent, on_lost=self.warn)

    def lock(self, project: str) -> None:
        """Hold the project's lock until ``release`` (re-entrant within this backend)."""
        with self._locks_guard:
            if project in self._locks:
                return
            folder = private_project_dir(self.run_root, project)
            fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._locks[project] = fd

    def release(self) -> None:
        """Let every project lock go; a project left without containers loses its directory."""
        with self._locks_guard:
            for project, fd in self._locks.items():
                folder = project_dir(self.run_root, project)
                client = self.client(project)
                if not self.runtime.containers(project):
                    answer = client.notify("exit-if-empty")
                    deadline = time.monotonic() + 3
                    while answer and answer.get("exiting") and client.pid() is not None \
                            and time.monotonic() < deadline:
                        time.sleep(0.02)
                if not self.runtime.containers(project) and client.pid() is None:
                    for name in (LOCK, "supervisor.log", "supervisor.lock", "supervisor.pid", "supervisor.sock"):
                        with contextlib.suppress(OSError):
                            (folder / name).unlink()
                    with contextlib.suppress(OSError):
                        folder.rmdir()
                os.close(fd)
            self._locks.clear()

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
                    config = read_json(child / "config.json")
                    if config is not None and config.get("id") == ref.container_id:
                        return folder.name, child.name, config
        raise _error(f"No such container: {ref.name}", operation, NotFoundError)

    def check_supervisor(self, project: str) -> None:
        """Notice a supervisor that died (kill -9): report what still runs, and let a new one
        take over the running containers' restart policies and healthchecks."""
        if project in self._checked:
            return
        self._checked.add(project)
        client = self.client(project)
        if client.pid() is not None or not (project_dir(self.run_root, project) / "supervisor.pid").exists():
            return
        client._lost()
        if any(self.state(project, name).status == "running" for name in self.runtime.containers(project)):
            with contextlib.suppress(SupervisorError):
                client.ensure()

    # --- states ----------------------------------------------------------------------------------

    def state(self, project: str, name: str, config: dict[str, Any] | None = None) -> ContainerState:
        config = config or self.runtime.config(project, name)
        run_dir = self.runtime.run_dir(project, name)
        base = self.runtime.state(project, name)
        status = base.status
        if status == "running":
            state = read_json(run_dir / "state.json") or {}
            if state.get("cgroup") and cgroups.is_frozen(cgroups.Cgroup.from_json(state["cgroup"])):
                status = "paused"
        elif status in ("exited", "dead") and supervise_state(run_dir).get("restarting") \
                and self.client(project).pid() is not None:
            status = "restarting"
        health = None
        if config.get("healthcheck") and status in ("running", "paused"):
            health = str((read_json(run_dir / "health.json") or {}).get("status") or "starting")
        exit_code = base.exit_code if status in ("exited", "dead", "restarting") else None
        if status == "dead" and exit_code is None:
            exit_code = 137
        return ContainerState(status, health, exit_code, base.oom_killed)

    def status_text(self, project: str, name: str, state: ContainerState) -> str:
        run_dir = self.runtime.run_dir(project, name)
        now = time.time()
        if state.status in ("running", "paused"):
            started = float((read_json(run_dir / "state.json") or {}).get("started") or now)
            text = f"Up {_age(now - started)}"
            if state.status == "paused":
                return text + " (Paused)"
            if state.health:
                text += " (health: starting)" if state.health == "starting" else f" ({state.health})"
            return text
        if state.status in ("exited", "dead", "restarting"):
            finished = float((read_json(run_dir / "exit.json") or {}).get("finished") or now)
            word = "Restarting" if state.status == "restarting" else "Exited"
            return f"{word} ({state.exit_code}) {_age(now - finished)} ago"
        return "Created"

    def observe(self, project: str, external_networks: Sequence[str], external_volumes: Sequence[str],
                image_ids: tuple[tuple[str, str], ...]) -> ObservedState:
        """The project's containers, networks and volumes, the external ones named, and the local
        images: ``image_ids`` holds (reference, id) for each spelling of each."""
        self.lock(project)
        self.check_supervisor(project)
        containers = []
        published = networking.published_ports(self.run_root)
        for name in self.runtime.containers(project):
            try:
                config = self.runtime.config(project, name)
                state = self.state(project, name, config)
            except NotFoundError:
                continue
            found = config.get("labels") or {}
            if labels.SERVICE not in found:
                continue
            number = str(found.get(labels.CONTAINER_NUMBER, ""))
            containers.append(ObservedContainer(
                container_id=str(config["id"]), name=name, service_name=found[labels.SERVICE],
                number=int(number) if number.isdigit() else 0, config_hash=found.get(labels.CONFIG_HASH, ""),
                state=state.status, health=state.health, exit_code=state.exit_code,
                oneoff=found.get(labels.ONEOFF, "False").lower() == "true", image_id=config.get("image_id"),
                image=str(config.get("image_ref") or config.get("image") or ""),
                command=" ".join(config.get("args") or ()), created=config.get("created"),
                status_text=self.status_text(project, name, state),
                ports=listed_ports(config, published.get(name, []) if state.status == "running" else [])))
        own_networks, named_networks = [], []
        for record in networking.networks(self.run_root):
            found = record.get("labels") or {}
            if found.get(labels.PROJECT) == project and labels.NETWORK in found:
                own_networks.append(ObservedNetwork(str(record["id"]), str(record["name"]), found[labels.NETWORK],
                                                    found.get(labels.CONFIG_HASH)))
            elif record.get("name") in external_networks:
                named_networks.append(ObservedNetwork(str(record["id"]), str(record["name"]), ""))
        own_volumes, named_volumes = [], []
        for record in volumes.listing(self.store.root):
            found = record.get("labels") or {}
            if found.get(labels.PROJECT) == project and labels.VOLUME in found:
                own_volumes.append(ObservedVolume(str(record["name"]), found[labels.VOLUME],
                                                  found.get(labels.CONFIG_HASH)))
            elif record.get("name") in external_volumes:
                named_volumes.append(ObservedVolume(str(record["name"]), ""))
        return ObservedState(
            project_name=project,
            containers=tuple(sorted(containers, key=lambda c: (c.service_name, c.oneoff, c.number, c.name))),
            networks=tuple(sorted(own_networks + named_networks, key=lambda n: (n.key, n.name))),
            volumes=tuple(sorted(own_volumes + named_volumes, key=lambda v: (v.key, v.name))),
            images=frozenset(reference for reference, _ in image_ids), image_ids=image_ids)

    # --- networks and volumes ------------------------------------------------------------------

    def create_network(self, project: str, key: str, name: str, config: Any, *, config_hash: str | None = None) -> str:
        self.lock(project)
        created = networking.create_network(self.run_root, project, key, name, config, config_hash=config_hash)
        self._created_networks.setdefault(project, []).append(name)
        return created

    def remove_network(self, name: str) -> None:
        networking.remove_network(self.run_root, name)

    def create_volume(self, project: str, key: str, name: str, config: VolumeConfig) -> str:
        self.lock(project)
        if config.driver not in (None, "local") or config.driver_opts:
            raise _unsupported(f"volume {name}: driver {config.driver or 'local'} with options is not supported by "
                               "the native backend yet", "create volume")
        if volumes.inspect(self.store.root, name) is None:
            self._created_volumes.setdefault(project, []).append(name)
        volumes.create(self.store.root, name, {**config.labels, labels.VOLUME: key, labels.PROJECT: project,
                                               labels.VERSION: labels.COMPATIBLE_VERSION})
        return name

    def remove_volume(self, name: str) -> None:
        if not volumes.remove(self.store.root, name):
            raise _error(f"get {name}: no such volume", "remove volume", NotFoundError)

    # --- containers ------------------------------------------------------------------------------

    def image_record(self, image: str) -> ImageRecord:
        record = self.store.get(image)
        if record is None:
            with contextlib.suppress(Exception):
                record = self.store.get(str(parse(image)))
        if record is None:
            from composer.backends.native.backend import image_aliases

            record = next((r for r in self.store.images() if image in image_aliases(r)), None)
        if record is None:
            raise _error(f"No such image: {image}", "create", ImageNotFoundError)
        return record

    def check_user(self, service: ServiceConfig, record: ImageRecord, image_config: Mapping[str, Any]) -> None:
        """A user name must exist in the image's /etc/passwd (group names in /etc/group), as
        Docker checks at start; checked at create so that nothing is left behind."""
        spec = service.user or (image_config.get("config") or {}).get("User") or ""
        user, _, group = spec.partition(":")
        wanted = [("passwd", user)] if user and not user.isdigit() else []
        wanted += [("group", g) for g in [group, *service.group_add] if g and not g.isdigit()]
        if not wanted:
            return
        layers = list(reversed(self.store.layers(record)))

        def names(file: str) -> set[str] | None:
            for layer in layers:
                # The image's files: no symlink followed (it would lead to the host's), nothing
                # that could block (a FIFO) or never end (a device) read.
                data = _layer_file(layer.path, ("etc", file))
                if data is not None:
                    return {line.split(":", 1)[0] for line in data.decode(errors="replace").splitlines()}
            return None

        for file, name in wanted:
            if name not in (names(file) or set()):
                kind = "user" if file == "passwd" else "group"
                raise _error(f"service {service.name}: unable to find {kind} {name}: no matching entries in "
                             f"{file} file", "create")

    def with_inherited_mounts(self, project: str, service: ServiceConfig, sources: Sequence[str]) -> ServiceConfig:
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
            owner = networking.owner_project(self.run_root, project, name)
            for mount in self.runtime.config(owner, name).get("mounts") or ():
                if mount.get("type") not in ("bind", "volume") or mount["target"] in taken:
                    continue
                taken.add(mount["target"])
                read_only = mode == "ro" or (mode != "rw" and bool(mount.get("readonly")))
                inherited.append(ServiceVolume(type="bind", source=mount["source"], target=mount["target"],
                                               read_only=read_only))
        # resolved here into mounts: the runtime, which refuses volumes_from, never sees it
        return service.model_copy(update={"volumes": (*service.volumes, *inherited), "volumes_from": ()})

    def volume_paths(self, spec: ContainerSpec, created: list[str]) -> tuple[dict[str, str], list[str]]:
        """target -> data directory of each volume mount (anonymous ones created here)."""
        paths: dict[str, str] = {}
        anonymous: list[str] = []
        for volume in spec.service.volumes:
            if volume.type != "volume" or volume.target is None:
                continue
            if volume.source:
                name = spec.volume_names.get(volume.source, volume.source)
                if volumes.inspect(self.store.root, name) is None:
                    volumes.create(self.store.root, name, {})
                    created.append(name)
            else:
                name = volumes.anonymous_name()
                volumes.create(self.store.root, name, {labels.PROJECT: spec.project_name, ANONYMOUS_LABEL: ""},
                               anonymous=True)
                created.append(name)
                anonymous.append(name)
            paths[volume.target] = str(volumes.data_dir(self.store.root, name))
        return paths, anonymous

    def create(self, spec: ContainerSpec) -> ContainerRef:
        project, service = spec.project_name, with_file_mounts(spec)
        checked_name("container", spec.container_name)  # before anything is made (the planner checks it too)
        self.lock(project)
        created: list[str] = []
        try:
            service = self.with_inherited_mounts(spec.project_name, service, spec.volumes_from)
            if spec.labels.get(labels.ONEOFF) == "True" and (service.stdin_open or service.tty):
                # ``run`` asks for them; its output is streamed from the log (no stdin forwarding yet).
                service = service.model_copy(update={"stdin_open": False, "tty": False})
            record = self.image_record(spec.image)
            image_config = self.store.config(record)
            network = networking.container_settings(spec, self.run_root)
            joined = namespaces.container_settings(spec, self.run_root)
            check = healthcheck(service, image_config)
            policy = restart_policy(service)
            self.check_user(service, record, image_config)
            paths, anonymous = self.volume_paths(spec, created)
            extra = {"healthcheck": check, "restart": policy, "network": network, "namespaces": joined,
                     "anonymous_volumes": anonymous,
                     "image_ref": spec.image, "exposed": exposed_ports(service, image_config)}
            container_id = self.runtime.create(project, spec.container_name, service, record, labels=spec.labels,
                                               volume_paths=paths, extra=extra,
                                               etc_source=networking.shared_etc({"network": network}))
        except BaseException:
            for name in created:
                volumes.remove(self.store.root, name)
            if not self.runtime.containers(project):  # a failed first create leaves nothing behind
                for name in self._created_networks.pop(project, []):
                    with contextlib.suppress(NotFoundError):
                        networking.remove_network(self.run_root, name)
                for name in self._created_volumes.pop(project, []):
                    volumes.remove(self.store.root, name)
            raise
        return ContainerRef(container_id, spec.container_name)

    def start(self, ref: ContainerRef) -> None:
        project, name, _ = self.locate(ref, "start")
        self.lock(project)
        try:
            self.client(project).call("start", name=name)
        except SupervisorError as exc:
            raise _error(str(exc), "start") from None

    def start_direct(self, project: str, name: str, config: dict[str, Any]) -> None:
        """Start without the supervisor (an attached one-off with no restart policy or
        healthcheck: nothing needs watching, and it saves starting one)."""
        # the namespaces first: a container X that is not running fails before any network is set up
        self.runtime.start(project, name, **namespaces.start_options(config), **networking.start_options(config))

    def stop(self, ref: ContainerRef, grace: float | None, sig: int | None = None) -> None:
        project, name, _ = self.locate(ref, "stop")
        self.lock(project)
        arguments = {"name": name, "grace": grace, "signal": sig}
        try:
            answer = self.client(project).notify("stop", **arguments)
        except SupervisorError as exc:
            raise _error(str(exc), "stop") from None
        if answer is None or not answer.get("ok"):
            self._intent(project, name, manual_stop=True, restarting=False)
            self.runtime.stop(project, name, sig=sig, grace=grace)

    def _intent(self, project: str, name: str, **values: Any) -> None:
        run_dir = self.runtime.run_dir(project, name)
        state = supervise_state(run_dir)
        state.update(values)
        atomic_json(str(run_dir / "supervise.json"), state)

    def kill(self, ref: ContainerRef, signal: str) -> None:
        project, name, _ = self.locate(ref, "kill")
        self.lock(project)
        number = signal_number(signal or "SIGKILL", default=9)
        if self.state(project, name).status not in ("running", "paused"):
            raise _error(f"Cannot kill container: {name}: container is not running", "kill")
        answer = self.client(project).notify("kill", name=name, signal=number)
        if answer is None or not answer.get("ok"):
            self._intent(project, name, manual_stop=True, restarting=False)
            self.runtime.kill(project, name, number)

    def remove(self, ref: ContainerRef, remove_volumes: bool) -> None:
        project, name, config = self.locate(ref, "remove")
        self.lock(project)
        self.client(project).notify("forget", name=name)
        if self.state(project, name, config).status == "paused":
            self._freeze(project, name, False)
        self.runtime.remove(project, name, force=True)
        networking.released(config)
        if remove_volumes:
            for volume in config.get("anonymous_volumes") or ():
                volumes.remove(self.store.root, volume)

    def rename(self, ref: ContainerRef, new_name: str) -> None:
        project, name, config = self.locate(ref, "rename")
        self.lock(project)
        old_dir, new_dir = self.runtime.run_dir(project, name), self.runtime.run_dir(project, new_name)
        if self.runtime.state(project, name).status == "running":
            raise _error(f"cannot rename running container {name}", "rename")
        if new_dir.exists():
            raise _error(f"container name {new_name} is already in use", "rename")
        os.rename(old_dir, new_dir)
        config["name"] = new_name
        config["run_dir"] = str(new_dir)
        config["etc_files"] = {target: str(new_dir / Path(source).name)
                               for target, source in (config.get("etc_files") or {}).items()}
        atomic_json(str(new_dir / "config.json"), config)

    def container_state(self, ref: ContainerRef) -> ContainerState:
        project, name, config = self.locate(ref, "inspect")
        return self.state(project, name, config)

    # --- container commands ------------------------------------------------------------------------

    def _cgroup(self, project: str, name: str, operation: str) -> cgroups.Cgroup:
        state = read_json(self.runtime.run_dir(project, name) / "state.json") or {}
        if self.runtime.state(project, name).status != "running" or not state.get("cgroup"):
            raise _error(f"container {name} is not running", operation)
        return cgroups.Cgroup.from_json(state["cgroup"])

    def _freeze(self, project: str, name: str, frozen: bool) -> None:
        operation = "pause" if frozen else "unpause"
        try:
            cgroups.freeze(self._cgroup(project, name, operation), frozen)
        except OSError as exc:
            raise _error(f"cannot {operation} container {name}: {exc.strerror or exc}", operation) from None

    def pause(self, ref: ContainerRef, frozen: bool) -> None:
        project, name, _ = self.locate(ref, "pause")
        self.lock(project)
        state = self.state(project, name)
        if frozen and state.status == "paused":
            raise _error(f"container {name} is already paused", "pause")
        if not frozen and state.status != "paused":
            raise _error(f"container {name} is not paused", "unpause")
        self._freeze(project, name, frozen)

    def wait(self, ref: ContainerRef) -> int:
        project, name, _ = self.locate(ref, "wait")
        final = self.runtime.wait(project, name)
        return int(final.exit_code or 0)

    def exec(self, ref: ContainerRef, spec: ExecSpec, streams: Streams | None) -> int | None:
        project, name, config = self.locate(ref, "exec")
        state = self.state(project, name, config)
        if state.status == "paused":
            raise _error(f"container {name} is paused, unpause the container before exec", "exec")
        if state.status != "running":
            raise _error(f"container {name} is not running", "exec")
        runtime_state = read_json(self.runtime.run_dir(project, name) / "state.json") or {}
        cfg = nsexec.exec_config(config, runtime_state, list(spec.command), user=spec.user, workdir=spec.workdir,
                                 env=dict(spec.environment), privileged=spec.privileged, tty=spec.tty)
        if streams is None:
            nsexec.run(cfg, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return None
        if spec.tty:
            return self._exec_tty(cfg, streams, spec.interactive)
        stdin = _fileno(streams.stdin) if spec.interactive and streams.stdin is not None else None
        stdout, stderr = _fileno(streams.stdout), _fileno(streams.stderr)
        with contextlib.suppress(Exception):
            streams.stdout.flush()
            streams.stderr.flush()
        process = nsexec.run(cfg, stdin=stdin, stdout=stdout if stdout is not None else subprocess.PIPE,
                             stderr=stderr if stderr is not None else subprocess.PIPE)
        pumps = []
        for pipe, target in ((process.stdout, streams.stdout), (process.stderr, streams.stderr)):
            if pipe is not None:
                thread = threading.Thread(target=_copy, args=(pipe, target), daemon=True)
                thread.start()
                pumps.append(thread)
        code = process.wait()
        for thread in pumps:
            thread.join()
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()
        return code

    def _exec_tty(self, cfg: dict[str, Any], streams: Streams, interactive: bool) -> int:
        master, slave = os.openpty()
        try:
            process = nsexec.run(cfg, stdin=slave, stdout=slave, stderr=slave)
        finally:
            os.close(slave)
        stdin = _fileno(streams.stdin) if interactive and streams.stdin is not None else None
        try:
            while True:
                readers = [master] + ([stdin] if stdin is not None else [])
                ready, _, _ = select.select(readers, [], [], 0.1)
                if master in ready:
                    try:
                        data = os.read(master, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        break
                    streams.stdout.write(data)
                    streams.stdout.flush()
                if stdin is not None and stdin in ready:
                    data = os.read(stdin, 65536)
                    if data:
                        os.write(master, data)
                    else:
                        stdin = None
                if not ready and process.poll() is not None:
                    break
        finally:
            os.close(master)
        return process.wait()

    def attach(self, ref: ContainerRef, streams: Streams, start: bool) -> int:
        project, name, config = self.locate(ref, "attach")
        if start:
            if config.get("restart") or config.get("healthcheck"):
                self.start(ref)
            else:
                self.start_direct(project, name, config)
        self.release()
        state = read_json(self.runtime.run_dir(project, name) / "state.json") or {}
        offset = 0
        fd = open_pidfd(state.get("monitor"), state.get("monitor_start"))
        try:
            while True:
                done = fd is None or wait_pidfd(fd, 0.05)
                offset = self._copy_log(str(config["log_path"]), offset, streams)
                if done:
                    break
        finally:
            if fd is not None:
                os.close(fd)
        return int(self.runtime.state(project, name).exit_code or 0)

    @staticmethod
    def _copy_log(path: str, offset: int, streams: Streams) -> int:
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return offset
        end = data.rfind(b"\n") + 1
        touched = set()
        for line in data[:end].splitlines():
            with contextlib.suppress(ValueError, KeyError):
                record = json.loads(line)
                target = streams.stderr if record["stream"] == "stderr" else streams.stdout
                target.write(record["log"].encode())
                touched.add(id(target))
        for target in (streams.stdout, streams.stderr):
            if id(target) in touched:
                target.flush()
        return offset + end

    def top(self, ref: ContainerRef) -> ProcessList:
        project, name, _ = self.locate(ref, "top")
        cgroup = self._cgroup(project, name, "top")
        rows = [row for row in (_process_row(pid) for pid in sorted(cgroups.pids(cgroup))) if row is not None]
        return ProcessList(("UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"), tuple(rows))

    # --- logs --------------------------------------------------------------------------------------

    def log_targets(self, refs: Sequence[ContainerRef]) -> list[tuple[str, str, str, str]]:
        """(project, name, service, log path) of each container."""
        found = []
        for ref in refs:
            project, name, config = self.locate(ref, "logs")
            service = str((config.get("labels") or {}).get(labels.SERVICE, name))
            found.append((project, name, service, str(config["log_path"])))
        return found

    def read_lines(self, target: tuple[str, str, str, str], offset: int, tail: int | None = None
                   ) -> tuple[list[LogLine], int]:
        _, name, service, path = target
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset
        end = data.rfind(b"\n") + 1
        lines = data[:end].splitlines()
        if tail is not None:
            lines = lines[-tail:] if tail > 0 else []
        found = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            found.append(LogLine(name, service, str(record.get("log", "")).removesuffix("\n"),
                                 str(record.get("stream") or "stdout"), record.get("time")))
        return found, offset + end

    def still_logging(self, target: tuple[str, str, str, str]) -> bool:
        project, name, _, _ = target
        try:
            return self.state(project, name).status in ("running", "paused", "restarting")
        except NotFoundError:
            return False

    # --- listings ------------------------------------------------------------------------------------

    def list_projects(self, include_stopped: bool) -> list[ProjectSummary]:
        found = []
        for folder in sorted(self.run_root.iterdir()) if self.run_root.is_dir() else ():
            states: list[str] = []
            files: tuple[str, ...] = ()
            for name in self.runtime.containers(folder.name):
                with contextlib.suppress(NotFoundError):
                    config = self.runtime.config(folder.name, name)
                    states.append(self.state(folder.name, name, config).status)
                    files = tuple(filter(None, str((config.get("labels") or {}).get(labels.CONFIG_FILES, ""))
                                         .split(","))) or files
            if states and (include_stopped or "running" in states):
                found.append(ProjectSummary(folder.name, tuple(states), files))
        return found

    def list_images(self, refs: Sequence[ContainerRef]) -> list[ImageSummary]:
        found = []
        for ref in refs:
            _, name, config = self.locate(ref, "images")
            reference = parse(str(config.get("image")))
            record = self.store.get(str(config.get("image")))
            size = sum(layer.size for layer in self.store.layers(record)) if record is not None else 0
            repository = reference.familiar().rsplit(":", 1)[0] if reference.tag else reference.familiar()
            found.append(ImageSummary(name, repository, reference.tag or "<none>",
                                      str(config.get("image_id") or ""), size,
                                      record.pulled if record is not None else None,
                                      record.platform if record is not None else ""))
        return found


def _warn(text: str) -> None:
    sys.stderr.write(f"warning: {text}\n")
    sys.stderr.flush()


def _fileno(stream: BinaryIO | None) -> int | None:
    if stream is None:
        return None
    try:
        return stream.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


def _copy(source: BinaryIO, target: BinaryIO) -> None:
    while data := source.read1(65536) if hasattr(source, "read1") else source.read(65536):
        target.write(data)
        target.flush()


def _process_row(pid: int) -> tuple[str, ...] | None:
    """One ``ps -ef`` row from /proc (as Docker's top shows by default)."""
    import pwd

    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes().decode(errors="replace")
        status = Path(f"/proc/{pid}/status").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    uid = next((line.split()[1] for line in status.splitlines() if line.startswith("Uid:")), "0")
    with contextlib.suppress(KeyError):
        uid = pwd.getpwuid(int(uid)).pw_name
    ticks = os.sysconf("SC_CLK_TCK")
    boot = time.time() - float(Path("/proc/uptime").read_text().split()[0])
    started = time.localtime(boot + int(fields[19]) / ticks)
    cpu = (int(fields[11]) + int(fields[12])) // ticks
    comm = stat[stat.index("(") + 1:stat.rindex(")")]
    tty = "?" if int(fields[4]) == 0 else f"pts/{int(fields[4]) & 0xFF}"
    return (uid, str(pid), fields[1], "0", time.strftime("%H:%M", started), tty,
            f"{cpu // 3600:02d}:{cpu % 3600 // 60:02d}:{cpu % 60:02d}", cmdline or f"[{comm}]")


def _layer_file(layer_dir: Path, parts: tuple[str, ...]) -> bytes | None:
    """A regular file of an unpacked layer, its path walked without following any symlink; None
    when it is not there as one."""
    try:
        fd = os.open(layer_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        for part in parts[:-1]:
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            except OSError:
                return None
            os.close(fd)
            fd = inner
        return read_image_file(parts[-1], dir_fd=fd, follow=False)
    finally:
        os.close(fd)
