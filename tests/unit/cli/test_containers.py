"""Pure parts of the container commands: argument parsing and v2's tables, durations, sizes."""

from __future__ import annotations

import pytest

from composer.cli.cp import split_container_path
from composer.cli.exec_run import parse_env
from composer.cli.listing import ls_rows, ps_rows, published_port, status_filters
from composer.cli.parser import build_parser
from composer.cli.tables import combined_status, format_ports, human_size, table
from composer.contract.backend import ProjectSummary
from composer.contract.observed import ObservedContainer, PortMapping
from composer.errors import UsageError


def test_exec_and_run_keep_the_command_with_its_own_flags() -> None:
    parser = build_parser()
    args = parser.parse_args(["exec", "-T", "-e", "A=1", "--index", "2", "db", "sh", "-c", "echo -n hi"])
    assert (args.command, args.service, args.cmd, args.no_tty, args.env, args.index) == (
        "exec", "db", ["sh", "-c", "echo -n hi"], True, ["A=1"], 2)
    run = parser.parse_args(["run", "--rm", "-p", "8080:80", "-v", "./a:/a", "--entrypoint", "sh", "web", "-x"])
    assert (run.rm, run.publish, run.volume, run.entrypoint, run.service, run.cmd) == (
        True, ["8080:80"], ["./a:/a"], "sh", "web", ["-x"])
    assert parser.parse_args(["kill", "db"]).signal == "SIGKILL"
    rm = parser.parse_args(["rm", "-fsv", "db"])
    assert (rm.force, rm.stop, rm.volumes, rm.services) == (True, True, True, ["db"])
    port = parser.parse_args(["port", "--protocol", "udp", "web", "53"])
    assert (port.service, port.private_port, port.protocol, port.index) == ("web", 53, "udp", 1)
    ps = parser.parse_args(["ps", "--status", "exited", "--filter", "status=running"])
    assert (ps.status, ps.filter) == (["exited"], ["status=running"])


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


def test_ps_and_ls_rows() -> None:
    ports = (PortMapping(80, "tcp", "0.0.0.0", 1),)
    found = [ObservedContainer("id", "p-web-1", "web", 1, "h", "running", image="busybox", command="sleep 300",
                               created=100.0, status_text="Up 2 seconds", ports=ports)]
    assert ps_rows(found, now=102.5)[1] == ["p-web-1", "busybox", '"sleep 300"', "web", "2 seconds ago",
                                            "Up 2 seconds", "0.0.0.0:1->80/tcp"]
    assert combined_status(["running", "exited", "running"]) == "exited(1), running(2)"
    assert ls_rows([ProjectSummary("p", ("running",), ("/a.yaml", "/b.yaml"))])[1] == ["p", "running(1)",
                                                                                         "/a.yaml,/b.yaml"]


def test_env_paths_and_status_filters() -> None:
    assert parse_env(["A=1", "B", "C=x=y", "D"], {"B": "from-env"}) == {"A": "1", "B": "from-env", "C": "x=y"}
    assert split_container_path("db:/tmp/x") == ("db", "/tmp/x")
    assert split_container_path("./db:x") == (None, "./db:x")
    assert split_container_path("/abs/path") == (None, "/abs/path")
    assert status_filters(["exited"], ["status=running"]) == {"exited", "running"}
    with pytest.raises(UsageError):
        status_filters(["sleeping"], [])
    with pytest.raises(UsageError):
        status_filters([], ["name=x"])
