"""Booting guests and running commands in them.

``with guests(n) as booted:`` boots n guests of the cached image (tests/vm/image.py) on the harness's
bridge (tests/vm/network.py) and yields them once each is ready; ``booted[i].run([...])`` runs a command
as root in guest i.  On exit every guest is powered off (killed if it does not stop), and the namespace,
taps and temporary folder are gone, whatever happened.

Each guest gets:
- the image's disk with ``snapshot=on`` (its writes go to a temporary file in the harness's folder);
- its job folder (9p ``composer-job`` at /run/composer-vm), through which guest/agent.py takes commands
  and returns output, status and, on failure, the journal's tail; qemu's serial console is logged there;
- the repository read-only (9p ``composer-repo``) at the host's path, and each share read-write at its
  own path;
- a NIC on the harness's bridge (10.89.0.10+i/24, hostnames guest0, guest1, ...), and a NIC on qemu's
  user-mode network with restrict=on, whose only way out is a guestfwd from 10.0.2.100:5000 to the host's
  127.0.0.1:5000 (the local registry; the guest forwards its own 127.0.0.1:5000 there).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm import accel, network
from tests.vm.errors import VMError
from tests.vm.image import Image, ensure_image

REPOSITORY = Path(__file__).resolve().parents[2]
AGENT = Path(__file__).resolve().parent / "agent.py"  # copied into each job folder: see the agent's unit
MEMORY_MB = int(os.environ.get("COMPOSER_VM_MEMORY", "1536"))
CPUS = 2
BOOT_TIMEOUT = float(os.environ.get("COMPOSER_VM_BOOT_TIMEOUT", "300"))
STOP_TIMEOUT = 30.0
REGISTRY_PORT = 5000
PR_SET_PDEATHSIG = 1
# mitigations=off: page-table isolation and retpolines cost much under TCG, and guard nothing a test
# guest needs (containers are isolated by namespaces and cgroups, not by them).  net.ifnames=0: the NIC
# keeps the kernel's name; udev renamed eth0 to its predictable name between the agent finding it and
# setting it up, once under load ("ip link set eth0 up: Cannot find device").
KERNEL_ARGS = ("root=/dev/vda rw console=ttyS0 net.ifnames=0 quiet loglevel=4 systemd.show_status=error panic=-1 "
               "mitigations=off")


@dataclass(frozen=True)
class Result:
    status: int
    output: str
    journal: str  # the journal's last 100 lines when status != 0, else ""
    seconds: float


def _die_with_parent() -> None:
    """In qemu's child: SIGKILL when the harness dies, so no guest outlives it."""
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def read_result(path: Path) -> bytes:
    """A file the guest wrote into its job folder, never through a link it may have put there."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def read_text(path: Path) -> str:
    return read_result(path).decode(errors="replace")


@dataclass
class Guest:
    index: int
    job: Path
    process: subprocess.Popen[bytes] | None = None
    ready_after: float = 0.0  # seconds from qemu's start to the agent's "ready"
    uptime_when_ready: float = 0.0  # the guest kernel's uptime then
    commands: int = 0
    accelerator: str = ""  # "kvm" or "tcg" (accel.py)
    started: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return f"guest{self.index}"

    @property
    def address(self) -> str:
        return network.guest_address(self.index)

    def console_tail(self, lines: int = 40) -> str:
        """The end of the serial console, and qemu's own complaints."""
        tail = []
        for name in ("console.log", "qemu.log"):
            log = self.job / name
            text = log.read_text(errors="replace").strip() if log.is_file() else ""
            if text:
                tail += [f"--- {name}", *text.splitlines()[-lines:]]
        return "\n".join(tail) or "(empty)"

    def wait_ready(self, deadline: float) -> None:
        assert self.process is not None
        while not (self.job / "ready").exists():
            if self.process.poll() is not None:
                raise VMError(f"{self.name}: qemu exited {self.process.returncode} before the guest was ready; "
                              f"its console:\n{self.console_tail()}")
            if time.monotonic() > deadline:
                raise VMError(f"{self.name}: not ready within {BOOT_TIMEOUT:.0f} s; its console:\n"
                              f"{self.console_tail()}")
            time.sleep(0.1)
        self.ready_after = time.monotonic() - self.started
        with contextlib.suppress(ValueError):
            self.uptime_when_ready = float((self.job / "ready").read_text())

    def run(self, argv: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: str | None = None,
            timeout: float | None = None, echo: Callable[[bytes], None] | None = None) -> Result:
        """Run argv as root in the guest; ``echo`` gets the output as it comes."""
        assert self.process is not None
        self.commands += 1
        stem = self.job / f"{self.commands:04d}"
        request = {"argv": list(argv), "env": dict(env or {}), "cwd": cwd or str(REPOSITORY)}
        temporary = stem.with_suffix(".tmp")
        temporary.write_text(json.dumps(request))
        started = time.monotonic()
        temporary.rename(stem.with_suffix(".cmd"))
        status_file, output_file = stem.with_suffix(".rc"), stem.with_suffix(".out")
        shown = 0
        while True:
            finished = status_file.exists()
            if echo is not None and output_file.exists():
                chunk = read_result(output_file)[shown:]
                shown += len(chunk)
                if chunk:
                    echo(chunk)
            if finished:
                break
            if self.process.poll() is not None:
                raise VMError(f"{self.name}: qemu exited {self.process.returncode} while running {argv[0]}; "
                              f"its console:\n{self.console_tail()}")
            if timeout is not None and time.monotonic() - started > timeout:
                raise VMError(f"{self.name}: {argv[0]} did not finish within {timeout:.0f} s")
            time.sleep(0.1)
        journal = stem.with_suffix(".journal")
        try:
            status = int(read_text(status_file))
        except ValueError:
            raise VMError(f"{self.name}: {argv[0]}: the guest wrote no exit status") from None
        return Result(status, read_text(output_file), read_text(journal) if journal.exists() else "",
                      time.monotonic() - started)

    def check(self, *argv: str, timeout: float = 300, env: Mapping[str, str] | None = None) -> str:
        """Run argv as root in the guest and return its output; a non-zero status raises VMError with the
        output and the journal's tail."""
        result = self.run(argv, env=env, timeout=timeout)
        if result.status != 0:
            raise VMError(f"{self.name}: {' '.join(argv)} exited {result.status}:\n{result.output}\n"
                          f"--- the journal's last 100 lines:\n{result.journal}")
        return result.output

    def request_poweroff(self) -> None:
        """The agent runs systemctl poweroff; -no-reboot makes qemu exit then."""
        with contextlib.suppress(OSError):
            (self.job / "poweroff").write_text("")

    def stop(self) -> None:
        """Power off; kill qemu if the guest does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.request_poweroff()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# tests/vm/conftest.py's boot_guests fixture: (count, packages=(), shares=()) -> the booted guests.
BootGuests = Callable[..., list[Guest]]


def socat() -> str:
    found = shutil.which("socat")
    if found is None:
        raise VMError("socat is not installed (make deps): the guests reach the host's registry through it")
    return found


@dataclass(frozen=True)
class Options:
    guests: int = 1
    shares: tuple[Path, ...] = ()
    packages: tuple[str, ...] = ()
    shell: bool = False  # guest0's serial console on this terminal (scripts/vm-run --shell)


def qemu_argv(image: Image, accelerator: accel.Accelerator, guest: Guest, tap: int, options: Options,
              peers: Mapping[str, str]) -> list[str]:
    index = guest.index
    config = {
        "hostname": guest.name,
        "repo": str(REPOSITORY),
        "shares": [str(share) for share in options.shares],
        "nics": [{"mac": network.guest_mac(index, 0), "address": f"{guest.address}/{network.PREFIX_LENGTH}"},
                 {"mac": network.guest_mac(index, 1), "address": "10.0.2.15/24", "gateway": "10.0.2.2"}],
        "peers": dict(peers),
    }
    (guest.job / "config.json").write_text(json.dumps(config, indent=1))
    shutil.copyfile(AGENT, guest.job / "agent.py")
    argv = [accel.qemu_binary(), "-name", f"composer-vm-{guest.name}", *accelerator.qemu_args(),
            "-m", str(MEMORY_MB), "-smp", str(CPUS), "-nodefaults", "-no-user-config", "-display", "none",
            "-no-reboot", "-kernel", str(image.kernel), "-initrd", str(image.initrd),
            "-append", KERNEL_ARGS,
            "-drive", f"file={image.rootfs},format=raw,if=virtio,snapshot=on,cache=unsafe,discard=unmap",
            "-device", "virtio-rng-pci",
            # Read-write shares are mapped-xattr: the guest's owners, modes and device nodes are stored as
            # xattrs, so a guest's mknod or setuid bit never becomes a real device node or setuid file on
            # the host (security_model=none would make them real, as qemu runs as root).
            "-virtfs", f"local,path={guest.job},mount_tag=composer-job,security_model=mapped-xattr,id=job",
            "-virtfs", f"local,path={REPOSITORY},mount_tag=composer-repo,security_model=none,readonly=on,"
                       "multidevs=remap,id=repo",
            "-netdev", f"tap,id=lan,fd={tap},vhost=off",
            "-device", f"virtio-net-pci,netdev=lan,mac={network.guest_mac(index, 0)}",
            # restrict=on: the guest reaches nothing through qemu but the one forward to the registry.  A
            # "cmd:" forward runs once per connection (a "tcp:" one connects once, at qemu's start).
            "-netdev", "user,id=wan,restrict=on,net=10.0.2.0/24,host=10.0.2.2,"
                       f"guestfwd=tcp:10.0.2.100:{REGISTRY_PORT}-cmd:{socat()} STDIO TCP:127.0.0.1:{REGISTRY_PORT}",
            "-device", f"virtio-net-pci,netdev=wan,mac={network.guest_mac(index, 1)}"]
    for number, share in enumerate(options.shares):
        argv += ["-virtfs", f"local,path={share},mount_tag=composer-share{number},security_model=mapped-xattr,"
                            f"multidevs=remap,id=share{number}"]
    if options.shell and index == 0:
        argv += ["-serial", "mon:stdio"]
    else:
        argv += ["-serial", f"file:{guest.job / 'console.log'}"]
    return argv


@contextlib.contextmanager
def guests(options: Options, say: Callable[[str], None] = print) -> Iterator[list[Guest]]:
    """Boot ``options.guests`` guests; yield them when all are ready; stop and remove everything on exit."""
    if os.geteuid() != 0:
        raise VMError("the guest lane needs root (network namespace, taps)")
    for share in options.shares:
        if not share.is_dir():
            raise VMError(f"--share {share}: not a directory")
    image = ensure_image(options.packages, say)
    accelerator = accel.choose(image)
    say(f"vm: accelerator {accelerator.name} ({accelerator.reason})")
    folder = Path(tempfile.mkdtemp(prefix="composer-vm-"))
    booted: list[Guest] = []
    try:
        with network.lan() as lan:
            peers = {f"guest{i}": network.guest_address(i) for i in range(options.guests)}
            env = {**os.environ, "TMPDIR": str(folder)}  # qemu's snapshot files
            for index in range(options.guests):
                guest = Guest(index, folder / f"job{index}")
                guest.job.mkdir()
                guest.accelerator = accelerator.name
                tap = lan.open_tap(index)
                argv = qemu_argv(image, accelerator, guest, tap, options, peers)
                interactive = options.shell and index == 0
                with (guest.job / "qemu.log").open("wb") as complaints:
                    guest.process = subprocess.Popen(
                        argv, pass_fds=(tap,), env=env, preexec_fn=_die_with_parent,
                        stdin=None if interactive else subprocess.DEVNULL,
                        stdout=None if interactive else subprocess.DEVNULL,
                        stderr=None if interactive else complaints)
                guest.started = time.monotonic()
                booted.append(guest)
            lan.close_taps()
            try:
                deadline = time.monotonic() + BOOT_TIMEOUT
                for guest in booted:
                    guest.wait_ready(deadline)
                say("vm: " + ", ".join(f"{g.name} ({g.address}) ready in {g.ready_after:.1f} s "
                                       f"(its kernel up {g.uptime_when_ready:.1f} s)" for g in booted))
                yield booted
            finally:
                for guest in booted:
                    guest.request_poweroff()
                for guest in booted:
                    guest.stop()
    finally:
        for guest in booted:
            if guest.process is not None and guest.process.poll() is None:
                guest.process.kill()
                guest.process.wait()
        shutil.rmtree(folder, ignore_errors=True)


def echo_to_stdout(chunk: bytes) -> None:
    sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.flush()
