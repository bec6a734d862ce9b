"""The native runtime's container API: create, start, state, wait, stop, kill, remove, logs.

State layout (all JSON written atomically: temp file and rename)::

    <run root>/<project>/<container>/    run root: COMPOSER_RUN_ROOT or /run/composer
        config.json     the helper's configuration (written by create; has the container id)
        hostname, hosts, resolv.conf     bound into the container
        state.json      written by the monitor once the process runs: pid, its start time,
                        monitor pid, cgroup paths
        exit.json       written by the monitor when it ends: exit code (128+signal), oom_killed
        monitor.log     the helper's own stderr (tracebacks only)
        lock            fcntl lock serialising commands on this container
    <store root>/containers/<container id>/
        upper/ work/    the overlayfs writable layer, kept across stop/start
        rootfs/         mount point (mounted only inside the container's mount namespace)
        container.log   stdout/stderr in Docker's json-file format
        container.json  a copy of config.json: what survives a reboot (reboot.py)

Process ownership: the monitor that owns a container is not the caller's child (the helper's
first process exits at once), so any process can act on a container from these files alone: a
project supervisor that sets PR_SET_CHILD_SUBREAPER before spawning adopts the monitors; a CLI
finds pids in state.json and signals through pidfds checked against the recorded start time.
Every mount lives in the container's own mount namespace, so nothing needs unmounting on the
host, even after kill -9 of everything.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import select
import signal
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from composer import durable, faults, names
from composer.backends.native.image.store import ImageRecord, ImageStore, out_of_space, remove_tree, store_full
from composer.backends.native.records import record_container
from composer.backends.native.runtime import cgroups, logfiles
from composer.backends.native.runtime import spawn as spawn_module
from composer.backends.native.runtime.config import hosts_file, resolv_conf, service_config
from composer.backends.native.runtime.init import process_start_time, state_json
from composer.backends.native.runtime.spawn import Forkserver, SpawnError, spawn
from composer.contract.backend import ContainerState
from composer.errors import BackendError, NotFoundError, UnsupportedFeatureError

BACKEND = "native"
DEFAULT_RUN_ROOT = "/run/composer"
DEFAULT_CGROUP_PARENT = "composer"


def default_run_root(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    return Path(env.get("COMPOSER_RUN_ROOT") or DEFAULT_RUN_ROOT)


def default_cgroup_parent(environ: Mapping[str, str] | None = None) -> str:
    """The containers' cgroup parent (COMPOSER_CGROUP_PARENT), without its slashes."""
    env = os.environ if environ is None else environ
    return (env.get("COMPOSER_CGROUP_PARENT") or DEFAULT_CGROUP_PARENT).strip("/")


def _error(message: str, operation: str, cls: type[BackendError] = BackendError) -> BackendError:
    return cls(message, backend_name=BACKEND, operation=operation)


def checked_name(kind: str, name: str) -> str:
    """``name`` of a ``kind`` ("container", "volume", "project") that becomes a path here: Docker's
    rule (composer.names), so that none leaves the folder it is joined to (``../x``, ``a/b``).

    :raises BackendError: it does not follow the rule.
    """
    problem = names.name_problem(kind, name)
    if problem is not None:
        raise _error(problem, "create")
    return name


def project_dir(run_root: Path, project: str) -> Path:
    """The project's folder under the run root (its containers', supervisor's and lock's).

    :raises BackendError: an invalid project name.
    """
    return run_root / checked_name("project", project)


def private_project_dir(run_root: Path, project: str) -> Path:
    """``project_dir``, created (with the run root) when missing: both 0700, whatever the umask.
    They hold whole environments (config.json) and probe output (health.json): root's alone, as
    Docker's /var/lib/docker/containers (0710) and config.v2.json (0600). A run root left open by
    an older version (or made first by the network manager) is closed here.

    :raises BackendError: an invalid project name.
    """
    folder = project_dir(run_root, project)
    run_root.parent.mkdir(parents=True, exist_ok=True)
    for path in (run_root, folder):
        with contextlib.suppress(FileExistsError):
            path.mkdir(mode=0o700)
    if os.stat(run_root).st_mode & 0o077:
        os.chmod(run_root, 0o700)
    return folder


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def open_pidfd(pid: int | None, start: int | None) -> int | None:
    """A pidfd for ``pid`` if it is still the process started at ``start`` (else None)."""
    if not pid:
        return None
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return None
    if start is not None and process_start_time(pid) != start:
        os.close(fd)
        return None
    return fd


def wait_pidfd(fd: int, timeout: float | None) -> bool:
    """Whether the process behind ``fd`` exited within ``timeout`` seconds."""
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(None if timeout is None else max(0, int(timeout * 1000))))


CREATING, REMOVING = ".creating", ".removing"  # staging folders of a create, a remove, in the project's folder


def staging_name(kind: str) -> str:
    """A staging folder's name: its kind, this process (pid and start time: who may reclaim it)
    and random bytes."""
    pid = os.getpid()
    return f"{kind}-{pid}-{process_start_time(pid) or 0}-{secrets.token_hex(4)}"


def staging_owner(name: str) -> tuple[int, int] | None:
    """(pid, start time) of the process that made the staging folder ``name``; None for any
    other name (a container's folder, the project's files)."""
    kind, _, rest = name.partition("-")
    if kind not in (CREATING, REMOVING):
        return None
    pid, _, rest = rest.partition("-")
    start, _, _ = rest.partition("-")
    return (int(pid), int(start)) if pid.isdigit() and start.isdigit() else None


class Runtime:
    """Containers from images in ``store``; state under ``run_root``; cgroups under ``cgroup_parent``."""

    def __init__(self, store: ImageStore, *, run_root: Path | str | None = None,
                 cgroup_parent: str = "composer") -> None:
        self.store = store
        self.run_root = Path(run_root) if run_root is not None else default_run_root()
        self.cgroup_parent = cgroup_parent.strip("/")
        # Set by a long-lived owner (the project supervisor): helpers are then forked from it.
        self.forkserver: Forkserver | None = spawn_module.inherited

    # --- paths and files -----------------------------------------------------------------------

    def run_dir(self, project: str, name: str) -> Path:
        """:raises BackendError: an invalid project or container name (checked_name)."""
        return project_dir(self.run_root, project) / checked_name("container", name)

    def data_dir(self, container_id: str) -> Path:
        return self.store.root / "containers" / container_id

    def config(self, project: str, name: str, operation: str = "inspect") -> dict[str, Any]:
        """:raises NotFoundError: no such container."""
        data = _read_json(self.run_dir(project, name) / "config.json")
        if data is None:
            raise _error(f"No such container: {name}", operation, NotFoundError)
        return data

    @contextlib.contextmanager
    def _locked(self, project: str, name: str) -> Iterator[None]:
        path = self.run_dir(project, name) / "lock"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except FileNotFoundError:
            raise _error(f"No such container: {name}", "lock", NotFoundError) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def containers(self, project: str) -> list[str]:
        """The names of the project's containers."""
        folder = project_dir(self.run_root, project)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / "config.json").is_file())

    # --- lifecycle -----------------------------------------------------------------------------

    def create(self, project: str, name: str, service: Any, image: ImageRecord, *,
               labels: Mapping[str, str] | None = None, volume_paths: Mapping[str, str] | None = None,
               extra: Mapping[str, Any] | None = None, etc_source: Path | None = None) -> str:
        """Prepare a container of ``service`` (a ServiceConfig) from ``image``; nothing runs yet.
        Returns the container id. ``volume_paths``: target -> store directory of each volume
        mount; ``extra``: more keys for config.json (the supervisor's restart and healthcheck);
        ``etc_source``: another container's run directory whose hostname, hosts and resolv.conf
        this one shares (it joins that container's network namespace, as Docker does).

        :raises AlreadyExistsError: a container of that name exists in the project.
        :raises UnsupportedFeatureError: the service asks for something the runtime cannot do.
        :raises ImageStoreError: the image's content is missing from the store.
        """
        from composer.errors import AlreadyExistsError

        container_id = secrets.token_hex(32)
        settings = service_config(service, self.store.config(image), container_id=container_id,
                                  volume_paths=volume_paths)
        # compiled now, once: every start and exec of the container installs the same program
        settings["seccomp_program"] = self.seccomp_program(settings)
        layers = [f"l/{layer.link}" for layer in reversed(self.store.layers(image))]
        run_dir = self.run_dir(project, name)
        folder = private_project_dir(self.run_root, project)
        if run_dir.exists():
            raise _error(f"container name {name} is already in use in project {project}", "create",
                         AlreadyExistsError)
        # built under a temporary name and renamed into place whole: a container's folder exists
        # with its config.json or not at all, whenever this is killed; what a killed create leaves
        # is a staging folder its owner's pid tells apart (reclaim)
        staging = folder / staging_name(CREATING)
        staging.mkdir(mode=0o700)
        data_dir = self.data_dir(container_id)
        try:
            faults.point("runtime.create.staged")
            state_json(str(staging / "creating.json"), {"id": container_id})
            data_dir.parent.mkdir(parents=True, exist_ok=True)
            data_dir.mkdir(mode=0o700)  # the container's log and its changes to the image: root's alone
            for sub in ("upper", "work", "rootfs"):
                (data_dir / sub).mkdir(mode=0o755)
            faults.point("runtime.create.data-made")
            if etc_source is not None:
                settings["hostname"] = (etc_source / "hostname").read_text().strip()
                for key in ("extra_hosts", "dns", "dns_search", "dns_opt"):
                    settings.pop(key)
            etc_dir = etc_source or run_dir
            etc = {"/etc/hostname": etc_dir / "hostname", "/etc/hosts": etc_dir / "hosts",
                   "/etc/resolv.conf": etc_dir / "resolv.conf"}
            if etc_source is None:
                self._write_etc_files(settings, {target: staging / path.name for target, path in etc.items()})
            config = {
                **(extra or {}), **settings,
                "id": container_id, "name": name, "project": project, "image": image.reference,
                "image_id": image.config, "labels": dict(labels or {}), "created": time.time(),
                "run_dir": str(run_dir), "log_path": str(data_dir / "container.log"),
                "rootfs": {"layers_dir": str(self.store.root), "lower": layers, "upper": str(data_dir / "upper"),
                           "work": str(data_dir / "work"), "mountpoint": str(data_dir / "rootfs"),
                           "readonly": bool(settings.pop("read_only"))},
                "etc_files": {target: str(source) for target, source in etc.items()},
                "cgroup": f"{self.cgroup_parent}/{container_id}",
            }
            state_json(str(staging / "config.json"), config)
            # a copy beside the container's files, which outlive the run root: after a reboot it
            # tells which run root and project they belong to (residue.py, reboot.py)
            record_container(config, data_dir, etc_dir=staging)
            faults.point("runtime.create.config-written")
            try:
                os.rename(staging, run_dir)  # fails on a folder with anything in it: a racing create
            except OSError as exc:
                if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise
                raise _error(f"container name {name} is already in use in project {project}", "create",
                             AlreadyExistsError) from None
            # not fsynced: the run root's folders are a boot's (composer.durable's sync=False)
            faults.point("runtime.create.renamed")
        except BaseException as exc:
            remove_tree(staging)
            remove_tree(data_dir)
            if out_of_space(exc) and os.stat(self.store.root).st_dev != os.stat(self.run_root).st_dev:
                raise store_full(self.store.root, f"creating container {name}", "create") from exc
            raise
        return container_id

    def reclaim(self, project: str) -> list[str]:
        """Remove what a create or remove killed midway left in the project's folder: staging
        folders (CREATING, REMOVING) whose owner process is gone, with the writable layer their
        creating.json or config.json names. Call it holding the project's lock. The names removed.
        """
        folder = project_dir(self.run_root, project)
        removed = durable.remove_stale_temporaries(folder) if folder.is_dir() else []
        for entry in sorted(folder.iterdir()) if folder.is_dir() else ():
            owner = staging_owner(entry.name)
            if owner is None or process_start_time(owner[0]) == owner[1]:
                continue
            state = _read_json(entry / "state.json") or {}
            if state.get("cgroup"):  # a remove killed midway: the container's processes and cgroup
                with contextlib.suppress(OSError, KeyError, ValueError):
                    cgroup = cgroups.Cgroup.from_json(state["cgroup"])
                    for pid in cgroups.pids(cgroup):
                        with contextlib.suppress(OSError):
                            os.kill(pid, signal.SIGKILL)
                    cgroups.remove(cgroup)
            for record in ("config.json", "creating.json"):
                container_id = str((_read_json(entry / record) or {}).get("id") or "")
                if len(container_id) == 64 and all(c in "0123456789abcdef" for c in container_id):
                    remove_tree(self.data_dir(container_id))
            remove_tree(entry)
            removed.append(entry.name)
        return removed

    def seccomp_program(self, settings: Mapping[str, Any]) -> str | None:
        """The container's seccomp filter (hex; None for none), cached under the store root.

        :raises ProfileError: the profile file cannot be used.
        :raises SeccompError: libseccomp is missing or refuses the profile.
        """
        from composer.backends.native.runtime.seccomp_bpf import container_program

        return container_program(settings, cache_dir=self.store.root / "seccomp")

    @staticmethod
    def _write_etc_files(settings: dict[str, Any], etc: Mapping[str, Path]) -> None:
        etc["/etc/hostname"].write_text(settings["hostname"] + "\n")
        etc["/etc/hosts"].write_text(hosts_file(settings["hostname"], settings.pop("extra_hosts")))
        try:
            host_resolv = Path("/etc/resolv.conf").read_text()
        except OSError:
            host_resolv = ""
        etc["/etc/resolv.conf"].write_text(resolv_conf(host_resolv, settings.pop("dns"), settings.pop("dns_search"),
                                                       settings.pop("dns_opt")))
        for path in etc.values():  # 0644 in the container, as Docker's, whatever the caller's umask
            path.chmod(0o644)

    def start(self, project: str, name: str, *, netns: str | None = None,
              on_netns: Callable[[int], None] | None = None, ipcns: str | None = None,
              pidns: str | None = None) -> int:
        """Run the container's process; returns its pid once exec'd. A running container is left
        as it is.

        Networking hooks (composer.backends.native.network): ``netns`` joins that network
        namespace (``/proc/<pid>/ns/net`` of another container, ``network_mode: service:X``)
        instead of the one the configuration says (a new one, or the host's); ``on_netns(pid)``
        configures the container's network namespace at ``/proc/<pid>/ns/net`` before its
        command runs (see ``spawn``); its exception aborts the start and propagates. ``ipcns`` and
        ``pidns`` likewise join another container's IPC or pid namespace (``/proc/<pid>/ns/ipc``,
        ``/proc/<pid>/ns/pid``: ``ipc``/``pid`` ``service:X``).

        :raises NotFoundError: no such container.
        :raises BackendError: the process could not be started (one line: the helper's error).
        """
        with self._locked(project, name):
            config = self.config(project, name, "start")
            if self._running(project, name):
                return int((_read_json(self.run_dir(project, name) / "state.json") or {})["pid"])
            run_dir = self.run_dir(project, name)
            for stale in ("state.json", "exit.json"):
                with contextlib.suppress(FileNotFoundError):
                    (run_dir / stale).unlink()
            joined = {"netns": netns, "ipcns": ipcns, "pidns": pidns}
            config = {**config, **{key: path for key, path in joined.items() if path is not None}}
            if "seccomp_program" not in config:  # created before programs were compiled at create
                config["seccomp_program"] = self.seccomp_program(config)
            try:
                return spawn(config, stderr_path=str(run_dir / "monitor.log"), on_netns=on_netns,
                             forkserver=self.forkserver)
            except SpawnError as exc:
                raise _error(f"cannot start container {name}: {exc}", "start") from None

    def _running(self, project: str, name: str) -> bool:
        return self.state(project, name).status == "running"

    def state(self, project: str, name: str) -> ContainerState:
        """created, running, exited, or dead (its monitor vanished without recording an exit).

        :raises NotFoundError: no such container.
        """
        run_dir = self.run_dir(project, name)
        if not (run_dir / "config.json").is_file():
            raise _error(f"No such container: {name}", "inspect", NotFoundError)
        exited = _read_json(run_dir / "exit.json")
        if exited is not None:
            return ContainerState("exited", exit_code=int(exited["exit_code"]),
                                  oom_killed=bool(exited.get("oom_killed")))
        state = _read_json(run_dir / "state.json")
        if state is None:
            return ContainerState("created")
        for pid_key, start_key in (("pid", "pid_start"), ("monitor", "monitor_start")):
            pid, start = state.get(pid_key), state.get(start_key)
            if pid and process_start_time(int(pid)) == start:
                return ContainerState("running")
        exited = _read_json(run_dir / "exit.json")  # the monitor may have just finished
        if exited is not None:
            return ContainerState("exited", exit_code=int(exited["exit_code"]),
                                  oom_killed=bool(exited.get("oom_killed")))
        return ContainerState("dead")

    def wait(self, project: str, name: str, timeout: float | None = None) -> ContainerState:
        """Block until the container is no longer running (or ``timeout`` passes); its state."""
        state = _read_json(self.run_dir(project, name) / "state.json") or {}
        deadline = None if timeout is None else time.monotonic() + timeout
        for pid_key, start_key in (("pid", "pid_start"), ("monitor", "monitor_start")):
            fd = open_pidfd(state.get(pid_key), state.get(start_key))
            if fd is None:
                continue
            try:
                wait_pidfd(fd, None if deadline is None else deadline - time.monotonic())
            finally:
                os.close(fd)
        return self.state(project, name)

    def kill(self, project: str, name: str, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's PID 1 (nothing when it does not run).

        :raises NotFoundError: no such container.
        """
        self.config(project, name, "kill")
        state = _read_json(self.run_dir(project, name) / "state.json") or {}
        fd = open_pidfd(state.get("pid"), state.get("pid_start"))
        if fd is None:
            return
        try:
            signal.pidfd_send_signal(fd, sig)
        except ProcessLookupError:
            pass
        finally:
            os.close(fd)

    def stop(self, project: str, name: str, *, sig: int | None = None, grace: float | None = None,
             on_signal: Callable[[int], None] | None = None) -> ContainerState:
        """Send the stop signal (the service's stop_signal by default), wait ``grace`` seconds
        (stop_grace_period, 10 s by default), then SIGKILL; returns the final state. ``on_signal``
        is told each signal before it is sent (the supervisor's ``kill`` events)."""
        config = self.config(project, name, "stop")
        sig = int(config.get("stop_signal") or signal.SIGTERM) if sig is None else sig
        grace = float(config.get("stop_grace_period", 10.0)) if grace is None else grace
        state = _read_json(self.run_dir(project, name) / "state.json") or {}
        fd = open_pidfd(state.get("pid"), state.get("pid_start"))
        if fd is not None:
            try:
                if on_signal is not None:
                    on_signal(sig)
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(fd, sig)
                if not wait_pidfd(fd, grace):
                    if on_signal is not None:
                        on_signal(signal.SIGKILL)
                    with contextlib.suppress(ProcessLookupError):
                        signal.pidfd_send_signal(fd, signal.SIGKILL)
                    wait_pidfd(fd, None)
            finally:
                os.close(fd)
        final = self.wait(project, name, timeout=10.0)
        if final.status == "dead":
            self._reap_lost(project, name, config)
            final = self.state(project, name)
        return final

    def _reap_lost(self, project: str, name: str, config: dict[str, Any]) -> None:
        """The monitor died (kill -9): kill what is left in the cgroup, record an unknown exit."""
        run_dir = self.run_dir(project, name)
        state = _read_json(run_dir / "state.json") or {}
        cgroup = cgroups.Cgroup.from_json(state["cgroup"]) if state.get("cgroup") else None
        if cgroup is not None:
            for pid in cgroups.pids(cgroup):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(OSError):
                cgroups.remove(cgroup)
        if _read_json(run_dir / "exit.json") is None:
            state_json(str(run_dir / "exit.json"), {"exit_code": 137, "signal": None, "oom_killed": False,
                                                     "finished": time.time(), "monitor_lost": True})

    def remove(self, project: str, name: str, *, force: bool = False) -> None:
        """Remove the container's files, writable layer, log and cgroup; ``force`` kills it first.

        :raises NotFoundError: no such container.
        :raises BackendError: it is running and ``force`` is not set.
        """
        config = self.config(project, name, "remove")
        with self._locked(project, name):
            status = self.state(project, name).status
            if status == "running":
                if not force:
                    raise _error(f"cannot remove container {name}: it is running (stop it first, or force)",
                                 "remove")
                self.kill(project, name)
                status = self.wait(project, name, timeout=10.0).status
            if status in ("running", "dead"):
                self._reap_lost(project, name, config)
            state = _read_json(self.run_dir(project, name) / "state.json") or {}
            if state.get("cgroup"):
                cgroups.remove(cgroups.Cgroup.from_json(state["cgroup"]))
            faults.point("runtime.remove.cgroup-removed")
            # out of sight first (whole), then removed: a remove killed midway leaves a staging
            # folder that reclaim finishes, never a half-removed container that blocks its name
            staging = project_dir(self.run_root, project) / staging_name(REMOVING)
            os.rename(self.run_dir(project, name), staging)
            faults.point("runtime.remove.renamed")
            remove_tree(self.data_dir(str(config["id"])))
            faults.point("runtime.remove.data-removed")
            remove_tree(staging)
        with contextlib.suppress(OSError):
            (self.run_root / project).rmdir()

    def logs(self, project: str, name: str) -> list[dict[str, str]]:
        """The container's log records so far (``log``, ``stream``, ``time``)."""
        config = self.config(project, name, "logs")
        text = logfiles.read_all(str(config["log_path"])).decode("utf-8", "replace")
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def output(self, project: str, name: str, stream: str | None = None) -> str:
        """The logged output as text (one stream, or both interleaved)."""
        return "".join(r["log"] for r in self.logs(project, name) if stream is None or r["stream"] == stream)


__all__ = ["Runtime", "UnsupportedFeatureError", "default_run_root"]
