"""Argument parsing for the container commands (start, restart, kill, rm, pause, unpause, create,
wait, port, top, ls, images, exec, attach, cp, run), with Compose v2's flags."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from composer.cli.flags import flag_value

if TYPE_CHECKING:
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def _services(parser: argparse.ArgumentParser, nargs: str = "*") -> None:
    parser.add_argument("services", nargs=nargs, metavar="SERVICE")


def add_container_parsers(subparsers: Subparsers) -> None:
    start = subparsers.add_parser("start", help="start services")
    _services(start)

    restart = subparsers.add_parser("restart", help="restart service containers")
    _services(restart)
    restart.add_argument("-t", "--timeout", type=float, default=None, help="shutdown timeout in seconds")
    restart.add_argument("--no-deps", action="store_true", help="don't restart dependent services")

    kill = subparsers.add_parser("kill", help="force stop service containers")
    _services(kill)
    kill.add_argument("-s", "--signal", default="SIGKILL", help="signal to send (default SIGKILL)")
    kill.add_argument("--remove-orphans", action="store_true")

    rm = subparsers.add_parser("rm", help="remove stopped service containers")
    _services(rm)
    rm.add_argument("-f", "--force", action="store_true", help="don't ask to confirm removal")
    rm.add_argument("-s", "--stop", action="store_true", help="stop the containers, if required, before removing")
    rm.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes attached to containers")

    for verb, text in (("pause", "pause services"), ("unpause", "unpause services")):
        _services(subparsers.add_parser(verb, help=text))

    create = subparsers.add_parser("create", help="create containers for a service")
    _services(create)
    create.add_argument("--force-recreate", action="store_true")
    create.add_argument("--no-recreate", action="store_true")
    create.add_argument("--remove-orphans", action="store_true")
    create.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM")
    create.add_argument("--pull", choices=("always", "missing", "never", "build"), default=None)
    create.add_argument("--build", action="store_true", default=None)
    create.add_argument("--no-build", dest="build", action="store_false")

    wait = subparsers.add_parser("wait", help="block until containers of the services stop")
    _services(wait, "+")
    wait.add_argument("--down-project", action="store_true", help="drop the project once the first container stops")

    port = subparsers.add_parser("port", help="print the public port for a port binding")
    port.add_argument("service", metavar="SERVICE")
    port.add_argument("private_port", metavar="PRIVATE_PORT", type=int)
    port.add_argument("--index", type=int, default=1, help="index of the container if the service has replicas")
    port.add_argument("--protocol", choices=("tcp", "udp"), default="tcp")

    top = subparsers.add_parser("top", help="display the running processes")
    _services(top)

    ls = subparsers.add_parser("ls", help="list running compose projects")
    ls.add_argument("-a", "--all", action="store_true", help="show all stopped projects")
    ls.add_argument("-q", "--quiet", action="store_true", help="only display project names")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    ls.add_argument("--filter", action="append", default=[], help="filter output (name=...)")

    volumes = subparsers.add_parser("volumes", help="list volumes")
    _services(volumes)
    volumes.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    volumes.add_argument("--format", default="table",
                         help='"table" (default), "json", "table TEMPLATE" or a Go TEMPLATE')

    images = subparsers.add_parser("images", help="list images used by the created containers")
    _services(images)
    images.add_argument("-q", "--quiet", action="store_true", help="only display image ids")
    images.add_argument("--format", choices=("table", "json"), default="table")

    exec_ = subparsers.add_parser("exec", help="execute a command in a running container")
    exec_.add_argument("-d", "--detach", action="store_true", help="run the command in the background")
    exec_.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true", help="disable pseudo-TTY allocation")
    exec_.add_argument("-u", "--user", help="run the command as this user")
    exec_.add_argument("-w", "--workdir", help="path to the workdir directory for this command")
    exec_.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VAL", help="set variables")
    exec_.add_argument("--index", type=int, default=1, help="index of the container if the service has replicas")
    exec_.add_argument("--privileged", action="store_true", help="give extended privileges to the process")
    exec_.add_argument("-i", "--interactive", action="store_true", default=True, help="keep STDIN open")
    exec_.add_argument("service", metavar="SERVICE")
    exec_.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")

    attach = subparsers.add_parser("attach", help="attach local standard input, output, and error streams "
                                                  "to a service's running container")
    attach.add_argument("--detach-keys", default="ctrl-p,ctrl-q", help="override the key sequence for detaching")
    attach.add_argument("--index", type=int, default=1, help="index of the container if the service has replicas")
    attach.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    attach.add_argument("--sig-proxy", default="true", choices=("true", "false"),
                        help="proxy all received signals to the process (with a terminal, keys reach it as typed)")
    attach.add_argument("service", metavar="SERVICE")

    cp = subparsers.add_parser("cp", help="copy files between a service container and the local filesystem")
    cp.add_argument("source", metavar="SRC")
    cp.add_argument("destination", metavar="DEST")
    cp.add_argument("--index", type=int, default=None, help="index of the container if the service has replicas")
    cp.add_argument("-a", "--archive", action="store_true", help="archive mode (copy all uid/gid information)")
    cp.add_argument("-L", "--follow-link", action="store_true", help="always follow symbol link in SRC_PATH")

    commit = subparsers.add_parser("commit", help="create a new image from a service container's changes")
    commit.add_argument("service", metavar="SERVICE")
    commit.add_argument("reference", nargs="?", metavar="REPOSITORY[:TAG]")
    commit.add_argument("-a", "--author", help='author (e.g., "John Hannibal Smith <hannibal@a-team.com>")')
    commit.add_argument("-c", "--change", action="append", default=[], help="apply Dockerfile instruction")
    commit.add_argument("-m", "--message", help="commit message")
    commit.add_argument("-p", "--pause", type=flag_value, nargs="?", const=True, default=True, metavar="BOOL",
                        help="pause container during commit (default true)")
    commit.add_argument("--index", type=int, default=1, help="index of the container if the service has replicas")

    export = subparsers.add_parser("export", help="export a service container's filesystem as a tar archive")
    export.add_argument("service", metavar="SERVICE")
    export.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    export.add_argument("--index", type=int, default=1, help="index of the container if the service has replicas")

    run = subparsers.add_parser("run", help="run a one-off command on a service")
    run.add_argument("-d", "--detach", action="store_true", help="run the container in the background")
    run.add_argument("--rm", action="store_true", help="remove the container when it exits")
    run.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VAL", help="set variables")
    run.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VAL", help="add or override labels")
    run.add_argument("-u", "--user", help="run as this user")
    run.add_argument("-w", "--workdir", help="working directory inside the container")
    run.add_argument("-v", "--volume", action="append", default=[], help="bind mount a volume")
    run.add_argument("-p", "--publish", action="append", default=[], help="publish a container's port")
    run.add_argument("--entrypoint", help="override the entrypoint of the image")
    run.add_argument("--name", help="assign a name to the container")
    run.add_argument("--no-deps", action="store_true", help="don't start linked services")
    run.add_argument("--service-ports", action="store_true", help="publish the service's ports")
    run.add_argument("--use-aliases", action="store_true", help="use the service's network aliases")
    run.add_argument("-T", "--no-TTY", dest="no_tty", action="store_true", help="disable pseudo-TTY allocation")
    run.add_argument("-t", "--tty", action="store_true",
                     help="allocate a pseudo-TTY (the default when stdin is a terminal)")
    run.add_argument("-i", "--interactive", action="store_true", default=True, help="keep STDIN open")
    run.add_argument("--pull", choices=("always", "missing", "never"), default=None)
    run.add_argument("--cap-add", action="append", default=[], metavar="CAP", help="add Linux capabilities")
    run.add_argument("--cap-drop", action="append", default=[], metavar="CAP", help="drop Linux capabilities")
    run.add_argument("--env-from-file", action="append", default=[], metavar="FILE",
                     help="set environment variables from file")
    run.add_argument("-q", "--quiet", action="store_true", help="don't print the progress")
    run.add_argument("--quiet-pull", action="store_true", help="pull without printing progress information")
    run.add_argument("--build", action="store_true", help="build image before starting container")
    run.add_argument("--remove-orphans", action="store_true",
                     help="remove containers for services not defined in the Compose file")
    run.add_argument("service", metavar="SERVICE")
    run.add_argument("cmd", nargs=argparse.REMAINDER, metavar="COMMAND")
