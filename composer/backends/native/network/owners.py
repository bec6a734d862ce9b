"""Which run root made a host link: composer writes ``composer run_root=<path>`` into the ifalias
of each bridge and host-side veth it makes, so that ``composer system check`` (residue.py) tells
its own links from those of another composer (another COMPOSER_RUN_ROOT on the same host) and
never touches a link it cannot attribute. Plain sysfs files: no netlink round trip."""

from __future__ import annotations

import contextlib
from pathlib import Path

PREFIX = "composer run_root="
SYSFS = "/sys/class/net"


def label(link: str, run_root: Path) -> None:
    """Record ``run_root`` as the owner of ``link`` (best effort: a kernel without ifalias)."""
    with contextlib.suppress(OSError), open(f"{SYSFS}/{link}/ifalias", "w", encoding="utf-8") as file:
        file.write(f"{PREFIX}{run_root.resolve()}")


def owner(link: str) -> str | None:
    """The run root recorded on ``link``; None when there is none (or no such link)."""
    try:
        with open(f"{SYSFS}/{link}/ifalias", encoding="utf-8", errors="replace") as file:
            text = file.read().strip()
    except OSError:
        return None
    return text[len(PREFIX):] if text.startswith(PREFIX) else None
