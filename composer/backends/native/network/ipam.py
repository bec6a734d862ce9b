"""composer's own IPAM: pure functions over subnets and addresses (no I/O).

Default IPv4 subnets are /24s taken in order from 10.89.0.0/16 .. 10.99.0.0/16 (podman's
neighbourhood; Docker's pools are 172.17-31/16 and 192.168/16), skipping any that overlaps a
host route or address, another composer network, or anything else passed in ``used``.
Default IPv6 subnets are ULA /64s derived from the network's name.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_V4 = [ipaddress.IPv4Network(f"10.{b}.0.0/16") for b in range(89, 100)]


class IPAMError(ValueError):
    """A bad or impossible address request (one line)."""


@dataclass(frozen=True)
class Pool:
    subnet: Network
    gateway: Address
    ip_range: Network | None = None
    aux_addresses: Mapping[str, Address] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"subnet": str(self.subnet), "gateway": str(self.gateway),
                "ip_range": str(self.ip_range) if self.ip_range else None,
                "aux_addresses": {k: str(v) for k, v in self.aux_addresses.items()}}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Pool:
        return cls(ipaddress.ip_network(data["subnet"]), ipaddress.ip_address(data["gateway"]),
                   ipaddress.ip_network(data["ip_range"]) if data.get("ip_range") else None,
                   {k: ipaddress.ip_address(v) for k, v in (data.get("aux_addresses") or {}).items()})

    @property
    def version(self) -> int:
        return self.subnet.version

    def reserved(self) -> set[Address]:
        return {self.gateway, *self.aux_addresses.values()}


def _network(text: str, what: str) -> Network:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise IPAMError(f"invalid {what} {text!r}") from None


def _address(text: str, what: str) -> Address:
    try:
        return ipaddress.ip_address(text.split("/")[0])
    except ValueError:
        raise IPAMError(f"invalid {what} {text!r}") from None


def configured_pool(name: str, subnet: str, ip_range: str | None, gateway: str | None,
                    aux: Mapping[str, str]) -> Pool:
    """A pool from an ``ipam.config`` entry.

    :raises IPAMError: malformed values, a range or gateway outside the subnet.
    """
    net = _network(subnet, "subnet")
    if net.num_addresses < 4 and net.version == 4:
        raise IPAMError(f"network {name}: subnet {subnet} is too small")
    rng = _network(ip_range, "ip_range") if ip_range else None
    if rng is not None and (rng.version != net.version or not rng.subnet_of(net)):  # type: ignore[arg-type,unused-ignore]
        raise IPAMError(f"network {name}: ip_range {ip_range} is not inside subnet {subnet}")
    gw = _address(gateway, "gateway") if gateway else ipaddress.ip_address(net.network_address + 1)
    if gw not in net:
        raise IPAMError(f"network {name}: gateway {gateway} is not inside subnet {subnet}")
    reserved = {}
    for key, value in aux.items():
        address = _address(value, "aux_address")
        if address not in net:
            raise IPAMError(f"network {name}: aux_address {key}={value} is not inside subnet {subnet}")
        reserved[key] = address
    return Pool(net, gw, rng, reserved)


def overlaps(net: Network, used: Iterable[Network]) -> bool:
    return any(net.version == other.version and net.overlaps(other) for other in used)  # type: ignore[arg-type,unused-ignore]


def default_v4(used: Iterable[Network]) -> Pool:
    """The first free /24 of the default pools.

    :raises IPAMError: every default subnet is in use.
    """
    taken = [n for n in used if n.version == 4 and n.prefixlen > 0]
    for block in DEFAULT_V4:
        if overlaps(block, [t for t in taken if t.supernet_of(block)]):  # type: ignore[arg-type,unused-ignore]
            continue
        for net in block.subnets(new_prefix=24):
            if not overlaps(net, taken):
                return Pool(net, net.network_address + 1)
    raise IPAMError("no free default subnet left in 10.89.0.0/16-10.99.0.0/16 (set ipam.config subnet)")


def default_v6(name: str, used: Iterable[Network]) -> Pool:
    digest = hashlib.sha256(name.encode()).digest()
    for salt in range(256):
        prefix = bytes([0xFD]) + digest[1:7] + bytes([salt]) + bytes(8)
        net = ipaddress.IPv6Network((prefix, 64))
        if not overlaps(net, used):
            return Pool(net, net.network_address + 1)
    raise IPAMError(f"network {name}: no free IPv6 subnet")


def check_static(pool: Pool, address: Address, taken: Iterable[Address], what: str) -> Address:
    """``address`` as a static assignment in ``pool``.

    :raises IPAMError: outside the subnet, the gateway, reserved or already taken.
    """
    if address not in pool.subnet:
        raise IPAMError(f"{what} {address} is not inside subnet {pool.subnet}")
    if address == pool.subnet.network_address or (pool.version == 4 and address == pool.subnet.broadcast_address):
        raise IPAMError(f"{what} {address} is not a host address of {pool.subnet}")
    if address in pool.reserved() or address in set(taken):
        raise IPAMError(f"{what} {address} is already in use in {pool.subnet}")
    return address


def allocate(pool: Pool, taken: Iterable[Address]) -> Address:
    """The first free host address of the pool (within ip_range when set).

    :raises IPAMError: the pool is exhausted.
    """
    busy = set(taken) | pool.reserved()
    scope = pool.ip_range or pool.subnet
    limit = 1 << 16  # IPv6 /64s: never walk further than that
    for count, candidate in enumerate(scope.hosts()):
        if count >= limit:
            break
        if candidate in pool.subnet and candidate not in busy:
            return ipaddress.ip_address(str(candidate))
    raise IPAMError(f"no free address left in {scope}")


def mac_for(address: Address) -> str:
    """Docker's scheme: 02:42 and the IPv4 address (a hash for IPv6)."""
    raw = address.packed[-4:] if address.version == 4 else hashlib.sha256(address.packed).digest()[:4]
    return "02:42:" + ":".join(f"{b:02x}" for b in raw)
