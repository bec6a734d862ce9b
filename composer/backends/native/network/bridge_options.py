"""A network's ``driver_opts``: the options of Docker's bridge driver that the native bridge
honours (moby libnetwork/drivers/bridge/labels.go and netlabel.DriverMTU, with the names
``docker network inspect bridge`` shows), parsed as dockerd parses them. Any other option is
refused in one line naming it, never ignored."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

BRIDGE_NAME = "com.docker.network.bridge.name"
ENABLE_ICC = "com.docker.network.bridge.enable_icc"
ENABLE_IP_MASQUERADE = "com.docker.network.bridge.enable_ip_masquerade"
HOST_BINDING_IPV4 = "com.docker.network.bridge.host_binding_ipv4"
MTU = "com.docker.network.driver.mtu"
KNOWN = (BRIDGE_NAME, ENABLE_ICC, ENABLE_IP_MASQUERADE, HOST_BINDING_IPV4, MTU)
# strconv.ParseBool's spellings
TRUE, FALSE = ("1", "t", "T", "TRUE", "true", "True"), ("0", "f", "F", "FALSE", "false", "False")
MIN_MTU, MAX_MTU = 68, 65535  # IPv4's minimum; the kernel's bridge and veth maximum
IFNAMSIZ = 16


class BridgeOptionError(ValueError):
    """An option native does not take, or a bad value (one line)."""


@dataclass(frozen=True)
class BridgeOptions:
    name: str | None = None  # None: composer's own cmp-<hash>
    icc: bool = True
    masquerade: bool = True
    host_binding_ipv4: str | None = None  # None: every address (0.0.0.0)
    mtu: int | None = None  # None: the kernel's default (1500)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "icc": self.icc, "masquerade": self.masquerade,
                "host_binding_ipv4": self.host_binding_ipv4, "mtu": self.mtu}


def _bool(network: str, key: str, value: str) -> bool:
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise BridgeOptionError(f"network {network}: driver_opts {key}: {value!r} is not true or false")


def parse(network: str, options: Mapping[str, str]) -> BridgeOptions:
    """The options of network ``network``.

    :raises BridgeOptionError: an option of another driver or of none, or a bad value.
    """
    for key in options:
        if key not in KNOWN:
            raise BridgeOptionError(f"network {network}: driver_opts {key} is not supported by the native backend")
    name = options.get(BRIDGE_NAME) or None
    if name is not None and (len(name) >= IFNAMSIZ or name in (".", "..") or any(
            c in name for c in "/: \t\n") or not name.isprintable()):
        raise BridgeOptionError(f"network {network}: driver_opts {BRIDGE_NAME}: {name!r} is not a valid interface name")
    binding = options.get(HOST_BINDING_IPV4) or None
    if binding is not None:
        try:
            binding = str(ipaddress.IPv4Address(binding))
        except ValueError:
            raise BridgeOptionError(f"network {network}: driver_opts {HOST_BINDING_IPV4}: {binding!r} is not an IPv4 "
                                    "address") from None
    mtu = None
    if options.get(MTU):
        text = options[MTU]
        if not text.isdigit() or not MIN_MTU <= int(text) <= MAX_MTU:
            raise BridgeOptionError(f"network {network}: driver_opts {MTU}: {text!r} is not an MTU between {MIN_MTU} "
                                    f"and {MAX_MTU}")
        mtu = int(text)
    return BridgeOptions(name=name, icc=_bool(network, ENABLE_ICC, options.get(ENABLE_ICC, "true")),
                         masquerade=_bool(network, ENABLE_IP_MASQUERADE, options.get(ENABLE_IP_MASQUERADE, "true")),
                         host_binding_ipv4=binding, mtu=mtu)


def from_state(state: Mapping[str, object]) -> BridgeOptions:
    """The options a network's state recorded (a network made before them: the defaults)."""
    data = state.get("options")
    if not isinstance(data, Mapping):
        return BridgeOptions()
    name, binding, mtu = data.get("name"), data.get("host_binding_ipv4"), data.get("mtu")
    return BridgeOptions(name=str(name) if name else None, icc=bool(data.get("icc", True)),
                         masquerade=bool(data.get("masquerade", True)),
                         host_binding_ipv4=str(binding) if binding else None,
                         mtu=int(mtu) if isinstance(mtu, int) else None)
