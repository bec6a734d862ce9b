"""Which accelerator guests run on: KVM when a probe guest boots under it within a short deadline, else TCG.

On this kind of machine /dev/kvm opens, but a Linux guest under nested KVM stalls after the kernel's
decompressor (docs/testing.md).  The probe boots the image's kernel with an init that does not exist:
a working KVM reaches the kernel's "VFS: Unable to mount root fs" panic in a second or two, and qemu exits
(-no-reboot).  The verdict is cached per host boot and qemu binary (it does not change in between), so
only the first run of a boot pays for it.  COMPOSER_VM_ACCEL=kvm|tcg skips the probe.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.vm.errors import VMError
from tests.vm.image import Image, cache_root

PROBE_DEADLINE = 20.0  # seconds; a working KVM needs ~2
PROBE_MARK = b"Unable to mount root fs"
QEMU = "qemu-system-x86_64"


@dataclass(frozen=True)
class Accelerator:
    name: str  # "kvm" or "tcg"
    reason: str  # why this one, for the output

    def qemu_args(self) -> list[str]:
        if self.name == "kvm":
            return ["-accel", "kvm", "-cpu", "host"]
        # Multi-threaded TCG: one host thread per vCPU.  "max" gives the guest every feature TCG emulates.
        return ["-accel", "tcg,thread=multi", "-cpu", "max"]


def qemu_binary() -> str:
    for folder in [*os.environ.get("PATH", "").split(os.pathsep), "/usr/bin"]:
        candidate = Path(folder) / QEMU
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise VMError(f"{QEMU} is not installed (make deps: Debian's qemu-system-x86)")


def choose(image: Image) -> Accelerator:
    forced = os.environ.get("COMPOSER_VM_ACCEL", "")
    if forced in ("kvm", "tcg"):
        return Accelerator(forced, "COMPOSER_VM_ACCEL")
    if forced:
        raise VMError(f"COMPOSER_VM_ACCEL={forced!r}: expected kvm or tcg")
    try:
        os.close(os.open("/dev/kvm", os.O_RDWR))
    except OSError as exc:
        return Accelerator("tcg", f"/dev/kvm: {exc.strerror}")
    binary = qemu_binary()
    boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    key = f"{boot_id}:{os.stat(binary).st_mtime_ns}:{image.kernel.stat().st_size}"
    verdicts = cache_root() / "accel.json"
    try:
        cached = json.loads(verdicts.read_text())
    except (OSError, ValueError):
        cached = {}
    if cached.get("key") == key:
        return Accelerator(str(cached["name"]), str(cached["reason"]) + " (cached for this host boot)")
    chosen = probe(binary, image)
    verdicts.parent.mkdir(parents=True, exist_ok=True)
    verdicts.write_text(json.dumps({"key": key, "name": chosen.name, "reason": chosen.reason}) + "\n")
    return chosen


def probe(binary: str, image: Image) -> Accelerator:
    """Boot the kernel under KVM until it panics for want of a root (works) or the deadline (stalls)."""
    with tempfile.TemporaryDirectory(prefix="composer-vm-probe-") as folder:
        console = Path(folder) / "console"
        argv = [binary, "-accel", "kvm", "-cpu", "host", "-m", "256", "-smp", "1", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot", "-serial", f"file:{console}",
                "-kernel", str(image.kernel),
                "-append", "console=ttyS0 panic=-1 rdinit=/composer-vm-none root=/dev/composer-vm-none"]
        errors = Path(folder) / "qemu.log"
        started = time.monotonic()
        with errors.open("wb") as stderr:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr)
        try:
            while time.monotonic() - started < PROBE_DEADLINE:
                exited = process.poll() is not None
                if console.is_file() and PROBE_MARK in console.read_bytes():
                    return Accelerator("kvm", f"a probe guest booted under KVM in {time.monotonic() - started:.1f} s")
                if exited:
                    complaint = errors.read_text(errors="replace").strip().splitlines()
                    why = complaint[0] if complaint else f"exit {process.returncode}"
                    return Accelerator("tcg", f"qemu failed under KVM: {why}")
                time.sleep(0.2)
        finally:
            process.kill()
            process.wait()
    return Accelerator("tcg", f"a probe guest did not boot under KVM within {PROBE_DEADLINE:.0f} s")
