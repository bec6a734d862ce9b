"""The guest image: Debian bookworm from debootstrap with its own kernel and initramfs, cached by recipe.

One build gives three files in ``<cache>/images/<recipe hash>/``: ``vmlinux`` and ``initrd.img`` (from
linux-image-amd64 installed inside the root, where initramfs-tools makes the initramfs; nothing is
installed on the host) and ``rootfs.img`` (raw ext4 filled by ``mkfs.ext4 -d``, no loop mount).  Guests
boot it with ``snapshot=on``: their writes go to a temporary file qemu deletes, so the image stays clean.

The recipe hash covers this file, tests/vm/guest/ (what is baked in), the Debian packages and the pinned
Python wheels.  The wheels come from the host (``pip download`` for the guest's CPython 3.11 into the
image) and go into a venv at /opt/composer/venv at build time: the guest has no network to any registry.

Environment: COMPOSER_VM_CACHE (default /var/cache/composer-vm), COMPOSER_VM_MIRROR (Debian mirror).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import lzma
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.vm.errors import VMError

HERE = Path(__file__).resolve().parent
GUEST_FILES = HERE / "guest"
SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# What every guest has: systemd as PID 1 (pure cgroup v2 by default), a kernel whose package makes the
# initramfs, what the native backend runs (iptables, tini, busybox, zstd, openssl, setcap, a C compiler
# for the isolation probe and the compiled client), and what a test from outside drives composer with.
BASE_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64", "systemd-sysv", "udev", "kmod", "dbus",
    "python3", "python3-venv",
    "iproute2", "iptables", "iputils-ping", "socat", "netcat-openbsd", "curl", "ca-certificates",
    "bash", "busybox-static", "procps", "psmisc", "util-linux", "mount",
    "libseccomp2", "tini", "zstd", "openssl", "libcap2-bin", "gcc", "libc6-dev",
    # Debian 12's kernel enables AppArmor, and a Debian 12 host has the parser (dockerd refuses to run
    # containers without it there).
    "apparmor",
)
# The repository's Python dependencies (pyproject: dependencies + the native and test extras, without
# the linters), pinned to the host venv's versions so that the guest runs what the host tested.
WHEELS: tuple[str, ...] = (
    "pydantic", "ruamel.yaml", "ruamel.yaml.clib", "anyio", "pyroute2", "zstandard", "docker",
    "pytest", "pytest-xdist",
)
GUEST_PYTHON = "3.11"
# bookworm's glibc is 2.36: any manylinux wheel up to that runs in the guest.
WHEEL_PLATFORMS = ("linux_x86_64", "manylinux2014_x86_64", *(f"manylinux_2_{n}_x86_64" for n in range(17, 37)))
IMAGE_SIZE = "6G"  # sparse: room for what tests pull and unpack in the guest
# Units a test guest does not need; each costs boot time under TCG.
# (systemd-analyze blame in a guest: each modprobe@ unit took 5-8 s under TCG; the modules load on demand.)
MASKED_UNITS = (
    "apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer", "e2scrub_reap.service",
    "fstrim.timer", "dpkg-db-backup.timer", "systemd-tmpfiles-clean.timer", "getty@tty1.service",
    "systemd-random-seed.service", "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
    "systemd-pstore.service", "systemd-journal-flush.service", "cron.service",
    "modprobe@drm.service", "modprobe@fuse.service", "modprobe@dm_mod.service", "modprobe@loop.service",
    "modprobe@configfs.service", "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "sys-kernel-debug.mount", "sys-kernel-tracing.mount", "sys-kernel-config.mount", "dev-hugepages.mount",
    "systemd-firstboot.service", "systemd-machine-id-commit.service",
    # Debian's docker-registry starts one on :5000, where the guest has the host's (tests start their own).
    "docker-registry.service",
)
# The initramfs only has to find the root disk: a short module list instead of "most" (31 MB that the
# kernel unpacked for 7 s under TCG), lz4 because it decompresses fastest.
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk", "ext4", "crc32c_generic")
ENABLED_UNITS = ("composer-vm-agent.service", "composer-vm-registry.service")


def cache_root() -> Path:
    return Path(os.environ.get("COMPOSER_VM_CACHE") or "/var/cache/composer-vm")


def wheel_pins() -> tuple[str, ...]:
    """``name==version`` of each wheel, as installed in the interpreter running the harness."""
    pins = []
    for name in WHEELS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            raise VMError(f"the guest image needs {name}, which this Python lacks (make install)") from None
    return tuple(pins)


def tree_digest(folder: Path, digest: hashlib._Hash) -> None:
    """Feed a folder's files (relative path, executable bit, content) in path order into ``digest``."""
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(f"\0{path.relative_to(folder).as_posix()}\0{os.access(path, os.X_OK)}\0".encode())
        digest.update(path.read_bytes())


@dataclass(frozen=True)
class Recipe:
    """What an image is made of; its hash names the cached image."""

    packages: tuple[str, ...]
    wheels: tuple[str, ...]

    @classmethod
    def with_packages(cls, extra: Sequence[str] = ()) -> Recipe:
        packages = tuple(dict.fromkeys([*BASE_PACKAGES, *sorted(extra)]))
        return cls(packages, wheel_pins())

    def digest(self) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([SUITE, self.packages, self.wheels, IMAGE_SIZE, MASKED_UNITS]).encode())
        digest.update(Path(__file__).read_bytes())
        tree_digest(GUEST_FILES, digest)
        return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Image:
    folder: Path

    @property
    def kernel(self) -> Path:
        """The uncompressed ELF kernel: qemu enters it through its PVH note, so that the bzImage's xz
        decompressor (4-5 s under TCG) does not run at every boot."""
        return self.folder / "vmlinux"

    @property
    def initrd(self) -> Path:
        return self.folder / "initrd.img"

    @property
    def rootfs(self) -> Path:
        return self.folder / "rootfs.img"

    def complete(self) -> bool:
        return all(p.is_file() for p in (self.kernel, self.initrd, self.rootfs, self.folder / "recipe.json"))


def run(argv: Sequence[str]) -> None:
    """Run a build step; on failure raise with the tail of its output."""
    done = subprocess.run(list(argv), stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise VMError(f"image build: {' '.join(argv[:4])} ... exited {done.returncode}:\n{tail}")


def unmount_below(folder: Path) -> None:
    """Lazily unmount whatever is mounted under ``folder`` (debootstrap mounts /proc and /sys in the root
    it builds; an interrupted build leaves them), deepest first: a removal must never walk into them."""
    prefix = str(folder.resolve()) + "/"
    with open("/proc/self/mounts") as mounts:
        points = [line.split()[1] for line in mounts]
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def remove_build(folder: Path) -> None:
    if folder.exists():
        unmount_below(folder)
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def ensure_image(extra_packages: Sequence[str] = (), say: Callable[[str], None] = print) -> Image:
    """The cached image for this recipe, built first when missing (one build at a time per cache)."""
    recipe = Recipe.with_packages(extra_packages)
    images = cache_root() / "images"
    image = Image(images / recipe.digest())
    if image.complete():
        return image
    with locked(cache_root() / "build.lock"):
        if image.complete():
            return image
        missing = [tool for tool in ("debootstrap", "mkfs.ext4", "chroot") if shutil.which(tool) is None]
        if missing:
            raise VMError(f"building the guest image needs {', '.join(missing)} (make deps)")
        if os.geteuid() != 0:
            raise VMError("building the guest image needs root (debootstrap)")
        started = time.monotonic()
        say(f"vm: building the guest image {image.folder.name} (debootstrap {SUITE}; a few minutes, once)")
        work = images / f".build-{image.folder.name}-{os.getpid()}"
        remove_build(work)
        try:
            build(recipe, work, say)
            for stale in images.iterdir():  # earlier recipes' images: one image per package set is enough
                if stale.is_dir() and not stale.name.startswith(".") and stale != image.folder:
                    recorded = json.loads((stale / "recipe.json").read_text()) if (stale / "recipe.json").is_file() \
                        else {}
                    if recorded.get("packages") == list(recipe.packages):
                        shutil.rmtree(stale, ignore_errors=True)
            work.rename(image.folder)
        finally:
            remove_build(work)
        say(f"vm: built {image.folder} in {time.monotonic() - started:.0f} s")
    return image


def build(recipe: Recipe, work: Path, say: Callable[[str], None]) -> None:
    root = work / "root"
    root.mkdir(parents=True)
    mirror = os.environ.get("COMPOSER_VM_MIRROR") or DEFAULT_MIRROR
    debs = cache_root() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    say(f"vm:   debootstrap --variant=minbase ({len(recipe.packages)} packages) from {mirror}")
    run(["debootstrap", "--variant=minbase", f"--cache-dir={debs}", f"--include={','.join(recipe.packages)}",
         SUITE, str(root), mirror])
    say("vm:   wheels for the guest's Python (pip download on the host)")
    wheels = root / "opt" / "composer" / "wheels"
    platforms = [arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]
    run([sys.executable, "-m", "pip", "download", "-q", "--disable-pip-version-check", "--dest", str(wheels),
         "--only-binary=:all:", "--implementation", "cp", "--python-version", GUEST_PYTHON, *platforms,
         *recipe.wheels])
    say("vm:   the venv at /opt/composer/venv")
    run(["chroot", str(root), "python3", "-m", "venv", "/opt/composer/venv"])
    run(["chroot", str(root), "/opt/composer/venv/bin/pip", "install", "-q", "--disable-pip-version-check",
         "--no-index", "--find-links", "/opt/composer/wheels", *recipe.wheels])
    shutil.rmtree(wheels)
    site = next((root / "opt/composer/venv/lib").glob("python3*/site-packages"))
    (site / "composer-src.pth").write_text("/opt/composer/src\n")  # the shared repository (agent.py links it)
    configure(root)
    say("vm:   a small initramfs; the kernel as an ELF")
    initramfs = root / "etc/initramfs-tools"
    conf = (initramfs / "initramfs.conf").read_text()
    conf = conf.replace("MODULES=most", "MODULES=list").replace("COMPRESS=zstd", "COMPRESS=lz4")
    (initramfs / "initramfs.conf").write_text(conf)
    (initramfs / "modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")
    run(["chroot", str(root), "update-initramfs", "-u", "-k", "all"])
    boot = root / "boot"
    (work / "vmlinux").write_bytes(elf_kernel(next(boot.glob("vmlinuz-*")).read_bytes()))
    shutil.copy(next(boot.glob("initrd.img-*")), work / "initrd.img")
    say("vm:   rootfs.img (mkfs.ext4 -d)")
    image = work / "rootfs.img"
    unmount_below(root)  # mkfs.ext4 -d must not copy a live /proc
    run(["truncate", "-s", IMAGE_SIZE, str(image)])
    run(["mkfs.ext4", "-q", "-F", "-L", "composer-vm", "-d", str(root), str(image)])
    remove_build(root)
    (work / "recipe.json").write_text(json.dumps({"packages": list(recipe.packages),
                                                  "wheels": list(recipe.wheels)}, indent=1) + "\n")


def elf_kernel(bzimage: bytes) -> bytes:
    """The ELF vmlinux inside a bzImage (Debian's payload is xz-compressed)."""
    start = bzimage.find(b"\xfd7zXZ\x00")
    if start < 0:
        raise VMError("image build: the kernel's bzImage has no xz payload")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(bzimage[start:])
    if not elf.startswith(b"\x7fELF"):
        raise VMError("image build: the kernel's payload is not an ELF file")
    return elf


def configure(root: Path) -> None:
    """Bake tests/vm/guest/ into the root and set systemd up for a throw-away test guest."""
    def install(name: str, target: str, mode: int = 0o644) -> None:
        path = root / target.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(GUEST_FILES / name, path)
        path.chmod(mode)

    install("composer", "/usr/local/bin/composer", 0o755)
    install("composer-vm-agent.service", "/etc/systemd/system/composer-vm-agent.service")
    install("composer-vm-registry.service", "/etc/systemd/system/composer-vm-registry.service")
    install("autologin.conf", "/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf")
    install("fstab", "/etc/fstab")
    install("registries.json", "/etc/composer/registries.json")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True, exist_ok=True)
    for unit in ENABLED_UNITS:
        (wants / unit).unlink(missing_ok=True)
        (wants / unit).symlink_to(f"/etc/systemd/system/{unit}")
    for unit in MASKED_UNITS:
        masked = root / "etc/systemd/system" / unit
        masked.unlink(missing_ok=True)
        masked.symlink_to("/dev/null")
    (root / "etc/hostname").write_text("composer-vm\n")
    (root / "etc/machine-id").write_text("")  # a fresh one per boot
    (root / "etc/profile.d/composer-vm.sh").write_text(
        "export PATH=/opt/composer/venv/bin:$PATH PYTHONPYCACHEPREFIX=/var/cache/composer-pyc\n")
    run(["chroot", str(root), "passwd", "-d", "root"])
    shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True)
