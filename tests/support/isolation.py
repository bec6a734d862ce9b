"""The isolation probe on both backends: build it, ship it as an image, run it, compare the verdicts.

tests/support/isolation_probe.c is compiled statically with the system's C compiler and put into a
FROM-scratch image, together with a device node for the host's own disk (as a hostile image could
ship one). dockerd imports the image and pushes it to the local registry; the native backend pulls
it from there. The probe then runs through composer itself (``composer --backend X run --rm probe``)
with the same compose file on both backends, once per setting, and prints one ``check verdict`` line
per check. Used by tests/integration/isolation/test_probe.py and by ``make isolation-report``
(tests/support/isolation_report.py). Importable without pytest.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import platform
import socket
import subprocess
import sys
import tarfile
import textwrap
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).with_name("isolation_probe.c")
IMAGE_NODE = "/dev-image/disk"

# The settings each backend runs the probe with: compose keys of the one service.
SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "cap_drop_all": {"cap_drop": ["ALL"]},
    "privileged": {"privileged": True},
    "read_only": {"read_only": True},
}
BACKENDS = ("docker", "native")


class ProbeError(RuntimeError):
    """The probe could not be built, shipped or run."""


# Checks whose verdict under Docker 20.10 is the kernel's own answer (its seccomp filter lets the call
# through) -> how the probe makes the call (isolation_probe.c): a syscall (number, first argument, the
# rest 0) or a socket (family, type).  HostFacts makes the same calls on the host, whose kernel it is.
KERNEL_SYSCALLS = {"syscall.io_uring_setup": (425, 1), "syscall.io_uring_enter": (426, -1),
                   "syscall.io_uring_register": (427, -1)}
AF_ALG = 38
KERNEL_SOCKETS = {"socket.af_alg": (AF_ALG, socket.SOCK_SEQPACKET),
                  "socket.af_vsock": (socket.AF_VSOCK, socket.SOCK_STREAM)}
# The capabilities dockerd 20.10 knows (its list ends at CAP_AUDIT_READ, 37): a privileged container of it
# gets these of the bounding set; moby 25+ and the native backend give the whole bounding set.
DOCKER_20_10_CAPABILITIES = (1 << 38) - 1


def kernel_verdict(number: int, first: int) -> str:
    """What this kernel answers to a syscall with all other arguments 0: ``ok`` or the errno's name."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), ctypes.c_long(first), *(ctypes.c_long(0),) * 5)
    if result >= 0:
        os.close(result)
        return "ok"
    return errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))


def socket_verdict(family: int, kind: int) -> str:
    try:
        socket.socket(family, kind, 0).close()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def bounding_set() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            return int(line.split()[1], 16)
    raise ProbeError("no CapBnd in /proc/self/status")


@dataclass(frozen=True)
class HostFacts:
    """What the probe's verdicts depend on besides the backend: the running kernel and its cgroup set-up.

    A container shares the host's kernel, so where Docker's filter lets a call through, Docker's verdict
    is the kernel's own answer, which the host gets too (the same call, made here)."""

    cgroup_mode: str  # v1, v2, hybrid (composer.backends.native.runtime.cgroups.detect)
    kernel: str
    kernel_answers: Mapping[str, str]  # each check of KERNEL_SYSCALLS and KERNEL_SOCKETS -> the kernel's answer
    bounding: int  # the host's capability bounding set

    @classmethod
    def of_this_host(cls) -> HostFacts:
        from composer.backends.native.runtime import cgroups

        answers = {check: kernel_verdict(*call) for check, call in KERNEL_SYSCALLS.items()}
        answers |= {check: socket_verdict(*call) for check, call in KERNEL_SOCKETS.items()}
        return cls(cgroup_mode=cgroups.detect().mode, kernel=platform.release(), kernel_answers=answers,
                   bounding=bounding_set())

    @property
    def kind(self) -> str:
        """A short name of the host kind, for the report's columns."""
        cgroups = {"v2": "pure cgroup v2", "hybrid": "hybrid cgroups", "v1": "cgroup v1"}.get(self.cgroup_mode,
                                                                                              "no cgroups")
        return f"{cgroups}, kernel {self.kernel.split('-')[0]}"


def build_probe(workdir: Path) -> Path:
    """The probe as a static executable (gcc -static)."""
    output = workdir / "probe"
    result = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-o", str(output), str(SOURCE)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ProbeError(f"compiling the isolation probe failed: {result.stderr.strip()}")
    return output


def host_disk() -> tuple[int, int]:
    """A block device of the host (major, minor) that the host's root can open: its first real disk,
    or else a loop device (some sandboxes keep even root away from their disk). What an attacker in
    a container makes a node for, or ships one in a layer for."""
    entries = sorted(Path("/sys/block").iterdir(), key=lambda e: (e.name.startswith(("loop", "ram", "zram")), e.name))
    for entry in entries:
        try:
            os.close(os.open(f"/dev/{entry.name}", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC))
        except OSError:
            continue
        major, minor = (entry / "dev").read_text().split(":")
        return int(major), int(minor)
    raise ProbeError("no block device on this host that root can open")


def image_tar(probe: Path, disk: tuple[int, int]) -> bytes:
    """A root file system: /probe, a 1777 /tmp, and a 0666 block device node for the host's disk."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for folder, mode in (("tmp", 0o1777), ("dev-image", 0o755)):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, mode
            archive.addfile(info)
        node = tarfile.TarInfo(IMAGE_NODE.lstrip("/"))
        node.type, node.mode = tarfile.BLKTYPE, 0o666
        node.devmajor, node.devminor = disk
        archive.addfile(node)
        data = probe.read_bytes()
        binary = tarfile.TarInfo("probe")
        binary.size, binary.mode = len(data), 0o755
        archive.addfile(binary, io.BytesIO(data))
    return buffer.getvalue()


def publish_image(api: Any, registry_host: str, workdir: Path) -> str:
    """Imports the probe image into dockerd as ``<registry>/composer-test/probe:<random>`` and pushes it.

    The local tag stays (the docker backend runs it); remove it with ``api.remove_image``."""
    probe = build_probe(workdir)
    repository = f"{registry_host}/composer-test/probe"
    tag = uuid.uuid4().hex[:8]
    api.import_image_from_data(image_tar(probe, host_disk()), repository=repository, tag=tag,
                               changes=['CMD ["/probe"]'])
    for message in api.push(repository, tag=tag, stream=True, decode=True):
        if message.get("error"):
            raise ProbeError(f"pushing the probe image: {message['error']}")
    return f"{repository}:{tag}"


@contextmanager
def host_loopback_service() -> Iterator[int]:
    """A TCP service on the host's 127.0.0.1 only (a stand-in for a database admin port); yields its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        listener.close()


@dataclass(frozen=True)
class Run:
    """Where and how composer runs for one backend: the environment it gets (native: its own roots)."""

    backend: str
    environ: Mapping[str, str]


def native_environment(root: Path, cgroup_parent: str) -> dict[str, str]:
    """The native backend with its store, run root and cgroups of its own, no registry mirrors."""
    environ = {**os.environ, "COMPOSER_ROOT": str(root / "store"), "COMPOSER_RUN_ROOT": str(root / "run"),
               "COMPOSER_CGROUP_PARENT": cgroup_parent, "COMPOSER_REGISTRY_CONFIG": str(root / "no-registries.json"),
               "NO_COLOR": "1"}
    environ.pop("COMPOSER_REGISTRY_MIRRORS", None)
    environ.pop("COMPOSER_BACKEND", None)
    return environ


def remove_cgroup_parent(cgroup_parent: str) -> None:
    """The (empty) parent cgroup the native runs were given, in every hierarchy."""
    from composer.backends.native.runtime import cgroups

    layout = cgroups.detect()
    for mountpoint in [*layout.v1.values(), *([layout.unified] if layout.unified else [])]:
        with contextlib.suppress(FileNotFoundError):
            (Path(mountpoint) / cgroup_parent).rmdir()


def docker_environment() -> dict[str, str]:
    environ = {**os.environ, "NO_COLOR": "1"}
    environ.pop("COMPOSER_BACKEND", None)
    return environ


def compose_file(reference: str, setting: str, port: int) -> str:
    disk = host_disk()
    service = {"image": reference,
               "environment": {"PROBE_PORT": str(port), "PROBE_DISK": f"{disk[0]}:{disk[1]}",
                               "PROBE_IMAGE_NODE": IMAGE_NODE},
               **SETTINGS[setting]}
    # JSON is YAML: no quoting rules to get wrong
    return json.dumps({"services": {"probe": service}}, indent=2)


def composer(run: Run, folder: Path, project: str, *args: str, timeout: float = 120
             ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "composer", "--backend", run.backend, "-p", project, *args]
    try:
        return subprocess.run(command, cwd=folder, env=dict(run.environ), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise ProbeError(f"composer --backend {run.backend} {' '.join(args)} did not finish within {timeout:.0f} s"
                         ) from None


def run_probe(run: Run, reference: str, setting: str, port: int, workdir: Path) -> dict[str, str]:
    """The probe's verdicts for one backend and setting; the project is taken down, pass or fail."""
    folder = workdir / f"{run.backend}-{setting}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "compose.yaml").write_text(compose_file(reference, setting, port))
    project = f"probe{uuid.uuid4().hex[:8]}"
    try:
        result = composer(run, folder, project, "run", "--rm", "probe")
    finally:
        composer(run, folder, project, "down", "-t", "0")
    verdicts = parse(result.stdout)
    if verdicts.get("probe.done") != "ok":
        raise ProbeError(f"the probe did not finish on {run.backend} ({setting}), exit {result.returncode}:\n"
                         f"{textwrap.shorten(result.stdout, 2000)}\n{result.stderr.strip()}")
    return verdicts


def parse(output: str) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    for line in output.splitlines():
        check, _, value = line.strip().partition(" ")
        if check and value:
            verdicts[check] = value
    return verdicts


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else text


def differences(docker: Mapping[str, str], native: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """Every check whose verdicts differ: check -> (docker's, native's)."""
    return {check: (docker.get(check, "-"), native.get(check, "-"))
            for check in sorted(set(docker) | set(native)) if docker.get(check) != native.get(check)}


def table(hosts: Mapping[str, Mapping[tuple[str, str], Mapping[str, str]]]) -> str:
    """A Markdown table: one row per check, a column per (setting, host kind, backend), the host kind's
    label after the backend when there are several; a cell that differs from the other backend's on the
    same host and setting is in bold."""
    labelled = len(hosts) > 1
    columns = [(setting, host, backend) for setting in SETTINGS for host in hosts for backend in BACKENDS
               if (setting, backend) in hosts[host]]
    checks = sorted({check for results in hosts.values() for verdicts in results.values() for check in verdicts
                     if check != "probe.done"})
    header = "| check | " + " | ".join(f"{setting} {backend}{f' {host}' if labelled else ''}"
                                      for setting, host, backend in columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 1)]
    for check in checks:
        cells = []
        for setting, host, backend in columns:
            results = hosts[host]
            value = results[(setting, backend)].get(check, "-")
            other = results.get((setting, "docker" if backend == "native" else "native"), {}).get(check, value)
            cells.append(f"**{value}**" if value != other else value)
        lines.append(f"| `{check}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)
