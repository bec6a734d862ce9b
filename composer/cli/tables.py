"""The text the listing commands print as Compose v2 and ``docker`` print it: Go's tabwriter
columns, go-units' sizes (its durations: composer.units), published ports, a project's combined
status. Pure."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from composer.contract.observed import PortMapping


def table(rows: Sequence[Sequence[str]], *, padding: int = 3, min_width: int = 0) -> list[str]:
    """Columns as Go's tabwriter lays them out: each cell padded to its column's width plus
    ``padding`` (at least ``min_width``); the last column unpadded, trailing spaces dropped."""
    if not rows:
        return []
    count = max(len(row) for row in rows)
    widths = [max(min_width, max(len(row[i]) if i < len(row) else 0 for row in rows) + padding)
              for i in range(count)]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append("".join(cells).rstrip())
    return lines


def human_size(size: float, precision: int = 3) -> str:
    """go-units' HumanSizeWithPrecision(size, precision): decimal units, three significant digits
    by default (docker's listings), four for HumanSize (``system df``, prune's total)."""
    units = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")
    index = 0
    while size >= 1000 and index < len(units) - 1:
        size /= 1000
        index += 1
    return f"{size:.{precision}g}{units[index]}"


def format_ports(ports: Iterable[PortMapping]) -> str:
    """``0.0.0.0:32768->80/tcp, [::]:32768->80/tcp``, or ``80/tcp`` for an exposed port."""
    parts = []
    for port in ports:
        if port.host_port is None:
            parts.append(f"{port.private_port}/{port.protocol}")
            continue
        host = port.host_ip or "0.0.0.0"
        host = f"[{host}]" if ":" in host else host
        parts.append(f"{host}:{port.host_port}->{port.private_port}/{port.protocol}")
    return ", ".join(dict.fromkeys(parts))


def combined_status(states: Iterable[str]) -> str:
    """v2's project status: ``running(2)``, ``exited(1), running(1)`` (states sorted)."""
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    return ", ".join(f"{state}({counts[state]})" for state in sorted(counts))
