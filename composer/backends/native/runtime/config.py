"""From a Compose service and its image to the helper's JSON configuration.

Pure functions (no side effects; masked_paths reads the host's sysfs, as Docker does): Docker's
rules for the command, environment, user, working directory, capabilities, masked paths, limits
and stop signal. Keys the native runtime cannot honour yet raise UnsupportedFeatureError instead
of being ignored.

The configuration (a JSON object, read by ``init.py``)::

    id, name, project        the container
    run_dir, log_path        state files; the json-file log
    rootfs                   {layers_dir, lower: [l/<short>...] topmost first, upper, work, mountpoint, readonly}
    args, env, user, group_add, working_dir, hostname, domainname
    capabilities, privileged, no_new_privileges, seccomp ("default" | "unconfined" | a profile file)
    seccomp_program          hex of the compiled filter (added by Runtime.create), null for none
    masked_paths, readonly_paths, mounts [{type: bind|tmpfs|volume, source, target, readonly, propagation,
                             recursive, options, fill, subpath}] (parents first)
    etc_files {"/etc/hosts": <file in run_dir>...}, shm_size, sysctls, ulimits {name: [soft, hard]}
    netns                    null (a new network namespace), "host", or a /proc/<pid>/ns/net path to join
    ipcns, pidns             null (a namespace of its own), "host", "none" (ipc only: no /dev/shm), or a
                             /proc/<pid>/ns/ipc|pid path to join (set by Runtime.start for service:/container:)
    init_binary              tini-static to run as PID 1 (``init: true``), or null
    cgroup, limits           the cgroup's relative path and cgroups.Limits fields
    logging                  {driver: json-file|local|none, max_size, max_file, compress} (logfiles.py)
    oom_score_adj, stop_signal, stop_grace_period
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence
from typing import Any

from composer.backends.native.runtime.linux import CAPS, DOCKER_DEFAULT_CAPS
from composer.errors import UnsupportedFeatureError

BACKEND = "native"
# Docker's (moby oci/defaults.go, as of 28.x), plus each CPU's thermal_throttle directory (masked_paths()).
MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                "/sys/devices/virtual/powercap")
CPUS_DIR = "/sys/devices/system/cpu"
READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
TINI_CANDIDATES = ("/usr/bin/tini-static", "/usr/bin/docker-init", "/usr/libexec/docker/docker-init")
DEFAULT_SHM = 64 << 20
# Namespaced sysctls (Docker's validation: IPC ones, fs.mqueue and the network namespace's).
IPC_SYSCTLS = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall", "kernel.shmmax",
               "kernel.shmmni", "kernel.shm_rmid_forced")


def masked_paths(cpus_dir: str = CPUS_DIR) -> list[str]:
    """MASKED_PATHS and ``/sys/devices/system/cpu/cpu*/thermal_throttle`` as this host has them
    (Docker globs them likewise when it creates a container: the container's sysfs is the host's)."""
    try:
        cpus = sorted(entry.name for entry in os.scandir(cpus_dir)
                      if entry.name.startswith("cpu") and entry.name[3:].isdigit())
    except OSError:
        cpus = []
    throttle = [f"{CPUS_DIR}/{cpu}/thermal_throttle" for cpu in cpus
                if os.path.isdir(f"{cpus_dir}/{cpu}/thermal_throttle")]
    return [*MASKED_PATHS, *throttle]


def unsupported(message: str, hint: str | None = None) -> UnsupportedFeatureError:
    return UnsupportedFeatureError(message, backend_name=BACKEND, operation="create", hint=hint)


def command(entrypoint: Sequence[str] | None, cmd: Sequence[str] | None, image: Mapping[str, Any]) -> list[str]:
    """Docker's override rules: a service ``entrypoint`` replaces the image's and clears its Cmd;
    a service ``command`` replaces the image's Cmd.

    :raises UnsupportedFeatureError: nothing to run (no entrypoint and no command anywhere).
    """
    if entrypoint is not None:
        args = [*entrypoint, *(cmd or ())]
    else:
        args = [*(image.get("Entrypoint") or ()), *(cmd if cmd is not None else image.get("Cmd") or ())]
    if not args:
        raise unsupported("no command specified", hint="set command: in the service or CMD in the image")
    return args


def environment(image_env: Sequence[str], service_env: Mapping[str, str | None], hostname: str) -> list[str]:
    """HOSTNAME, then the image's variables, then the service's (unset ones skipped); PATH default."""
    merged: dict[str, str] = {"HOSTNAME": hostname}
    for item in image_env:
        key, _, value = item.partition("=")
        merged[key] = value
    for key, setting in service_env.items():
        if setting is not None:
            merged[key] = setting
    merged.setdefault("PATH", DEFAULT_PATH)
    return [f"{k}={v}" for k, v in merged.items()]


def _cap_name(name: str) -> str:
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def capabilities(cap_add: Sequence[str], cap_drop: Sequence[str], privileged: bool) -> list[str]:
    """Docker's default set with ``cap_add``/``cap_drop`` (``ALL`` in either) applied; every
    capability when privileged.

    :raises UnsupportedFeatureError: an unknown capability name.
    """
    if privileged:
        return list(CAPS)
    adds = [_cap_name(c) for c in cap_add]
    drops = [_cap_name(c) for c in cap_drop]
    for name in (*adds, *drops):
        if name != "ALL" and name not in CAPS:
            raise unsupported(f"unknown capability: CAP_{name}")
    caps = [] if "ALL" in drops else list(DOCKER_DEFAULT_CAPS)
    if "ALL" in adds:
        caps = list(CAPS)
    caps += [c for c in adds if c != "ALL" and c not in caps]
    return [c for c in caps if c not in drops]


def sysctls(values: Mapping[str, str], *, host_network: bool, host_ipc: bool = False,
            service: str | None = None) -> dict[str, str]:
    """The service's sysctls, once each key is known to change only the container's namespaces
    (runc's validator: the IPC ones and fs.mqueue.* with an IPC namespace of its own, net.* with a
    network namespace of its own, kernel.domainname; kernel.hostname is the ``hostname`` key's).
    A key is dotted components, none empty and none holding a ``/``: PID 1 writes it under the
    container's /proc/sys only (init.write_sysctls), and no spelling may point anywhere else.

    :raises UnsupportedFeatureError: a malformed key, or one that is not namespaced (net.* with
        host networking, an IPC one with the host's IPC namespace).
    """
    who = f"service {service}: " if service else ""
    for key in values:
        parts = str(key).split(".")
        if len(parts) < 2 or any(not part or not part.isprintable() or "/" in part or part.strip() != part
                                 for part in parts):
            raise unsupported(f"{who}sysctl {key!r} is not a valid key: dotted names only, without '/' or "
                              "empty components")
        ipc = key in IPC_SYSCTLS or key.startswith("fs.mqueue.")
        namespaced = (ipc and not host_ipc) or (key.startswith("net.") and not host_network) or (
            key == "kernel.domainname")
        if key == "kernel.hostname":
            raise unsupported(f"{who}sysctl 'kernel.hostname' is not allowed: set the hostname key instead")
        if not namespaced:
            raise unsupported(f"{who}sysctl {key!r} is not namespaced here: it would change the host (allowed: "
                              "kernel.msg*, kernel.sem, kernel.shm* and fs.mqueue.* without ipc: host, net.* "
                              "without network_mode: host, kernel.domainname)")
    return {k: str(v) for k, v in values.items()}


def namespace_mode(service: Any, key: str) -> str | None:
    """The helper's ``ipcns``/``pidns`` for the service's ``ipc``/``pid``: None for a namespace of
    its own (also for ``service:``/``container:``, whose namespace Runtime.start is given),
    ``host``, or ``none`` (ipc: no /dev/shm, as Docker).

    :raises UnsupportedFeatureError: another value.
    """
    value = getattr(service, key, None)
    if value in (None, "private", "shareable") or str(value).startswith(("service:", "container:")):
        return None
    if value == "host" or (key == "ipc" and value == "none"):
        return str(value)
    raise unsupported(f"service {service.name}: {key}: {value} is not supported by the native backend")


def security(options: Sequence[str]) -> tuple[bool, str]:
    """(no_new_privileges, seccomp profile) from ``security_opt``: the profile is "default"
    (Docker's, also ``seccomp=builtin``), "unconfined", or the absolute path of a Docker-format
    profile file (relative to the working directory, as the docker CLI and compose read it; it
    is read and compiled by ``Runtime.create``).

    :raises UnsupportedFeatureError: anything else (apparmor, label...).
    """
    nnp, profile = False, "default"
    for option in options:
        key, _sep, value = option.replace("=", ":", 1).partition(":")
        if key == "no-new-privileges" and value in ("", "true"):
            nnp = True
        elif key == "no-new-privileges" and value == "false":
            nnp = False
        elif key == "seccomp" and value in ("unconfined", "builtin"):
            profile = "unconfined" if value == "unconfined" else "default"
        elif key == "seccomp" and value:
            profile = os.path.abspath(value)
        else:
            raise unsupported(f"security_opt {option!r} is not supported by the native backend")
    return nnp, profile


def signal_number(name: str | int | None, default: int = signal.SIGTERM) -> int:
    """``SIGTERM``, ``TERM``, ``15`` -> 15.

    :raises UnsupportedFeatureError: an unknown signal.
    """
    if name is None or name == "":
        return int(default)
    if isinstance(name, int) or str(name).isdigit():
        return int(name)
    text = str(name).upper()
    text = text if text.startswith("SIG") else f"SIG{text}"
    try:
        return int(signal.Signals[text])
    except KeyError:
        raise unsupported(f"unknown signal {name!r}") from None


def tmpfs_entry(entry: str) -> dict[str, Any]:
    target, _, options = entry.partition(":")
    return {"type": "tmpfs", "target": target, "options": options}


def mounts(volumes: Sequence[Any], tmpfs: Sequence[str], volume_paths: Mapping[str, str] | None = None
           ) -> list[dict[str, Any]]:
    """Bind, tmpfs and volume mounts, parents first; creates a missing bind source when the service
    asks. A bind's ``recursive`` is Compose's (enabled, disabled, writable, readonly: Docker's
    BindOptions NonRecursive, ReadOnlyNonRecursive and ReadOnlyForceRecursive). ``volume_paths``
    maps the target of each named or anonymous volume to its directory in the store (filled from
    the image's content at the target on first use unless ``nocopy``).

    :raises UnsupportedFeatureError: a volume without a directory, or another mount type.
    :raises NotFoundError: a missing bind source without create_host_path.
    """
    from composer.errors import NotFoundError

    result = [tmpfs_entry(entry) for entry in tmpfs]
    for volume in volumes:
        if volume.type == "tmpfs":
            options = []
            if volume.tmpfs is not None and volume.tmpfs.size is not None:
                options.append(f"size={int(volume.tmpfs.size)}")
            if volume.tmpfs is not None and volume.tmpfs.mode is not None:
                options.append(f"mode={int(volume.tmpfs.mode):o}")
            if volume.read_only:
                options.append("ro")
            result.append({"type": "tmpfs", "target": volume.target, "options": ",".join(options)})
        elif volume.type == "bind":
            source = str(volume.source)
            if not os.path.exists(source):
                if volume.bind is not None and volume.bind.create_host_path:
                    os.makedirs(source, exist_ok=True)
                else:
                    raise NotFoundError(f"bind source path does not exist: {source}", backend_name=BACKEND,
                                        operation="create")
            propagation = volume.bind.propagation if volume.bind is not None else None
            recursive = volume.bind.recursive if volume.bind is not None else None
            result.append({"type": "bind", "source": source, "target": volume.target,
                           "readonly": bool(volume.read_only), "propagation": propagation,
                           "recursive": recursive or "enabled"})
        elif volume.type == "volume" and volume_paths and volume.target in volume_paths:
            nocopy = bool(volume.volume is not None and volume.volume.nocopy)
            entry = {"type": "volume", "source": volume_paths[volume.target], "target": volume.target,
                     "readonly": bool(volume.read_only), "fill": not nocopy}
            if volume.volume is not None and volume.volume.subpath:
                # the subfolder is mounted, not filled from the image (its volume may be shared)
                entry.update(subpath=volume_subpath(volume.volume.subpath, volume.target), fill=False)
            result.append(entry)
        else:
            raise unsupported(f"{volume.type} mounts are not supported by the native runtime yet ({volume.target})")
    # Parents before what is mounted inside them, whatever the order in the file (Docker sorts so).
    return sorted(result, key=lambda mount: mount_depth(mount["target"]))


def volume_subpath(subpath: str, target: str) -> str:
    """``volume.subpath`` checked as Docker checks it (a relative path within the volume, no
    ``..``); symlinks in it are refused when it is mounted (``init.open_beneath``).

    :raises UnsupportedFeatureError: an absolute path, or one with a ``..`` component.
    """
    parts = [part for part in subpath.split("/") if part not in ("", ".")]
    if subpath.startswith("/") or ".." in parts or not parts:
        raise unsupported(f"volume subpath {subpath!r} of {target} must be a relative path within the volume")
    return "/".join(parts)


def mount_depth(target: str) -> int:
    """How many components the normalized ``target`` has (``/`` 0, ``/a/b`` 2)."""
    return len([part for part in os.path.normpath("/" + target).split("/") if part])


def tini() -> str | None:
    return next((p for p in TINI_CANDIDATES if os.access(p, os.X_OK)), None)


def hosts_file(hostname: str, extra_hosts: Sequence[str]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
             "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters"]
    for entry in extra_hosts:
        name, _, address = entry.partition("=") if "=" in entry else entry.partition(":")
        lines.append(f"{address}\t{name}")
    lines.append(f"127.0.1.1\t{hostname}")
    return "\n".join(lines) + "\n"


def resolv_conf(host_text: str, dns: Sequence[str], search: Sequence[str], options: Sequence[str]) -> str:
    """The host's resolv.conf without loopback nameservers (unreachable from the container's
    network namespace), with the service's dns, dns_search and dns_opt in place of the host's."""
    nameservers, searches, opts = [], [], []
    for line in host_text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1 and not fields[1].startswith(("127.", "::1")):
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            searches = fields[1:]
        elif fields[0] == "options":
            opts += fields[1:]
    nameservers = list(dns) or nameservers or ["8.8.8.8", "8.8.4.4"]
    searches = list(search) or searches
    opts = list(options) or opts
    text = "".join(f"nameserver {n}\n" for n in nameservers)
    if searches:
        text += f"search {' '.join(searches)}\n"
    if opts:
        text += f"options {' '.join(opts)}\n"
    return text


def resource_limits(service: Any) -> dict[str, Any]:
    """The cgroup limits (``cgroups.Limits`` fields) of the service keys and, over them,
    ``deploy.resources`` as v2's ``getDeployResources`` maps them for dockerd: limits.memory is
    the memory limit, limits.cpus the CFS quota (NanoCPUs: a 100 ms period), limits.pids the pids
    limit, reservations.memory the soft limit (memory.low on cgroup v2). reservations.cpus
    reaches no engine (v2 leaves it out: a Swarm scheduling reservation), here neither.
    The loader already refused a service key and its deploy twin with distinct values; device and
    generic-resource requests (GPUs) were refused by ``service_config`` from the coverage table.
    """
    resources = service.deploy.resources if service.deploy is not None else None
    limit = resources.limits if resources is not None else None
    reservation = resources.reservations if resources is not None else None
    cpus = (limit.cpus if limit is not None else None) or service.cpus
    cpu_quota, cpu_period = service.cpu_quota, service.cpu_period
    if cpus:
        cpu_period = cpu_period or 100000
        cpu_quota = int(cpus * cpu_period)
    memory = (limit.memory if limit is not None else None) or service.mem_limit
    reserved = (reservation.memory if reservation is not None else None) or service.mem_reservation
    pids = limit.pids if limit is not None and limit.pids is not None and limit.pids > 0 else service.pids_limit
    return {"memory": int(memory) if memory is not None else None,
            "memory_swap": int(service.memswap_limit) if service.memswap_limit is not None else None,
            "memory_reservation": int(reserved) if reserved is not None else None,
            "cpu_quota": cpu_quota, "cpu_period": cpu_period, "cpu_shares": service.cpu_shares,
            "cpuset_cpus": service.cpuset, "cpuset_mems": None, "pids": pids,
            "all_devices": service.privileged}


LOG_DRIVERS = ("json-file", "local", "none")
LOG_OPTIONS = ("max-size", "max-file", "compress")


def log_settings(service: Any) -> dict[str, Any]:
    """``logging`` as the monitor writes it (``logfiles.RotatingFile``): the json-file and local
    drivers with Docker's rotation options, or none. Unlike Docker's json-file default (one file,
    never rotated), a log is always bounded: without ``max-size`` both drivers rotate at the local
    driver's 20 MB x 5 files, so that a chatty service cannot fill the disk. Whatever the driver,
    the files hold json-file lines (the format on disk is native's own business).

    :raises UnsupportedFeatureError: another driver, another option, or a bad value.
    """
    from composer.backends.native.runtime.logfiles import DEFAULT_MAX_FILE, DEFAULT_MAX_SIZE
    from composer.spec.units import UnitError, parse_bytes

    logging = service.logging
    driver = (logging.driver if logging is not None else None) or "json-file"
    options = {k: v for k, v in (logging.options.items() if logging is not None else ()) if v is not None}
    where = f"service {service.name}: logging"
    if driver not in LOG_DRIVERS:
        raise unsupported(f"{where} driver {driver} is not supported by the native backend (json-file, local, none)")
    for key in options:
        if driver == "none" or key not in LOG_OPTIONS:
            raise unsupported(f"{where} option {key} is not supported by the native backend for the {driver} driver")
    if driver == "none":
        return {"driver": "none"}
    try:
        size = parse_bytes(options["max-size"]) if "max-size" in options else DEFAULT_MAX_SIZE
    except UnitError as exc:
        raise unsupported(f"{where} option max-size: {exc}") from None
    count_text = options.get("max-file", str(DEFAULT_MAX_FILE if "max-size" not in options or driver == "local" else 1))
    compress_text = options.get("compress", "true" if driver == "local" else "false").lower()
    if not count_text.isdigit() or int(count_text) < 1:
        raise unsupported(f"{where} option max-file: {count_text!r} is not a whole number of at least 1")
    if size < 1:
        raise unsupported(f"{where} option max-size: it must be positive")
    if compress_text not in ("true", "false", "1", "0"):
        raise unsupported(f"{where} option compress: {compress_text!r} is not true or false")
    return {"driver": driver, "max_size": size, "max_file": int(count_text), "compress": compress_text in ("true", "1")}


def service_config(service: Any, image_config: Mapping[str, Any], *, container_id: str, hostname: str | None = None,
                   volume_paths: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The part of the helper's configuration that comes from the service and the image config
    (``config`` of the image's config blob); paths are added by the runtime.

    :raises UnsupportedFeatureError: a key the native runtime does not honour, a bad value.
    """
    from composer.backends.native.coverage import COVERAGE
    from composer.contract.coverage import refuse

    refuse(COVERAGE, BACKEND, service)  # the keys the runtime does not honour, as the coverage table words them
    if service.volumes_from:  # resolved into binds by the backend before the runtime sees the service
        raise unsupported(f"service {service.name}: volumes_from reached the runtime unresolved")
    if service.cgroup not in (None, "private"):
        raise unsupported(f"service {service.name}: cgroup: {service.cgroup} is not supported by the native backend "
                          "yet")
    ipcns, pidns = namespace_mode(service, "ipc"), namespace_mode(service, "pid")
    if service.network_mode not in (None, "none", "bridge", "host", "default") and not str(
            service.network_mode).startswith(("service:", "container:")):
        raise unsupported(f"service {service.name}: network_mode: {service.network_mode} is not supported yet")
    image = image_config.get("config") or {}
    host = service.hostname or hostname or container_id[:12]
    nnp, seccomp = security(service.security_opt)
    ulimits = {name: [int(u.soft), int(u.hard)] for name, u in service.ulimits.items()}
    limits = resource_limits(service)
    init_binary = None
    if service.init:
        init_binary = tini()
        if init_binary is None:
            raise unsupported("init: true needs tini (apt-get install tini)")
    return {
        "args": command(service.entrypoint, service.command, image),
        "env": environment(image.get("Env") or (), service.environment, host),
        "user": service.user or image.get("User") or "0",
        "group_add": list(service.group_add),
        "working_dir": service.working_dir or image.get("WorkingDir") or "/",
        "hostname": host,
        "domainname": service.domainname,
        "capabilities": capabilities(service.cap_add, service.cap_drop, service.privileged),
        "privileged": service.privileged,
        "no_new_privileges": nnp,
        "seccomp": seccomp,
        "masked_paths": masked_paths(),
        "readonly_paths": list(READONLY_PATHS),
        "mounts": mounts(service.volumes, service.tmpfs, volume_paths),
        "shm_size": int(service.shm_size) if service.shm_size is not None else DEFAULT_SHM,
        "sysctls": sysctls(service.sysctls, host_network=service.network_mode == "host", host_ipc=ipcns == "host",
                           service=service.name),
        "ulimits": ulimits,
        "init_binary": init_binary,
        "limits": limits,
        "logging": log_settings(service),
        "oom_score_adj": service.oom_score_adj,
        "read_only": service.read_only,
        "stop_signal": signal_number(service.stop_signal or image.get("StopSignal")),
        "stop_grace_period": service.stop_grace_period.seconds if service.stop_grace_period is not None else 10.0,
        "netns": "host" if service.network_mode == "host" else None,  # Runtime.start(netns=) joins another
        "ipcns": ipcns, "pidns": pidns,  # likewise Runtime.start(ipcns=, pidns=)
        "extra_hosts": list(service.extra_hosts),
        "dns": list(service.dns), "dns_search": list(service.dns_search), "dns_opt": list(service.dns_opt),
        "tty": bool(service.tty), "stdin_open": bool(service.stdin_open),  # runtime/console.py
    }
