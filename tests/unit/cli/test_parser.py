"""The command line as v2 parses it: each command keeps its own flags."""

from __future__ import annotations

from composer.cli.parser import build_parser


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
