"""v2's tables: tabwriter padding, sizes and ports as v2 prints them."""

from __future__ import annotations

from composer.cli.listing import published_port
from composer.cli.tables import format_ports, human_size, table
from composer.contract.observed import PortMapping


def test_table_pads_like_tabwriter() -> None:
    rows = [["NAME", "STATUS"], ["a", "running(1)"]]
    assert table(rows) == ["NAME   STATUS", "a      running(1)"]
    assert table(rows, min_width=20)[0] == "NAME".ljust(20) + "STATUS"
    assert table([["A", "B", ""], ["x", "y", ""]]) == ["A   B", "x   y"]


def test_human_size() -> None:
    assert human_size(1985472) == "1.99MB"
    assert human_size(512) == "512B"
    assert human_size(1_500_000_000) == "1.5GB"


def test_ports_as_v2_prints_them() -> None:
    ports = (PortMapping(80, "tcp", "0.0.0.0", 32768), PortMapping(80, "tcp", "::", 32768), PortMapping(443))
    assert format_ports(ports) == "0.0.0.0:32768->80/tcp, [::]:32768->80/tcp, 443/tcp"
    assert published_port(ports, 80, "tcp") == "0.0.0.0:32768"
    assert published_port(ports, 80, "udp") is None
    assert published_port(ports, 443, "tcp") is None
