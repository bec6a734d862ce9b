"""The guests' network: a bridge in a network namespace of the harness's own, one tap per guest on it.

Guests have addresses only there (10.89.0.0/24, guest i at .10+i); nothing on the host sends to them and
nothing is forwarded anywhere.  The taps are opened from inside the namespace and handed to qemu as file
descriptors, so qemu itself runs in the host's namespace: its user-mode network (restrict=on, one
guestfwd) can then reach the host's loopback registry, and nothing else (see machine.py).
A tap opened this way is not persistent: it goes when the last descriptor (qemu's) closes; deleting the
namespace removes the bridge.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import secrets
import struct
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.vm.errors import VMError

SUBNET_PREFIX = "10.89.0."
PREFIX_LENGTH = 24
CLONE_NEWNET = 0x40000000
TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFF_VNET_HDR = 0x4000
BRIDGE = "br0"
NETNS_PREFIX = "composer-vm-"


def guest_address(index: int) -> str:
    return f"{SUBNET_PREFIX}{10 + index}"


def guest_mac(index: int, nic: int) -> str:
    return f"52:54:00:c0:{nic:02x}:{index:02x}"


def ip(*argv: str) -> None:
    done = subprocess.run(["ip", *argv], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise VMError(f"ip {' '.join(argv)}: {done.stderr.strip() or f'exit {done.returncode}'}")


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise VMError(f"setns: {os.strerror(errno)}")


@dataclass
class Lan:
    """The harness's namespace and bridge, and the taps opened on it (descriptors to hand to qemu)."""

    netns: str
    taps: list[int] = field(default_factory=list)

    def open_tap(self, index: int) -> int:
        """A tap on the bridge, opened inside the namespace; the descriptor is inheritable for qemu."""
        name = f"tap{index}"
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            _setns(target)  # this thread only; back below before anything else runs on it
            try:
                tap = os.open("/dev/net/tun", os.O_RDWR)
                fcntl.ioctl(tap, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI | IFF_VNET_HDR))
            finally:
                _setns(own)
        finally:
            os.close(own)
            os.close(target)
        os.set_inheritable(tap, True)
        self.taps.append(tap)
        ip("-n", self.netns, "link", "set", name, "master", BRIDGE, "up")
        return tap

    def close_taps(self) -> None:
        """Our copies of the descriptors (qemu has its own once it runs)."""
        for tap in self.taps:
            with contextlib.suppress(OSError):
                os.close(tap)
        self.taps.clear()


@contextlib.contextmanager
def lan() -> Iterator[Lan]:
    """A fresh namespace with an unaddressed bridge; removed (with the bridge and any tap) on exit."""
    if not Path("/dev/net/tun").exists():
        raise VMError("/dev/net/tun is missing: the guests' bridge needs tap devices")
    name = NETNS_PREFIX + secrets.token_hex(4)
    ip("netns", "add", name)
    created = Lan(name)
    try:
        ip("-n", name, "link", "set", "lo", "up")
        ip("-n", name, "link", "add", BRIDGE, "type", "bridge")
        ip("-n", name, "link", "set", BRIDGE, "up")
        yield created
    finally:
        created.close_taps()
        subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)
