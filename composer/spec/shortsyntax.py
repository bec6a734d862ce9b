"""Parsers for Compose's short syntaxes: ports, volumes, devices, extra hosts.

Each returns the long form as plain dicts, exactly as Compose v2 expands it (port ranges
become one entry per port, in v2's sort order). Errors are ValueError with v2's wording;
the canonical stage attaches the model path.
"""

from __future__ import annotations

import ipaddress
from typing import Any

_PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


def _port_range(text: str) -> tuple[int, int]:
    if "-" not in text:
        port = _port_number(text)
        return port, port
    start_text, _, end_text = text.partition("-")
    start, end = _port_number(start_text), _port_number(end_text)
    if end < start:
        raise ValueError(f"invalid range specified for port: {text}")
    return start, end


def _port_number(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise ValueError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    return int(text)


def _split_port_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def _split_proto(text: str) -> tuple[str, str]:
    parts = text.split("/")
    if not text or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def _host_ip(ip: str) -> str:
    if ip.startswith("["):
        if not ip.endswith("]"):
            raise ValueError(f"invalid IP address {ip}")
        ip = ip[1:-1]
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ValueError(f"invalid IP address: {ip}") from None
    return ip


def parse_port(raw: str) -> list[dict[str, Any]]:
    """``[HOST_IP:][PUBLISHED:]TARGET[/PROTOCOL]`` with ranges, as a list of long-form ports."""
    ip, host_port, container_part = _split_port_parts(raw)
    proto, container_port = _split_proto(container_part)
    ip = _host_ip(ip)
    if not container_port:
        raise ValueError(f"no port specified: {raw}<empty>")
    try:
        start, end = _port_range(container_port)
    except ValueError:
        raise ValueError(f"invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = _port_range(host_port)
        except ValueError:
            raise ValueError(f"invalid hostPort: {host_port}") from None
        if end - start != host_end - host_start and end != start:
            raise ValueError(
                f"invalid ranges specified for container and host Ports: {container_port} and {host_port}"
            )
    proto = proto.lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise ValueError(f"invalid proto: {proto}")
    count = end - start + 1
    entries = []
    for offset in range(count):
        published = ""
        if host_port:
            published = str(host_start + offset)
            if count == 1 and host_start != host_end:
                published += f"-{host_end}"
        entries.append((f"{start + offset}/{proto}", start + offset, published))
    # v2 sorts the expanded ports by their "<port>/<proto>" text.
    entries.sort(key=lambda entry: entry[0])
    ports = []
    for _key, target, published in entries:
        port: dict[str, Any] = {"mode": "ingress"}
        if ip:
            port["host_ip"] = ip
        port["target"] = target
        if published:
            port["published"] = published
        port["protocol"] = proto
        ports.append(port)
    return ports


def _is_file_path(source: str) -> bool:
    if not source:
        return False
    if source[0] in "./~" or source.startswith("\\\\"):
        return True
    return len(source) >= 2 and source[0].isalpha() and source[1] == ":"


def _is_windows_drive(buffer: str, char: str) -> bool:
    return char == ":" and len(buffer) == 1 and buffer.isalpha()


def parse_volume(spec: str) -> dict[str, Any]:
    """``[SOURCE:]TARGET[:MODE]`` as a long-form volume mount."""
    if not spec:
        raise ValueError("invalid empty volume spec")
    if len(spec) <= 2:
        return {"type": "volume", "target": spec, "volume": {}}
    fields: dict[str, Any] = {}
    buffer = ""
    for char in spec:
        if _is_windows_drive(buffer, char):
            buffer += char
        elif char == ":":
            _volume_field(spec, buffer, fields, end=False)
            buffer = ""
        else:
            buffer += char
    _volume_field(spec, buffer, fields, end=True)
    return _volume_long_form(fields)


def _volume_field(spec: str, buffer: str, fields: dict[str, Any], *, end: bool) -> None:
    if not buffer:
        raise ValueError(f"invalid spec: {spec}: empty section between colons")
    if "source" not in fields and end:
        fields["target"] = buffer
    elif "source" not in fields:
        fields["source"] = buffer
    elif "target" not in fields:
        fields["target"] = buffer
    elif not end:
        raise ValueError(f"invalid spec: {spec}: too many colons")
    else:
        fields["options"] = buffer.split(",")


def _volume_long_form(fields: dict[str, Any]) -> dict[str, Any]:
    source = fields.get("source", "")
    options: list[str] = fields.get("options", [])
    is_bind = _is_file_path(source)
    volume: dict[str, Any] = {"type": "bind" if is_bind else "volume"}
    if source:
        volume["source"] = source
    volume["target"] = fields["target"]
    read_only = False
    bind: dict[str, Any] = {}
    volume_options: dict[str, Any] = {}
    for option in options:
        if option == "ro":
            read_only = True
        elif option == "rw":
            read_only = False
        elif option == "nocopy":
            volume_options["nocopy"] = True
        elif option in _PROPAGATIONS:
            bind["propagation"] = option
        elif option in ("z", "Z"):
            bind["selinux"] = option
    if read_only:
        volume["read_only"] = True
    if is_bind:
        bind["create_host_path"] = True
        volume["bind"] = bind
    else:
        if bind:
            volume["bind"] = bind
        volume["volume"] = volume_options
    return volume


def parse_device(spec: str) -> dict[str, Any]:
    """``SOURCE[:TARGET[:PERMISSIONS]]`` as a long-form device mapping."""
    parts = spec.split(":")
    if len(parts) > 3 or not parts[0]:
        raise ValueError(f"invalid device specification: {spec}")
    source = parts[0]
    target = parts[1] if len(parts) > 1 and parts[1] else source
    permissions = parts[2] if len(parts) > 2 else "rwm"
    # As in v2, "SOURCE:rw" names a target "rw": permissions only come third.
    return {"source": source, "target": target, "permissions": permissions}


def parse_extra_host(entry: str) -> tuple[str, str]:
    """``host=ip`` or ``host:ip`` (IPv6 allowed after the first colon) as (host, ip)."""
    if "=" in entry:
        host, _, ip = entry.partition("=")
    else:
        host, sep, ip = entry.partition(":")
        if not sep:
            raise ValueError(f"invalid additional host, missing IP: {entry}")
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    return host, ip
