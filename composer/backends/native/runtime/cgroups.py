"""cgroups for native containers: v1, v2 or hybrid, detected at run time from mountinfo.

Layout: one cgroup per container, ``<parent>/<container id>``, in every v1 hierarchy this
module uses (memory, cpu, cpuacct, cpuset, pids, freezer, blkio, devices, name=systemd) and,
when a cgroup2 mount exists (v2, or hybrid's ``/sys/fs/cgroup/unified``), in the unified one
too. On v2 the controllers are enabled in each ancestor's ``cgroup.subtree_control``; on a
hybrid host the unified hierarchy only tracks the processes (its controllers belong to v1, or
are things like hugetlb that composer does not set).

Devices: Docker's rules (``devices.DEFAULT_RULES``) in the v1 devices hierarchy, and a BPF device
program on the container's cgroup2 directory (cgroup2 has no devices controller: ``devices``), so
on a hybrid host both apply. A host with neither gets no unprivileged container: nothing would
keep a node for the host's disk, made with CAP_MKNOD or shipped in a layer, from being opened.

Imported by the spawner's helper (``python -S``), so it uses ``os`` (and ``devices``: ctypes) only.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time

from composer.backends.native.runtime import devices

TYPE_CHECKING = False  # typing costs the helper ~10 ms of start-up
if TYPE_CHECKING:
    from typing import Any

ROOT = "/sys/fs/cgroup"
V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "cpuset", "pids", "freezer", "blkio", "devices", "systemd")
V2_CONTROLLERS = ("cpuset", "cpu", "memory", "pids")


class Layout:
    """Where the hierarchies are: ``mode`` is v1, v2, hybrid or none; ``v1`` maps a controller
    (``systemd`` for name=systemd) to its mount point; ``unified`` is the cgroup2 mount or None."""

    __slots__ = ("mode", "unified", "v1")

    def __init__(self, mode: str, v1: dict[str, str], unified: str | None) -> None:
        self.mode = mode
        self.v1 = v1
        self.unified = unified


def detect(mountinfo: str = "/proc/self/mountinfo") -> Layout:
    """The cgroup layout of this mount namespace."""
    v1: dict[str, str] = {}
    unified: str | None = None
    with open(mountinfo) as f:
        for line in f:
            fields = line.split()
            try:
                sep = fields.index("-")
            except ValueError:
                continue
            fstype, mountpoint = fields[sep + 1], fields[4].replace("\\040", " ")
            if fstype == "cgroup2":
                if unified is None or mountpoint == ROOT:
                    unified = mountpoint
            elif fstype == "cgroup":
                for option in fields[sep + 3].split(","):
                    name = option[5:] if option.startswith("name=") else option
                    if name in V1_CONTROLLERS and name not in v1:
                        v1[name] = mountpoint
    if not v1:
        return Layout("v2" if unified else "none", v1, unified)
    return Layout("hybrid" if unified else "v1", v1, unified)


class Limits:
    """What to write: bytes for memory (``memory_swap`` is memory + swap, -1 unlimited, None
    twice the memory as Docker does), microseconds for the CFS quota and period, -1 or None for
    no pids limit."""

    memory: int | None
    memory_swap: int | None
    memory_reservation: int | None
    cpu_quota: int | None
    cpu_period: int | None
    cpu_shares: int | None
    cpuset_cpus: str | None
    cpuset_mems: str | None
    pids: int | None
    all_devices: bool | None  # privileged: no device rules
    FIELDS = ("memory", "memory_swap", "memory_reservation", "cpu_quota", "cpu_period", "cpu_shares",
              "cpuset_cpus", "cpuset_mems", "pids", "all_devices")

    def __init__(self, **values: Any) -> None:
        for name in self.FIELDS:
            setattr(self, name, values.pop(name, None))
        if values:
            raise TypeError(f"unknown limits: {sorted(values)}")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Limits:
        return cls(**{k: data.get(k) for k in cls.FIELDS})


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _mkdirs(base: str, relative: str, on_new: Any = None) -> str:
    path = base
    for part in relative.strip("/").split("/"):
        parent, path = path, os.path.join(path, part)
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        if on_new is not None:
            on_new(parent, path)
    return path


def _cpuset_inherit(parent: str, path: str) -> None:
    for name in ("cpuset.cpus", "cpuset.mems"):
        if not _read(os.path.join(path, name)).strip():
            _write(os.path.join(path, name), _read(os.path.join(parent, name)).strip() or "\n")


class Cgroup:
    """A container's cgroup: ``paths`` maps each hierarchy (controller name, or ``unified``) to
    its directory."""

    __slots__ = ("mode", "paths", "relative")

    def __init__(self, relative: str, paths: dict[str, str], mode: str) -> None:
        self.relative = relative
        self.paths = paths
        self.mode = mode

    def to_json(self) -> dict[str, Any]:
        return {"relative": self.relative, "paths": self.paths, "mode": self.mode}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cgroup:
        return cls(str(data["relative"]), dict(data["paths"]), str(data["mode"]))


def create(relative: str, limits: Limits, layout: Layout | None = None) -> Cgroup:
    """Create the cgroup ``relative`` (e.g. ``composer/<id>``) in every hierarchy and apply
    ``limits``. On failure what was created is removed again.

    :raises OSError: a directory or a knob cannot be written (the message names the file).
    """
    layout = layout or detect()
    if not limits.all_devices and "devices" not in layout.v1 and not layout.unified:
        raise OSError(errno.ENOTSUP, "no device control on this host (neither a cgroup2 mount nor a cgroup v1 devices "
                                     "hierarchy), so a container could open the host's devices: mount cgroup2 "
                                     "(mount -t cgroup2 none /sys/fs/cgroup), or run it privileged")
    paths: dict[str, str] = {}
    try:
        if layout.mode == "v2" and layout.unified:
            _enable_v2_controllers(layout.unified, relative)
            paths["unified"] = _mkdirs(layout.unified, relative)
            _apply_v2(paths["unified"], limits)
        else:
            for name, mountpoint in layout.v1.items():
                paths[name] = _mkdirs(mountpoint, relative, _cpuset_inherit if name == "cpuset" else None)
            if layout.unified:
                paths["unified"] = _mkdirs(layout.unified, relative)
            _apply_v1(paths, limits)
        if "unified" in paths and not limits.all_devices:
            _attach_device_program(paths)
    except BaseException:
        remove(Cgroup(relative, paths, layout.mode), timeout=0.5)
        raise
    return Cgroup(relative, paths, layout.mode)


def adopt(spare: Cgroup, relative: str, limits: Limits) -> Cgroup:
    """A spare cgroup (a v1 or hybrid host's, under the same parent) renamed to ``relative``, with
    ``limits`` applied. The cgroup2 hierarchy refuses renames: there (hybrid: it only tracks the
    processes) the spare's directory stays, and the returned paths say so; the device program
    attached to it when it was made stays too (``create``: Docker's rules, so not for a privileged
    container).

    :raises OSError: a rename or a knob failed.
    """
    if limits.all_devices:  # the spare's device rules and program are set for good
        raise OSError(errno.EINVAL, "a privileged container cannot take a spare cgroup")
    renamed: dict[str, str] = {}
    suffix = "/" + spare.relative.strip("/")
    try:
        for name, path in spare.paths.items():
            target = path.removesuffix(suffix) + "/" + relative.strip("/")
            try:
                os.rename(path, target)
            except OSError:
                if name != "unified":
                    raise
                target = path
            renamed[name] = target
        _apply_v1(renamed, limits)
    except OSError:
        for name, target in renamed.items():  # back to the spare's names: its owner removes those
            with contextlib.suppress(OSError):
                os.rename(target, spare.paths[name])
        raise
    return Cgroup(relative, renamed, spare.mode)


def _knob(path: str, name: str, value: object) -> None:
    try:
        _write(os.path.join(path, name), str(value))
    except OSError as exc:
        raise OSError(exc.errno, f"cannot set {name}={value}: {exc.strerror}") from None


def _attach_device_program(paths: dict[str, str]) -> None:
    """Docker's device rules as a BPF program on the cgroup2 directory. Where the kernel has no
    cgroup BPF (ENOSYS, EINVAL) or a sandbox forbids it (EPERM), a hybrid host's v1 devices rules
    still hold, as they do for Docker there; with no v1 rules the start fails."""
    try:
        devices.attach(paths["unified"])
    except OSError as exc:
        if "devices" not in paths or exc.errno not in (errno.ENOSYS, errno.EINVAL, errno.EPERM):
            raise


def _apply_v1(paths: dict[str, str], limits: Limits) -> None:
    device_dir = paths.get("devices")
    if device_dir and not limits.all_devices:  # deny everything, then allow Docker's defaults
        _knob(device_dir, "devices.deny", "a")
        for rule in devices.DEFAULT_RULES:
            _knob(device_dir, "devices.allow", rule)
    memory = paths.get("memory")
    if memory:
        if limits.memory_reservation is not None:
            _knob(memory, "memory.soft_limit_in_bytes", limits.memory_reservation)
        if limits.memory is not None:
            _knob(memory, "memory.limit_in_bytes", limits.memory)
            if os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):
                swap = limits.memory_swap if limits.memory_swap is not None else 2 * limits.memory
                _knob(memory, "memory.memsw.limit_in_bytes", swap)
    cpu = paths.get("cpu")
    if cpu:
        if limits.cpu_period is not None:
            _knob(cpu, "cpu.cfs_period_us", limits.cpu_period)
        if limits.cpu_quota is not None:
            _knob(cpu, "cpu.cfs_quota_us", limits.cpu_quota)
        if limits.cpu_shares is not None:
            _knob(cpu, "cpu.shares", limits.cpu_shares)
    cpuset = paths.get("cpuset")
    if cpuset:
        if limits.cpuset_cpus:
            _knob(cpuset, "cpuset.cpus", limits.cpuset_cpus)
        if limits.cpuset_mems:
            _knob(cpuset, "cpuset.mems", limits.cpuset_mems)
    pids = paths.get("pids")
    if pids and limits.pids is not None and limits.pids > 0:
        _knob(pids, "pids.max", limits.pids)


def _enable_v2_controllers(unified: str, relative: str) -> None:
    available = set(_read(os.path.join(unified, "cgroup.controllers")).split())
    wanted = " ".join(f"+{c}" for c in V2_CONTROLLERS if c in available)
    path = unified
    for part in relative.strip("/").split("/")[:-1] or []:
        if wanted:
            _knob(path, "cgroup.subtree_control", wanted)
        path = os.path.join(path, part)
        os.makedirs(path, exist_ok=True)
    if wanted:
        _knob(path, "cgroup.subtree_control", wanted)


def _apply_v2(path: str, limits: Limits) -> None:
    if limits.memory_reservation is not None:
        _knob(path, "memory.low", limits.memory_reservation)
    if limits.memory is not None:
        _knob(path, "memory.max", limits.memory)
        if limits.memory_swap is not None:
            swap = "max" if limits.memory_swap < 0 else max(limits.memory_swap - limits.memory, 0)
            _knob(path, "memory.swap.max", swap)
    if limits.cpu_quota is not None or limits.cpu_period is not None:
        quota = "max" if limits.cpu_quota is None or limits.cpu_quota < 0 else limits.cpu_quota
        _knob(path, "cpu.max", f"{quota} {limits.cpu_period or 100000}")
    if limits.cpu_shares is not None:
        _knob(path, "cpu.weight", 1 + ((limits.cpu_shares - 2) * 9999) // 262142)
    if limits.cpuset_cpus:
        _knob(path, "cpuset.cpus", limits.cpuset_cpus)
    if limits.cpuset_mems:
        _knob(path, "cpuset.mems", limits.cpuset_mems)
    if limits.pids is not None and limits.pids > 0:
        _knob(path, "pids.max", limits.pids)


def enter(cgroup: Cgroup, pid: int) -> None:
    """Move ``pid`` into the cgroup in every hierarchy."""
    for name, path in cgroup.paths.items():
        try:
            _write(os.path.join(path, "cgroup.procs"), str(pid))
        except OSError as exc:
            raise OSError(exc.errno, f"cannot move {pid} into the {name} cgroup {path}: {exc.strerror}") from None


def oom_kills(cgroup: Cgroup) -> int:
    """How many processes the kernel's OOM killer killed in this cgroup (0 when unknown)."""
    candidates = []
    if "memory" in cgroup.paths:
        candidates.append((os.path.join(cgroup.paths["memory"], "memory.oom_control"), "oom_kill"))
    if cgroup.mode == "v2" and "unified" in cgroup.paths:
        candidates.append((os.path.join(cgroup.paths["unified"], "memory.events"), "oom_kill"))
    for path, key in candidates:
        try:
            text = _read(path)
        except OSError:
            continue
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def pids(cgroup: Cgroup) -> list[int]:
    """The processes in the cgroup (from the first hierarchy that answers)."""
    for path in cgroup.paths.values():
        try:
            return [int(p) for p in _read(os.path.join(path, "cgroup.procs")).split()]
        except OSError:
            continue
    return []


def remove(cgroup: Cgroup, *, timeout: float = 5.0) -> None:
    """Remove the container's directories (retrying while the last processes exit); a
    missing directory is fine.

    :raises OSError: one stays busy after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    for path in cgroup.paths.values():
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError as exc:
                if exc.errno != errno.EBUSY or time.monotonic() >= deadline:
                    raise OSError(exc.errno, f"cannot remove the cgroup {path}: {exc.strerror}") from None
                time.sleep(0.01)


def freeze(cgroup: Cgroup, frozen: bool, *, timeout: float = 5.0) -> None:
    """Freeze (pause) or thaw the cgroup's processes: the v1 freezer, or cgroup.freeze on v2.

    :raises OSError: no freezer, or the state did not settle within ``timeout``.
    """
    if "freezer" in cgroup.paths:
        path = os.path.join(cgroup.paths["freezer"], "freezer.state")
        wanted = "FROZEN" if frozen else "THAWED"
        deadline = time.monotonic() + timeout
        while True:
            _write(path, wanted)
            if _read(path).strip() == wanted:
                return
            if time.monotonic() >= deadline:
                raise OSError(errno.EBUSY, f"the cgroup did not become {wanted.lower()} in {timeout:g}s")
            time.sleep(0.005)
    elif cgroup.mode == "v2" and "unified" in cgroup.paths:
        _write(os.path.join(cgroup.paths["unified"], "cgroup.freeze"), "1" if frozen else "0")
    else:
        raise OSError(errno.ENOTSUP, "no cgroup freezer on this host")


def is_frozen(cgroup: Cgroup) -> bool:
    try:
        if "freezer" in cgroup.paths:
            return _read(os.path.join(cgroup.paths["freezer"], "freezer.state")).strip() != "THAWED"
        if cgroup.mode == "v2" and "unified" in cgroup.paths:
            return _read(os.path.join(cgroup.paths["unified"], "cgroup.freeze")).strip() == "1"
    except OSError:
        return False
    return False
