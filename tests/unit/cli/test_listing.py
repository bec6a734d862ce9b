"""``ps`` and ``ls``: their rows and status filters."""

from __future__ import annotations

import pytest

from composer.cli.listing import ls_rows, ps_rows, status_filters
from composer.cli.tables import combined_status
from composer.contract.backend import ProjectSummary
from composer.contract.observed import ObservedContainer, PortMapping
from composer.errors import UsageError


def test_ps_and_ls_rows() -> None:
    ports = (PortMapping(80, "tcp", "0.0.0.0", 1),)
    found = [ObservedContainer("id", "p-web-1", "web", 1, "h", "running", image="busybox", command="sleep 300",
                               created=100.0, status_text="Up 2 seconds", ports=ports)]
    assert ps_rows(found, now=102.5)[1] == ["p-web-1", "busybox", '"sleep 300"', "web", "2 seconds ago",
                                            "Up 2 seconds", "0.0.0.0:1->80/tcp"]
    assert combined_status(["running", "exited", "running"]) == "exited(1), running(2)"
    assert ls_rows([ProjectSummary("p", ("running",), ("/a.yaml", "/b.yaml"))])[1] == ["p", "running(1)",
                                                                                         "/a.yaml,/b.yaml"]


def test_status_filters() -> None:
    assert status_filters(["exited"], ["status=running"]) == {"exited", "running"}
    with pytest.raises(UsageError):
        status_filters(["sleeping"], [])
    with pytest.raises(UsageError):
        status_filters([], ["name=x"])
