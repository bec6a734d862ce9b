"""``composer system check``: what the native backend left on the host that no project accounts
for, and (``fix``) its removal.

A scope is one run root, its store and its cgroup parent (COMPOSER_RUN_ROOT, COMPOSER_ROOT,
COMPOSER_CGROUP_PARENT): another composer on the same host, with other roots, is not looked at
and never touched. What counts as composer's, kind by kind (the names the modules below make):

- mount, netns: a mount point (an nsfs one: netns) inside the run root or the store (every
  container's mounts live in its own mount namespace: nothing of ours is mounted on the host);
- bridge ``cmp-*``, veth ``cv*`` (network/manager.py): links whose ifalias names this run root
  (network/owners.py), that no network state file (``networks/<bridge>.json``) lists; a link
  of another run root whose folder no longer exists is an orphan too; a link without the label
  (an older composer's) counts only for the default run root, and a bridge only when nothing is
  attached to it;
- iptables-rule, iptables-chain (network/firewall.py, nat, filter and raw; with iptables-nft
  these are the nft tables): a rule tagged ``composer:net:<bridge>`` or
  ``composer:port:<bridge>:<container>`` whose bridge is residue, or whose container has no
  endpoint on it any more; a rule whose bridge is gone (no run root can be told: the default
  run root only); a COMPOSER-* chain left while the table has no rule of composer's;
- cgroup (runtime/cgroups.py, every v1 hierarchy and the unified one): ``<parent>/<id>`` that is
  empty and no running container's, or holds processes and is no container's of this run root
  while the store keeps that container's folder (a parent may be shared by several run roots);
  an empty ``spare-*``;
- supervisor, monitor, dns, proxy (runtime/supervisor.py, runtime/init.py, network/dns.py,
  network/proxy.py): processes whose command line names this run root (the monitor: whose
  monitor.log is under it) that no state file records, or whose project has nothing left;
- run-folder, lock: a container folder without config.json (a create that was killed), a
  project folder with no container, network or DNS in it and its lock free;
- container-data: ``<store>/containers/<id>`` of no container (its ``container.json`` names this
  run root, or there is none);
- blob, layer: store content no image and no container references.

A project is live while its lock is held: nothing of a live project is reported or removed.
Removal is idempotent: each finding is looked up again and removed only if it is still there.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import json
import os
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from composer.backends.native.network import firewall, owners
from composer.backends.native.network.manager import BRIDGE_PREFIX, DEFAULT_RUN_ROOT, VETH_PREFIX
from composer.backends.native.records import RECORD as CONTAINER_RECORD
from composer.backends.native.runtime import cgroups
from composer.backends.native.runtime.init import SPARE_PREFIX, process_start_time
from composer.backends.native.runtime.supervisor import LOCK, PID_FILE, read_json
from composer.backends.native.trees import remove_tree
from composer.contract.system import KINDS, Finding
from composer.owner import alive

MNT_DETACH = 2
FIX_ORDER = ("mount", "netns", "supervisor", "monitor", "dns", "proxy", "veth", "bridge", "iptables-rule",
             "iptables-chain", "cgroup", "run-folder", "lock", "container-data", "blob", "layer")
NOT_PROJECTS = frozenset({"networks"})  # folders of the run root that are no project


@dataclass(frozen=True)
class Scope:
    run_root: Path
    store_root: Path
    cgroup_parent: str

    @property
    def default(self) -> bool:
        return self.run_root.resolve() == Path(DEFAULT_RUN_ROOT)


@dataclass
class _Project:
    name: str
    folder: Path
    containers: dict[str, dict[str, Any]]  # name -> config.json
    live: bool  # its lock is held
    has_dns: bool


def check(scope: Scope, *, fix: bool = False) -> list[Finding]:
    """The findings, sorted by kind (``KINDS``); with ``fix`` each one removed (processes before
    the cgroups they are in, links before their rules, folders last), then looked for again:
    one still there is reported with why it stayed."""
    found = _Survey(scope).findings()
    found.sort(key=lambda f: (KINDS.index(f.kind), f.name))
    if not fix:
        return found
    errors: dict[tuple[str, str], str] = {}
    for finding in sorted(found, key=lambda f: FIX_ORDER.index(f.kind)):
        try:
            _REMOVERS[finding.kind](scope, finding)
        except Exception as exc:  # netlink's, iptables', the kernel's: reported on the finding, the rest goes on
            errors[finding.kind, finding.name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    still = {(f.kind, f.name) for f in _Survey(scope).findings()}
    return [replace(f, removed=False, error=errors.get((f.kind, f.name)) or "still there after removal")
            if (f.kind, f.name) in still else replace(f, removed=True) for f in found]


# --- what exists -------------------------------------------------------------------------------


def _lock_held(path: Path) -> bool:
    """Whether someone holds the flock on ``path`` (a missing file: no)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _read(path: Path) -> dict[str, Any] | None:
    return read_json(path)


def _processes() -> Iterator[tuple[int, list[str]]]:
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/cmdline", "rb") as file:
                argv = file.read().split(b"\0")
        except OSError:
            continue
        yield int(entry.name), [arg.decode(errors="replace") for arg in argv if arg]


def _after(argv: list[str], marker: str) -> list[str] | None:
    """The arguments after the first one that ends with ``marker``; None without it."""
    for i, arg in enumerate(argv):
        if arg.endswith(marker):
            return argv[i + 1:]
    return None


def _open_files(pid: int) -> list[str]:
    try:
        return [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return []


class _Survey:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.run_root = scope.run_root
        self.projects = self._projects()
        self.networks = self._networks()
        self.ids = {str(c.get("id")): (p, name, c) for p in self.projects.values() for name, c in p.containers.items()}

    def _projects(self) -> dict[str, _Project]:
        found: dict[str, _Project] = {}
        if not self.run_root.is_dir():
            return found
        for folder in sorted(self.run_root.iterdir()):
            if not folder.is_dir() or folder.is_symlink() or folder.name in NOT_PROJECTS:
                continue
            containers = {}
            for child in folder.iterdir():
                config = _read(child / "config.json") if child.is_dir() else None
                if config is not None:
                    containers[child.name] = config
            found[folder.name] = _Project(folder.name, folder, containers, _lock_held(folder / LOCK),
                                          (folder / "dns").is_dir())
        return found

    def _networks(self) -> list[dict[str, Any]]:
        folder = self.run_root / "networks"
        if not folder.is_dir():
            return []
        return [n for p in sorted(folder.glob(f"{BRIDGE_PREFIX}*.json")) if (n := _read(p)) is not None]

    def _live(self, project: str | None) -> bool:
        return project is not None and project in self.projects and self.projects[project].live

    def findings(self) -> list[Finding]:
        found = [*self._mounts(), *self._links(), *self._cgroups(), *self._processes(), *self._run_folders(),
                 *self._container_data(), *self._store()]
        return [f for f in found if not self._live(f.project)]

    # --- mounts ------------------------------------------------------------------------------------

    def _mounts(self) -> list[Finding]:
        roots = [str(self.run_root.resolve()), str(self.scope.store_root.resolve())]
        found = []
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as file:
            for line in file:
                fields = line.split()
                mountpoint = fields[4].replace("\\040", " ")
                if not any(mountpoint.startswith(root + "/") for root in roots):
                    continue
                fstype = fields[fields.index("-") + 1]
                kind = "netns" if fstype == "nsfs" else "mount"
                found.append(Finding(kind, mountpoint, f"a {fstype} mount inside composer's folders "
                                                       "(containers mount only in their own namespace)",
                                     self._project_of(Path(mountpoint))))
        return found

    def _project_of(self, path: Path) -> str | None:
        with contextlib.suppress(ValueError):
            parts = path.relative_to(self.run_root.resolve()).parts
            if parts and parts[0] not in NOT_PROJECTS:
                return parts[0]
        return None

    # --- links and rules ---------------------------------------------------------------------------

    def _link_is_ours(self, link: str) -> tuple[bool, str]:
        """Whether ``link`` is this scope's to judge, and how we know."""
        recorded = owners.owner(link)
        if recorded is None:
            return self.scope.default, "no owner label (an older composer's)"
        if recorded == str(self.run_root.resolve()):
            return True, "labelled with this run root"
        if not Path(recorded).exists():
            return True, f"labelled with the run root {recorded}, which no longer exists"
        return False, ""

    def _links(self) -> list[Finding]:
        bridges = {n.get("bridge") for n in self.networks}
        veths = {str(e.get("veth")) for n in self.networks for e in n.get("endpoints", {}).values()}
        veths |= {v for n in self.networks for v in n.get("releasing", {})}
        found: list[Finding] = []
        try:
            names = sorted(os.listdir(owners.SYSFS))
        except OSError:
            names = []
        gone_bridges: set[str] = set()
        for link in names:
            if link.startswith(BRIDGE_PREFIX) and os.path.isdir(f"{owners.SYSFS}/{link}/bridge"):
                if link in bridges:
                    continue
                ours, why = self._link_is_ours(link)
                if not ours or (owners.owner(link) is None and os.listdir(f"{owners.SYSFS}/{link}/brif")):
                    continue
                gone_bridges.add(link)
                found.append(Finding("bridge", link, f"no network state lists it ({why})"))
            elif link.startswith(VETH_PREFIX) and len(link) == len(VETH_PREFIX) + 10 and link not in veths:
                ours, why = self._link_is_ours(link)
                if ours and owners.owner(link) is not None:
                    found.append(Finding("veth", link, f"no endpoint lists it ({why})"))
        found += self._rules(set(names), bridges, gone_bridges)
        return found

    def _rules(self, links: set[str], bridges: set[Any], gone: set[str]) -> list[Finding]:
        endpoints = {n.get("bridge"): set(n.get("endpoints", {})) for n in self.networks}
        found = []
        for table, chains in firewall.CHAINS.items():
            try:
                saved = firewall._save(table)
            except firewall.FirewallError:
                continue
            counts = dict.fromkeys(chains, 0)
            existing = {line[1:].split()[0] for line in saved if line.startswith(":")}
            for line in saved:
                if not line.startswith("-A COMPOSER-"):
                    continue
                counts[line.split()[1]] = counts.get(line.split()[1], 0) + 1
                tag = _tag(line)
                if tag is None:
                    continue
                parts = tag.split(":", 3)
                bridge = parts[2] if len(parts) > 2 else ""
                reason = None
                if bridge not in links:
                    if not self.scope.default:  # nothing tells which run root made a bridge that is gone
                        continue
                    reason = f"its bridge {bridge} does not exist"
                elif bridge in gone:
                    reason = f"its bridge {bridge} is residue"
                elif parts[1] == "port" and bridge in bridges and len(parts) > 3 and parts[3] not in endpoints[bridge]:
                    reason = f"container {parts[3]} has no endpoint on {bridge} any more"
                if reason:
                    found.append(Finding("iptables-rule", f"{table} {line}", reason))
            for chain in chains:  # firewall.py drops its chains only once the table has no rule of composer's
                if self.scope.default and chain in existing and not any(counts.values()):  # shared: the host's
                    found.append(Finding("iptables-chain", f"{table} {chain}", "a composer chain with no rule left"))
        return found

    # --- cgroups -----------------------------------------------------------------------------------

    def _cgroups(self) -> list[Finding]:
        layout = cgroups.detect()
        hierarchies = sorted(set(layout.v1.values()) | ({layout.unified} if layout.unified else set()))
        found = []
        for mountpoint in hierarchies:
            parent = Path(mountpoint) / self.scope.cgroup_parent
            if not parent.is_dir():
                continue
            for child in sorted(parent.iterdir()):
                if not child.is_dir():
                    continue
                procs = _cgroup_pids(child)
                if child.name.startswith(SPARE_PREFIX):
                    if not procs:
                        found.append(Finding("cgroup", str(child), "an empty spare cgroup"))
                    continue
                owner = self.ids.get(child.name)
                if owner is None:
                    # a parent may be shared by several run roots (COMPOSER_CGROUP_PARENT): a cgroup
                    # with processes is judged only when this store holds that container's files
                    if not procs:
                        found.append(Finding("cgroup", str(child), "an empty cgroup of no container of this run root"))
                    elif (self.scope.store_root / "containers" / child.name).is_dir():
                        found.append(Finding("cgroup", str(child), f"no container of this run root has this id "
                                             f"({len(procs)} processes in it)"))
                elif not procs and not _running(owner[0].folder / owner[1]):
                    found.append(Finding("cgroup", str(child), f"container {owner[1]} is not running",
                                         owner[0].name))
        return found

    # --- processes ---------------------------------------------------------------------------------

    def _processes(self) -> list[Finding]:
        root = str(self.run_root.resolve())
        raw_root = str(self.run_root)
        found = []
        proxies = {int((e.get("proxy") or {}).get("pid") or 0) for n in self.networks
                   for e in n.get("endpoints", {}).values()}
        for pid, argv in _processes():
            if pid == os.getpid():
                continue
            text = " ".join(argv)
            supervisor = _after(argv, "bootstrap.py")
            if supervisor and supervisor[0] == "supervisor" and len(supervisor) > 1:
                try:
                    args = json.loads(supervisor[1])
                except ValueError:
                    continue
                if args.get("run_root") not in (root, raw_root):
                    continue
                project = str(args.get("project"))
                finding = self._supervisor(pid, project, text)
                if finding:
                    found.append(finding)
            elif supervisor is not None:  # a monitor: forked by the forkserver or a helper of its own
                folder = self._monitor_folder(pid)
                if folder is not None and not (folder / "config.json").is_file():
                    found.append(Finding("monitor", f"{pid} {text}", f"its container folder {folder} has no "
                                         "config.json", self._project_of(folder)))
            elif (dns := _after(argv, "composer.backends.native.network.dns")) and len(dns) >= 2:
                if dns[0] not in (root, raw_root):
                    continue
                project = dns[1]
                pidfile = _read(self.run_root / project / "dns" / "pid.json") or {}
                has_networks = any(n.get("project") == project for n in self.networks)
                if pidfile.get("pid") != pid or not has_networks:
                    why = "the project has no network" if not has_networks else "its project does not record it"
                    found.append(Finding("dns", f"{pid} {text}", why, project))
            elif (proxy := _after(argv, "proxy.py")) and len(proxy) >= 2:
                if proxy[0] not in (root, raw_root) or pid in proxies:
                    continue
                found.append(Finding("proxy", f"{pid} {text}", f"no endpoint of container {proxy[1]} records it"))
        return found

    def _supervisor(self, pid: int, project: str, text: str) -> Finding | None:
        recorded = _read(self.run_root / project / PID_FILE) or {}
        if recorded.get("pid") != pid:
            return Finding("supervisor", f"{pid} {text}", "its project's supervisor.pid does not record it", project)
        info = self.projects.get(project)
        if info is None or not info.containers:
            return Finding("supervisor", f"{pid} {text}", "its project has no container left", project)
        return None

    def _monitor_folder(self, pid: int) -> Path | None:
        root = str(self.run_root.resolve()) + "/"
        for target in _open_files(pid):
            target = target.removesuffix(" (deleted)")  # its folder was removed under it
            if target.startswith(root) and target.endswith("/monitor.log"):
                return Path(target).parent
        return None

    # --- files -------------------------------------------------------------------------------------

    def _run_folders(self) -> list[Finding]:
        found = []
        network_projects = {n.get("project") for n in self.networks}
        for project in self.projects.values():
            for child in sorted(project.folder.iterdir()):
                if child.is_dir() and child.name != "dns" and child.name not in project.containers:
                    found.append(Finding("run-folder", str(child), "a container folder without config.json",
                                         project.name))
            supervisor = _read(project.folder / PID_FILE) or {}
            supervised = bool(supervisor.get("pid")) and alive(int(supervisor["pid"]), supervisor.get("start"))
            if not project.containers and project.name not in network_projects and not supervised:
                dns = _read(project.folder / "dns" / "pid.json") or {}
                if dns.get("pid") and process_start_time(int(dns["pid"])) == dns.get("start"):
                    continue
                kind = "lock" if [p.name for p in project.folder.iterdir()] == [LOCK] else "run-folder"
                found.append(Finding(kind, str(project.folder / LOCK if kind == "lock" else project.folder),
                                     "a project folder with no container, network or process", project.name))
        return found

    def _container_data(self) -> list[Finding]:
        folder = self.scope.store_root / "containers"
        if not folder.is_dir():
            return []
        found = []
        root = str(self.run_root.resolve())
        for data in sorted(folder.iterdir()):
            if data.name in self.ids:
                continue
            record = _read(data / CONTAINER_RECORD)
            if record is not None and record.get("run_dir") and not str(record["run_dir"]).startswith(root + "/"):
                run_dir = Path(str(record["run_dir"]))
                if run_dir.parent.parent.exists():
                    continue  # another run root's, which still exists
            project = str(record["project"]) if record and record.get("project") else None
            found.append(Finding("container-data", str(data), "no container of this run root has this id", project))
        return found

    def _store(self) -> list[Finding]:
        from composer.backends.native.image.store import ImageStore

        root = self.scope.store_root
        if not (root / "blobs" / "sha256").is_dir():
            return []
        store = ImageStore(root)
        keep_blobs, keep_layers = referenced(store, [c for _, _, c in self.ids.values()])
        found = []
        for path in sorted((root / "blobs" / "sha256").iterdir()):
            if path.name not in keep_blobs:
                found.append(Finding("blob", str(path), "no image or container references it"))
        if (root / "layers").is_dir():
            for path in sorted((root / "layers").iterdir()):
                if path.name not in keep_layers:
                    found.append(Finding("layer", str(path), "no image or container references it"))
        return found


def referenced(store: Any, containers: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """The blob and layer names (hex) the store's images, the builder's cache records and
    ``containers`` (config.json contents; the store's container records too) reach."""
    from composer.backends.native.image import oci
    from composer.errors import ImageStoreError

    blobs: set[str] = set()
    layers: set[str] = set()
    for record in store.images():
        blobs.update(oci.digest_hex(d) for d in (record.index_digest, record.manifest, record.config) if d)
        with contextlib.suppress(ImageStoreError, ValueError, KeyError, TypeError):
            blobs.update(oci.digest_hex(str(layer["digest"])) for layer in store.manifest(record).get("layers") or [])
        with contextlib.suppress(ImageStoreError, ValueError, KeyError, TypeError):
            layers.update(oci.digest_hex(chain) for chain in store.chain_ids(record))
    cached_blobs, cached_chains = store.cache_references()  # the builder's cache: kept until builder prune
    blobs.update(oci.digest_hex(d) for d in cached_blobs if d.startswith("sha256:"))
    layers.update(oci.digest_hex(chain) for chain in cached_chains if chain.startswith("sha256:"))
    records = list(containers)
    folder = store.root / "containers"
    if folder.is_dir():
        records += [r for d in folder.iterdir() if (r := _read(d / CONTAINER_RECORD)) is not None]
    for config in records:
        if config.get("image_id"):
            blobs.add(oci.digest_hex(str(config["image_id"])))
        for lower in (config.get("rootfs") or {}).get("lower") or []:
            with contextlib.suppress(OSError):
                target = os.readlink(store.root / str(lower))  # l/<short> -> ../layers/<chain>/diff
                layers.add(Path(target).parent.name)
    return blobs, layers


def remove_unreferenced(store: Any, containers: list[dict[str, Any]]) -> tuple[list[str], int]:
    """Remove the blobs and layers no image and no container reaches (``referenced``), holding
    the store exclusively as ``gc`` does (which knows only the images); the blobs removed (hex)
    and the bytes freed."""
    from composer.backends.native.image.store import flock

    removed: list[str] = []
    freed = 0
    with flock(store.root / "locks" / "store.lock", exclusive=True):
        keep_blobs, keep_layers = referenced(store, containers)
        for path in sorted((store.root / "blobs" / "sha256").iterdir()):
            if path.name not in keep_blobs:
                freed += path.lstat().st_size
                path.unlink()
                removed.append(path.name)
        for path in sorted((store.root / "layers").iterdir()):
            if path.name not in keep_layers:
                freed += sum(os.lstat(os.path.join(d, f)).st_size for d, _, files in os.walk(path) for f in files)
                store._trash(path)
        for link in (store.root / "l").iterdir():
            if not link.exists():
                link.unlink()
    return removed, freed


def _tag(line: str) -> str | None:
    fields = line.split()
    if "--comment" not in fields:
        return None
    return fields[fields.index("--comment") + 1].strip('"')


def _cgroup_pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _running(run_dir: Path) -> bool:
    state = _read(run_dir / "state.json") or {}
    exited = (run_dir / "exit.json").exists()
    pid = state.get("monitor")
    return bool(pid) and not exited and process_start_time(int(pid or 0)) == state.get("monitor_start")


# --- removal -----------------------------------------------------------------------------------


def _unmount(scope: Scope, finding: Finding) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.umount2(finding.name.encode(), MNT_DETACH) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"umount {finding.name}: {os.strerror(errno)}")


def _delete_link(scope: Scope, finding: Finding) -> None:
    from composer.backends.native.network import netlink

    with netlink.host() as links:
        links.delete(finding.name)
    if finding.kind == "bridge":
        with firewall.locked():
            firewall._remove_tagged(f"composer:net:{finding.name}")
            firewall._remove_tagged(f"composer:port:{finding.name}")


def _delete_rule(scope: Scope, finding: Finding) -> None:
    table, _, line = finding.name.partition(" ")
    with firewall.locked():
        if line in firewall._save(table):
            firewall._restore(table, ["-D" + line[2:]])
        firewall._drop_empty_chains()


def _drop_chains(scope: Scope, finding: Finding) -> None:
    with firewall.locked():
        firewall._drop_empty_chains()


def _remove_cgroup(scope: Scope, finding: Finding) -> None:
    path = Path(finding.name)
    for _ in range(50):
        pids = _cgroup_pids(path)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)
    cgroups.remove(cgroups.Cgroup("", {"x": str(path)}, "v1"))


def _kill(scope: Scope, finding: Finding) -> None:
    pid = int(finding.name.split()[0])
    start = process_start_time(pid)
    fd = os.pidfd_open(pid)
    try:
        if process_start_time(pid) == start:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            import select

            select.select([fd], [], [], 5)
    finally:
        os.close(fd)
    if finding.kind == "supervisor" and finding.project:
        info = _Survey(scope).projects.get(finding.project)
        if info is not None and not info.containers:
            _remove_folder(scope, replace(finding, name=str(info.folder)))


def _remove_folder(scope: Scope, finding: Finding) -> None:
    path = Path(finding.name)
    if path.name == LOCK:
        path = path.parent
    remove_tree(path)


def _remove_layer(scope: Scope, finding: Finding) -> None:
    from composer.backends.native.image.store import ImageStore, flock

    store = ImageStore(scope.store_root)
    with flock(scope.store_root / "locks" / "store.lock", exclusive=True):
        path = Path(finding.name)
        if finding.kind == "blob":
            path.unlink(missing_ok=True)
            return
        store._trash(path)
        for link in (scope.store_root / "l").iterdir():
            if not link.exists():
                link.unlink()


_REMOVERS: dict[str, Any] = {
    "mount": _unmount, "netns": _unmount, "bridge": _delete_link, "veth": _delete_link,
    "iptables-rule": _delete_rule, "iptables-chain": _drop_chains, "cgroup": _remove_cgroup,
    "supervisor": _kill, "monitor": _kill, "dns": _kill, "proxy": _kill,
    "run-folder": _remove_folder, "lock": _remove_folder, "container-data": _remove_folder,
    "blob": _remove_layer, "layer": _remove_layer,
}
