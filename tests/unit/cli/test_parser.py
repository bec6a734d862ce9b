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


def test_attach_and_run_terminal_flags() -> None:
    parser = build_parser()
    attach = parser.parse_args(["attach", "--detach-keys", "ctrl-x,x", "--index", "2", "--no-stdin", "web"])
    assert (attach.command, attach.service, attach.detach_keys, attach.index, attach.no_stdin, attach.sig_proxy) == (
        "attach", "web", "ctrl-x,x", 2, True, "true")
    assert parser.parse_args(["attach", "web"]).detach_keys == "ctrl-p,ctrl-q"
    run = parser.parse_args(["run", "-t", "web"])
    assert (run.tty, run.no_tty) == (True, False)
    assert parser.parse_args(["run", "-T", "web", "cat"]).no_tty
