"""composer's iptables rules, in composer's own chains, beside Docker's.

Chains (created on first use, removed with their jumps once empty; never a flush of a table or
of anybody else's chain)::

    nat     COMPOSER-DNAT          <- PREROUTING (-m addrtype --dst-type LOCAL) and OUTPUT (the
                                      same, but not to 127.0.0.0/8: the port proxy answers there)
            COMPOSER-POSTROUTING   <- POSTROUTING, first
    filter  COMPOSER-FORWARD       <- FORWARD, first (before Docker's DROP policy and chains)
            COMPOSER-ISOLATION     <- FORWARD, second (drops what COMPOSER-FORWARD did not accept)
    raw     COMPOSER-PREROUTING    <- PREROUTING, first (made with the first port published on a
                                      loopback address)

Bridges keep route_localnet at 0: nothing may reach the host's 127.0.0.0/8 from a bridge or the
LAN. The host reaches published ports on 127.0.0.1 through the port proxy (proxy.py), as Docker's
default docker-proxy does; a port published on a loopback address gets no DNAT at all, and a raw
PREROUTING rule drops what is sent to it from anywhere but ``lo`` (Docker's guard for moby#41872).

Every rule carries ``-m comment --comment <tag>``: ``composer:net:<bridge>`` for a network's
rules, ``composer:port:<bridge>:<container key>`` for a container's published ports; removal
deletes exactly the rules with a tag (``iptables-save`` lines turned into ``-D``, applied with
``iptables-restore --noflush`` in one batch). A global flock serialises composer processes.
Where the host's iptables is iptables-nft, these are the same nft tables Docker's rules live in.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

LOCK = "/run/lock/composer-firewall.lock"
LOCAL = "-m addrtype --dst-type LOCAL"
NOT_LOOPBACK = "! -d 127.0.0.0/8"
Chains = dict[str, tuple[tuple[str, str], ...]]  # chain -> its jumps (parent chain, match)
NAT_CHAINS: Chains = {"COMPOSER-DNAT": (("PREROUTING", LOCAL), ("OUTPUT", f"{NOT_LOOPBACK} {LOCAL}")),
              "COMPOSER-POSTROUTING": (("POSTROUTING", ""),)}
FILTER_CHAINS: Chains = {"COMPOSER-FORWARD": (("FORWARD", ""),), "COMPOSER-ISOLATION": (("FORWARD", ""),)}
RAW_CHAINS: Chains = {"COMPOSER-PREROUTING": (("PREROUTING", ""),)}
CHAINS: dict[str, Chains] = {"nat": NAT_CHAINS, "filter": FILTER_CHAINS, "raw": RAW_CHAINS}
# jumps of older composers, replaced: OUTPUT to every local address (127.0.0.1 DNATed, which
# only worked with route_localnet=1 on the bridges)
OBSOLETE_JUMPS = {"nat": (f"-A OUTPUT {LOCAL} -j COMPOSER-DNAT",)}
BRIDGE_WILDCARD = "cmp-+"


class FirewallError(RuntimeError):
    """iptables refused a change (one line)."""


@dataclass(frozen=True)
class PortRule:
    protocol: str  # tcp | udp
    host_ip: str | None  # None: every address
    host_port: int
    address: str  # the container's
    port: int


def _run(args: Sequence[str], stdin: str | None = None, binary: str = "iptables") -> str:
    try:
        result = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise FirewallError(f"{binary} is not installed") from None
    if result.returncode != 0:
        message = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise FirewallError(f"{binary} {' '.join(args[:3])}: {message}")
    return result.stdout


@contextlib.contextmanager
def locked() -> Iterator[None]:
    os.makedirs(os.path.dirname(LOCK), exist_ok=True)
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _save(table: str) -> list[str]:
    return _run(["-t", table], binary="iptables-save").splitlines()


def _restore(table: str, lines: Sequence[str]) -> None:
    if lines:
        _run(["-w", "--noflush"], stdin=f"*{table}\n" + "\n".join(lines) + "\nCOMMIT\n", binary="iptables-restore")


def _ensure_chains(tables: Sequence[str] = ("nat", "filter")) -> None:
    for table in tables:
        chains = CHAINS[table]
        saved = _save(table)
        existing = {line[1:].split()[0] for line in saved if line.startswith(":")}
        batch = [f"-D{line[2:]}" for line in OBSOLETE_JUMPS.get(table, ()) if line in saved]
        for chain in chains:
            if chain not in existing:
                batch.append(f"-N {chain}")
        position: dict[str, int] = {}
        for chain, jumps in chains.items():
            for parent, match in jumps:
                rule = f"-A {parent} {match + ' ' if match else ''}-j {chain}".replace("  ", " ")
                if rule not in saved:
                    position[parent] = position.get(parent, 0) + 1
                    batch.append(rule.replace(f"-A {parent}", f"-I {parent} {position[parent]}", 1))
                else:
                    position[parent] = position.get(parent, 0) + 1
        _restore(table, batch)


def _tagged(lines: Sequence[str], prefix: str) -> list[str]:
    """The -A lines of composer's chains whose comment starts with ``prefix``."""
    found = []
    for line in lines:
        if not line.startswith("-A COMPOSER-"):
            continue
        fields = line.split()
        if "--comment" in fields:
            tag = fields[fields.index("--comment") + 1].strip('"')
            if tag == prefix or tag.startswith(prefix + ":"):
                found.append(line)
    return found


def _remove_tagged(*prefixes: str) -> None:
    """The rules tagged with any of ``prefixes``: one save and one restore per table for all."""
    for table in CHAINS:
        saved = _save(table)
        lines = [line for prefix in prefixes for line in _tagged(saved, prefix)]
        _restore(table, ["-D" + line[2:] for line in lines])
    _drop_empty_chains()


def _drop_empty_chains() -> None:
    for table, chains in CHAINS.items():
        saved = _save(table)
        if any(line.startswith("-A COMPOSER-") for line in saved):
            continue
        batch = [("-D" + line[2:]) for line in saved
                 if line.startswith("-A ") and any(line.endswith(f"-j {c}") for c in chains)
                 and not line.startswith("-A COMPOSER-")]
        existing = {line[1:].split()[0] for line in saved if line.startswith(":")}
        batch += [f"-X {chain}" for chain in chains if chain in existing]
        _restore(table, batch)


def _comment(tag: str) -> str:
    return f"-m comment --comment {tag}"


def add_network(bridge: str, subnets: Sequence[str], *, internal: bool, icc: bool = True,
                masquerade: bool = True) -> None:
    """A network's forwarding, isolation and masquerading rules (idempotent: replaced).
    ``icc`` false drops traffic between its containers (Docker's ``-i br -o br -j DROP``; the
    caller has bridged frames go through iptables); ``masquerade`` false leaves the containers'
    outgoing traffic with their own addresses. A bridge not named ``cmp-*`` (driver_opts
    ``com.docker.network.bridge.name``) is outside BRIDGE_WILDCARD, which the other networks'
    ``! -o cmp-+`` accept rule relies on to keep them out: a rule at the head of
    COMPOSER-FORWARD drops what enters it from elsewhere (but replies and published ports)."""
    tag = f"composer:net:{bridge}"
    c = _comment(tag)
    nat, filt, isolation = [], [f"-A COMPOSER-FORWARD -i {bridge} -o {bridge} {c} -j {'ACCEPT' if icc else 'DROP'}"], []
    custom = not bridge.startswith(BRIDGE_WILDCARD.removesuffix("+"))
    head = ([f"-I COMPOSER-FORWARD 1 -o {bridge} ! -i {bridge} -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT "
             f"{c} -j DROP"] if custom else [])
    for subnet in subnets:
        if ":" in subnet:
            continue  # IPv6: ip6tables is not handled yet
        if not internal and masquerade:
            nat.append(f"-A COMPOSER-POSTROUTING -s {subnet} ! -o {bridge} {c} -j MASQUERADE")
        # containers reaching a published port (hairpin, or on another composer network)
        for out in (BRIDGE_WILDCARD, bridge) if custom else (BRIDGE_WILDCARD,):
            nat.append(f"-A COMPOSER-POSTROUTING -s {subnet} -o {out} -m conntrack --ctstate DNAT {c} -j MASQUERADE")
    # the host reaching a published port on one of its own addresses (not 127.0.0.0/8: the proxy)
    nat.append(f"-A COMPOSER-POSTROUTING -o {bridge} -m addrtype --src-type LOCAL -m conntrack --ctstate DNAT {c} "
               "-j MASQUERADE")
    if internal:
        isolation += [f"-A COMPOSER-ISOLATION -i {bridge} ! -o {bridge} {c} -j DROP",
                      f"-A COMPOSER-ISOLATION -o {bridge} ! -i {bridge} {c} -j DROP"]
    else:
        filt += [f"-A COMPOSER-FORWARD -o {bridge} -m conntrack --ctstate RELATED,ESTABLISHED {c} -j ACCEPT",
                 f"-A COMPOSER-FORWARD -o {bridge} -m conntrack --ctstate DNAT {c} -j ACCEPT",
                 f"-A COMPOSER-FORWARD -i {bridge} ! -o {BRIDGE_WILDCARD} {c} -j ACCEPT"]
        isolation += [f"-A COMPOSER-ISOLATION -i {bridge} {c} -j DROP",
                      f"-A COMPOSER-ISOLATION -o {bridge} {c} -j DROP"]
    with locked():
        _ensure_chains()
        for table in ("nat", "filter"):
            old = _tagged(_save(table), f"composer:net:{bridge}")
            _restore(table, ["-D" + line[2:] for line in old])
        _restore("nat", nat)
        _restore("filter", filt + isolation + head)


def remove_network(bridge: str) -> None:
    """Every rule of the network (its ports included)."""
    with locked():
        _remove_tagged(f"composer:net:{bridge}", f"composer:port:{bridge}")


def is_loopback(host_ip: str | None) -> bool:
    return bool(host_ip) and ipaddress.ip_address(host_ip or "0.0.0.0").is_loopback


def add_ports(bridge: str, key: str, ports: Sequence[PortRule]) -> None:
    """DNAT rules for a container's published ports on ``bridge``; for a port published on a
    loopback address, no DNAT (only the proxy answers there) but a raw PREROUTING drop of what
    is sent to it from anywhere but ``lo``, as Docker adds (moby#41872: a neighbour on the LAN
    sending to 127.0.0.1:P)."""
    c = _comment(f"composer:port:{bridge}:{key}")
    nat, raw = [], []
    for p in ports:
        match = f"-p {p.protocol} -m {p.protocol} --dport {p.host_port}"
        if is_loopback(p.host_ip):
            raw.append(f"-A COMPOSER-PREROUTING -d {p.host_ip}/32 ! -i lo {match} {c} -j DROP")
            continue
        destination = f"-d {p.host_ip} " if p.host_ip and p.host_ip not in ("0.0.0.0", "") else ""
        nat.append(f"-A COMPOSER-DNAT {destination}{match} {c} -j DNAT --to-destination {p.address}:{p.port}")
    with locked():
        _ensure_chains(("nat", "filter", "raw") if raw else ("nat", "filter"))
        _restore("raw", raw)
        _restore("nat", nat)


def remove_ports(bridge: str, key: str) -> None:
    with locked():
        _remove_tagged(f"composer:port:{bridge}:{key}")


def composer_rules() -> list[str]:
    """Every line of iptables-save (nat, filter and raw) that mentions a COMPOSER chain."""
    return [line for table in CHAINS for line in _save(table) if "COMPOSER-" in line]
