"""Networks for the native backend: one Linux bridge per Compose network with composer's own
IPAM, a veth per container network created inside its namespace, a per-project DNS responder,
and published ports as DNAT rules in composer's own iptables chains (see ``manager``).

Only ``netlink`` imports pyroute2; importing this package imports nothing heavy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.backends.native.network.manager import Attachment, NetworkManager, PublishedPort, attachments

__all__ = ["Attachment", "NetworkManager", "PublishedPort", "attachments"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from composer.backends.native.network import manager

        return getattr(manager, name)
    raise AttributeError(name)
