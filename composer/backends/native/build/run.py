"""RUN: the command in a native container from the stage's layers, with exactly the isolation of
a service container (the runtime's seccomp, capabilities, devices, masked paths: the container
is created by ``Runtime.create`` from a ServiceConfig, as a service's is), and the container's
overlay upper folder turned into the new layer (``diff``).

The container gets its own project folder (``build-<random>``) under the run root, so no
project's observation ever sees it, and is removed whatever happens. The stage's image is a
config blob and its layers only: no index entry is written for it.

Network: ``--network=none`` runs in a network namespace of its own with only loopback. The
default puts the container, in a network namespace of its own, on the build's bridge network
(``BuildNetwork``: a project network made by the backend's network manager at the build's first
such RUN, NAT out, the host's loopback services out of reach as from any bridged container,
traffic between its containers dropped), removed with the build. BuildKit in dockerd likewise
gives each RUN a network sandbox of its own on one bridge that its RUNs share (docker0, where
they could reach each other). ``--network=host`` (the host's
namespace: the build reaches the host's loopback services) only with the ``network.host``
entitlement, ``--security=insecure`` (a privileged container) only when privileged builds are
allowed; both refused in one line otherwise, as BuildKit refuses them without ``--allow``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import stat
import tarfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from composer.backends.native.build.layer import LayerWriter
from composer.backends.native.build.rootfs import RootFS
from composer.backends.native.image import oci
from composer.backends.native.image.layers import OPAQUE, OPAQUE_XATTR, WHITEOUT_PREFIX
from composer.backends.native.image.store import ImageRecord, ImageStore
from composer.dockerfile.instructions import RunCommand
from composer.dockerfile.parser import heredoc_word
from composer.spec.models.service import ServiceConfig

if TYPE_CHECKING:
    from composer.backends.native.runtime.api import Runtime

OPAQUE_MARKER = OPAQUE  # .wh..wh..opq
OUTPUT_LINES = 10  # the last lines of a failing RUN's output in its error, as v2 shows
# The files the runtime bind-mounts over when the image lacks them: not the command's changes
# (BuildKit's executor removes its stubs for /etc/hosts and /etc/resolv.conf after the RUN too)
_STUBS = (("etc", "hosts"), ("etc", "hostname"), ("etc", "resolv.conf"))
# The folders the runtime makes as mount points when the image lacks them: kept in the layer, as
# BuildKit's (runc's) are, without what is mounted on them
_MOUNT_POINTS = (("proc",), ("sys",), ("dev",))


class RunRefused(Exception):
    """A RUN this builder does not do (one line naming the flag)."""


class NotEntitled(RunRefused):
    """A RUN the build is not allowed to do (BuildKit's entitlements): one line."""


@dataclass(frozen=True, slots=True)
class RunResult:
    exit_code: int
    output: str


SCRIPTS = "/dev/pipes"  # where a RUN's heredoc script with a #! line is mounted, as BuildKit does


def heredoc_script(command: RunCommand) -> tuple[str, str] | None:
    """The script file of a RUN that is one heredoc whose body starts with ``#!`` (its name and
    content): BuildKit mounts it read-only, mode 0755, at /dev/pipes/<name> and runs that path
    under the shell, so the kernel runs the #! interpreter. None for any other RUN."""
    form = command.command
    if len(form.files) != 1 or not form.prepend_shell or len(form.args) != 1:
        return None
    opener = heredoc_word(form.args[0].strip())
    heredoc = form.files[0]
    if opener is None or opener[0] != heredoc.name:
        return None
    script = heredoc.content
    if heredoc.chomp:
        script = "".join(piece.lstrip("\t") for piece in script.splitlines(keepends=True))
    return (heredoc.name, script) if script.startswith("#!") else None


def run_args(command: RunCommand, shell: Sequence[str]) -> list[str]:
    """The process of a RUN: the exec form as given; the shell form under the stage's SHELL; a
    single heredoc as the whole command runs as the script it holds (under the shell, or, with a
    ``#!`` line, as the file heredoc_script mounts), other heredocs go to the shell with the command
    line (the shell reads them itself).

    :raises RunRefused: heredocs with the exec form, or a #! script whose name is not a file name.
    """
    form = command.command
    if not form.files:
        return [*shell, *form.args] if form.prepend_shell else list(form.args)
    if not form.prepend_shell:
        raise RunRefused("RUN in the exec form with heredocs")
    line = form.args[0] if form.args else ""
    script_file = heredoc_script(command)
    if script_file is not None:
        name = script_file[0]
        if "/" in name or name in (".", ".."):
            raise RunRefused(f"RUN of a heredoc script named {name!r} (not a file name)")
        return [*shell, f"{SCRIPTS}/{name}"]
    opener = heredoc_word(line.strip())
    if len(form.files) == 1 and opener is not None and opener[0] == form.files[0].name:
        heredoc = form.files[0]
        script = heredoc.content
        if heredoc.chomp:
            script = "".join(piece.lstrip("\t") for piece in script.splitlines(keepends=True))
        return [*shell, script]
    script = line + "\n" + "".join(f"{heredoc.content}{heredoc.name}\n" for heredoc in form.files)
    return [*shell, script]


def check_flags(command: RunCommand, *, entitlements: Sequence[str] = (), privileged: bool = False) -> str:
    """The RUN's network mode (default, none, host).

    :raises RunRefused: a network mode or security this builder does not do, or one the build
        is not entitled to: ``--network=host`` needs ``build.entitlements: [network.host]`` and
        ``--security=insecure`` needs ``build.privileged`` (or the ``security.insecure``
        entitlement), as BuildKit refuses both without ``--allow``.
    """
    network = command.network or "default"
    if network not in ("default", "none", "host"):
        raise RunRefused(f"RUN --network={command.network}")
    if network == "host" and "network.host" not in entitlements:
        raise NotEntitled("network.host is not allowed (add it to build.entitlements)")
    if command.security not in ("", "sandbox", "insecure"):
        raise RunRefused(f"RUN --security={command.security}")
    if command.security == "insecure" and not (privileged or "security.insecure" in entitlements):
        raise NotEntitled("security.insecure is not allowed (set build.privileged)")
    return network


@contextlib.contextmanager
def run_container(store: ImageStore, runtime: Runtime, config: Mapping[str, Any], diff_ids: Sequence[str],
                  args: Sequence[str], run_env: Mapping[str, str], *, network: str,
                  volumes: Sequence[Mapping[str, Any]] = (), environment: Mapping[str, str] | None = None,
                  privileged: bool = False, service_keys: Mapping[str, Any] | None = None,
                  build_network: BuildNetwork | None = None) -> Iterator[tuple[RunResult, Path]]:
    """Run ``args`` in a container of the stage (its image ``config``, layers ``diff_ids``), on
    the build's bridge network (``default``: ``build_network``, else one of the container's own,
    removed with it), the host's (``host``) or none; ``volumes`` are its mounts (ServiceConfig
    volumes: RUN --mount), ``environment`` more variables (secrets as env), ``service_keys`` more
    ServiceConfig keys (``build.extra_hosts``, ``shm_size``, ``ulimits``: the runtime applies them
    as it does a service's); yields the result and the container's upper folder, then removes the
    container."""
    from composer.backends.native.network import settings as networking
    from composer.contract.backend import ContainerSpec, NetworkAttachment

    config_blob = json.dumps({**config, "rootfs": {"type": "layers", "diff_ids": list(diff_ids)}},
                             separators=(",", ":")).encode()
    digest = oci.sha256_digest(config_blob)
    temporary = not store.has_blob(digest)
    store.write_blob(config_blob)
    image = ImageRecord("composer.build/stage:step", digest, digest, source="build")
    inner = config.get("config") or {}
    image_env = dict(entry.partition("=")[::2] for entry in inner.get("Env") or [])
    variables = {key: value for key, value in run_env.items() if image_env.get(key) != value}
    variables.update(environment or {})
    # a name of its own (no other RUN's DNS name on a shared network: the manager leaves out a
    # service name equal to its container's)
    name = f"run-{secrets.token_hex(6)}"
    service = ServiceConfig.model_validate({
        "name": name, "entrypoint": list(args), "command": [],
        "network_mode": None if network == "default" else network, "privileged": privileged,
        "user": inner.get("User") or "0", "working_dir": inner.get("WorkingDir") or "/",
        "environment": variables, "volumes": [dict(volume) for volume in volumes], **(service_keys or {})})
    run_root = runtime.run_root
    with contextlib.ExitStack() as cleanup:
        if temporary:  # the step's config, for the runtime only: removed after the container
            cleanup.callback(_unlink, store.blob_path(digest))
        extra: dict[str, Any] = {"build_step": True}  # the runtime's init: the user's groups as BuildKit's
        if network != "default":
            project = BuildNetwork.new_project()
        else:
            if build_network is None:  # a network of this RUN's own
                build_network = BuildNetwork()
                cleanup.callback(build_network.close)
            project, network_name = build_network.ensure(run_root)
            spec = ContainerSpec(project, service, name, 1, image.reference, {},
                                 networks=(NetworkAttachment(network_name),))
            extra["network"] = networking.container_settings(spec, run_root)
        container_id = runtime.create(project, name, service, image, extra=extra)
        created = runtime.config(project, name)
        cleanup.callback(networking.released, created)
        cleanup.callback(runtime.remove, project, name, force=True)
        runtime.start(project, name, **networking.start_options(created))
        state = runtime.wait(project, name)
        result = RunResult(state.exit_code if state.exit_code is not None else -1, runtime.output(project, name))
        yield result, runtime.data_dir(container_id) / "upper"


class BuildNetwork:
    """The bridge network a build's RUN steps share (``--network=default``), as BuildKit's share
    the engine's bridge: made by the first that needs it (``ensure``), removed by ``close`` (the
    build's end), its DNS daemon with it. What is made once per build instead of per RUN: the
    bridge, its iptables rules and the project's DNS daemon. Each RUN still has a network
    namespace of its own (its veth on the bridge, gone with its processes), so no RUN sees what
    another left in its namespace, as each BuildKit RUN has a sandbox of its own. Unlike
    docker0, where BuildKit's RUNs can reach each other, traffic between the bridge's containers
    is dropped (``enable_icc: false``): RUNs of stages built in parallel cannot talk to each
    other, as when each RUN had a bridge of its own. Thread-safe (stages build in parallel)."""

    def __init__(self) -> None:
        self.project = self.new_project()
        self.name = f"{self.project}_default"
        self.lock = threading.Lock()
        self.run_root: Path | None = None  # set once the network exists

    @staticmethod
    def new_project() -> str:
        """A project of its own under the run root (no project's observation ever sees it)."""
        return f"build-{secrets.token_hex(6)}"

    def ensure(self, run_root: Path) -> tuple[str, str]:
        """The project and name of the network, made under ``run_root`` when missing."""
        from composer.backends.native.network import settings as networking
        from composer.backends.native.network.bridge_options import ENABLE_ICC
        from composer.spec.models import NetworkConfig

        with self.lock:
            if self.run_root is None:
                networking.create_network(run_root, self.project, "default", self.name,
                                          NetworkConfig(name=self.name, driver_opts={ENABLE_ICC: "false"}))
                self.run_root = run_root
            elif self.run_root != run_root:
                raise ValueError(f"build network {self.name} is under {self.run_root}, not {run_root}")
        return self.project, self.name

    def made(self) -> bool:
        """Whether a RUN made the network (and ``close`` has something to remove)."""
        with self.lock:
            return self.run_root is not None

    def close(self) -> None:
        """Remove the network (its bridge, rules, DNS daemon and the project's folder), if made."""
        from composer.backends.native.network import settings as networking

        with self.lock:
            if self.run_root is not None:
                networking.remove_network(self.run_root, self.name)
                self.run_root = None


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _xattrs(path: Path) -> dict[str, str]:
    found: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for key in os.listxattr(path, follow_symlinks=False):
            if key.startswith("trusted.overlay."):
                continue
            with contextlib.suppress(OSError):
                value = os.getxattr(path, key, follow_symlinks=False)
                found["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return found


def diff(upper: Path, lower: RootFS, writer: LayerWriter,  # noqa: C901 - one rule per kind of entry
         stubs: set[tuple[str, ...]] | None = None) -> None:
    """The upper folder of an overlay as an OCI layer: whiteouts (0/0 character devices) become
    ``.wh.<name>``, opaque folders get ``.wh..wh..opq``; owners, modes, times, xattrs and hard
    links are kept. Left out: the runtime's stub files when the stage had no such path, what is
    mounted on /proc, /sys and /dev, and folders only copied up (same type, mode and owner below,
    nothing changed inside). As BuildKit's (dockerd 20.10's, the build-conformance suite shows it),
    the folders /proc, /sys, /dev made as mount points and /etc (its stubs came and went) are in
    the layer, so a RUN never makes an empty layer on an image without /etc/hosts."""
    links: dict[tuple[int, int], str] = {}
    mount_points = {parts for parts in (stubs or set()) if lower.lookup(parts) is None}

    def visit(folder: Path, parts: tuple[str, ...]) -> list[tuple[tarfile.TarInfo, Path | None]]:
        found: list[tuple[tarfile.TarInfo, Path | None]] = []
        for name in sorted(os.listdir(folder)):
            path = folder / name
            here = (*parts, name)
            info = os.lstat(path)
            # a mount point the runtime made (its stubs, RUN --mount's targets), as BuildKit drops them
            if (here in _STUBS and lower.lookup(here) is None) or (
                    here in mount_points and not _holds_more(path, here, mount_points)):
                continue
            member = "/".join(here)
            if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
                found.append((_entry("/".join((*parts, WHITEOUT_PREFIX + name)), tarfile.REGTYPE, info, 0o644), None))
                continue
            kind = _kind(info)
            if kind is None:
                continue
            entry = _entry(member + ("/" if kind == tarfile.DIRTYPE else ""), kind, info, stat.S_IMODE(info.st_mode))
            entry.pax_headers = _xattrs(path)
            if kind == tarfile.DIRTYPE:
                opaque = False
                with contextlib.suppress(OSError):
                    opaque = os.getxattr(path, OPAQUE_XATTR, follow_symlinks=False) == b"y"
                if here in _MOUNT_POINTS and lower.lookup(here) is None:
                    found.append((entry, None))
                    continue
                children = visit(path, here)
                # /etc stays even unchanged: the stubs made it change, as BuildKit's RUN layers list it
                if not children and not opaque and here != ("etc",) and _unchanged_folder(here, info, lower):
                    continue
                found.append((entry, None))
                if opaque:
                    found.append((_entry(member + "/" + OPAQUE_MARKER, tarfile.REGTYPE, info, 0o644), None))
                found += children
                continue
            if kind == tarfile.REGTYPE and info.st_nlink > 1:
                key = (info.st_dev, info.st_ino)
                if key in links:
                    entry.type, entry.linkname, entry.size = tarfile.LNKTYPE, links[key], 0
                    found.append((entry, None))
                    continue
                links[key] = member
            if kind == tarfile.SYMTYPE:
                entry.linkname = os.readlink(path)
            elif kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
                entry.devmajor, entry.devminor = os.major(info.st_rdev), os.minor(info.st_rdev)
            elif kind == tarfile.REGTYPE:
                entry.size = info.st_size
            found.append((entry, path if kind == tarfile.REGTYPE else None))
        return found

    for entry, host in visit(upper, ()):
        writer.add(entry, host)


def _holds_more(path: Path, parts: tuple[str, ...], mount_points: set[tuple[str, ...]]) -> bool:
    """Whether a mount point folder the runtime made holds anything but other mount points."""
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        return False
    return any((*parts, name) not in mount_points or _holds_more(path / name, (*parts, name), mount_points)
               for name in os.listdir(path))


def _unchanged_folder(parts: tuple[str, ...], info: os.stat_result, lower: RootFS) -> bool:
    """Whether an upper folder with nothing in it for the layer is no change: copied up with the
    same type, mode and owner as below."""
    below = lower.lookup(parts)
    if below is None:
        return False
    return below.is_dir and (below.info.st_mode, below.info.st_uid, below.info.st_gid) == (
        info.st_mode, info.st_uid, info.st_gid)


_KINDS = ((stat.S_ISDIR, tarfile.DIRTYPE), (stat.S_ISLNK, tarfile.SYMTYPE), (stat.S_ISREG, tarfile.REGTYPE),
          (stat.S_ISCHR, tarfile.CHRTYPE), (stat.S_ISBLK, tarfile.BLKTYPE), (stat.S_ISFIFO, tarfile.FIFOTYPE))


def _kind(info: os.stat_result) -> bytes | None:
    """The tar type of a file; None for a socket (a layer cannot hold one, as containerd's)."""
    return next((kind for test, kind in _KINDS if test(info.st_mode)), None)


def _entry(name: str, kind: bytes, info: os.stat_result, mode: int) -> tarfile.TarInfo:
    entry = tarfile.TarInfo(name)
    entry.type = kind
    entry.mode = mode
    entry.uid, entry.gid = info.st_uid, info.st_gid
    entry.mtime = int(info.st_mtime)
    return entry


def last_lines(output: str, count: int = OUTPUT_LINES) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    return " | ".join(lines[-count:])
