"""Argument parsing for every command; one ``add_<verb>_parser`` per command."""

from __future__ import annotations

import argparse

from composer.cli.container_parser import add_container_parsers
from composer.cli.flags import flag_value
from composer.cli.image_store import add_image_store_parsers
from composer.cli.system import add_system_parsers


def _add_global_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--file", dest="files", action="append", default=[], metavar="FILE",
                        help="Compose configuration files (repeatable; - for stdin)")
    parser.add_argument("-p", "--project-name", dest="project_name", help="project name")
    parser.add_argument("--project-directory", dest="project_directory",
                        help="alternate working directory (default: the first file's folder)")
    parser.add_argument("--env-file", dest="env_files", action="append", default=[], metavar="PATH",
                        help="alternate environment files (repeatable)")
    parser.add_argument("--profile", dest="profiles", action="append", default=[], metavar="PROFILE",
                        help="profiles to enable (repeatable)")
    parser.add_argument("--backend", help="backend to use: native, docker or swarm (default: COMPOSER_BACKEND, then "
                        "native where it can run, else docker)")
    parser.add_argument("--progress", choices=("auto", "tty", "plain", "json", "quiet"),
                        help="progress output (default: COMPOSE_PROGRESS, then auto)")
    parser.add_argument("--dry-run", action="store_true", help="show what would be done; change nothing")
    parser.add_argument("--parallel", type=int, default=None, help="at most this many engine calls at once")


def add_config_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    config = subparsers.add_parser("config", help="parse, resolve and render the Compose file")
    config.add_argument("services", nargs="*", metavar="SERVICE")
    config.add_argument("--format", choices=("yaml", "json"), default=None, help="output format (default yaml)")
    for flag, dest, help_text in (
        ("--services", "list_services", "print the service names, one per line"),
        ("--volumes", "list_volumes", "print the volume names, one per line"),
        ("--networks", "list_networks", "print the network names, one per line"),
        ("--profiles", "list_profiles", "print the profile names, one per line"),
        ("--images", "list_images", "print the image names, one per line"),
        ("--no-interpolate", "no_interpolate", "don't interpolate environment variables"),
        ("--no-normalize", "no_normalize", "don't normalize the model"),
        ("--no-consistency", "no_consistency", "don't check model consistency"),
        ("--no-path-resolution", "no_path_resolution", "don't resolve file paths"),
    ):
        config.add_argument(flag, dest=dest, action="store_true", help=help_text)
    config.add_argument("--environment", action="store_true", help="print the environment used for interpolation")
    config.add_argument("--variables", action="store_true", help="print the model's variables and default values")
    config.add_argument("--hash", metavar="SERVICES", help='print the config hash of services ("*" for all)')
    config.add_argument("-o", "--output", help="save to this file instead of stdout")
    config.add_argument("-q", "--quiet", action="store_true", help="only validate the configuration")


def add_version_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    version = subparsers.add_parser("version", help="show the version and the backend in use")
    version.add_argument("--format", choices=("pretty", "json"), default="pretty")
    version.add_argument("--short", action="store_true", help="print only the version")


# Built by the command server before it forks (each worker parses one command line with it): the
# ~200 arguments cost ~15 ms to declare. A process that runs commands itself builds one per command.
prebuilt: argparse.ArgumentParser | None = None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="composer", description="A Compose-first container orchestrator")
    _add_global_options(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_config_parser(subparsers)
    add_version_parser(subparsers)
    add_lifecycle_parsers(subparsers)
    add_container_parsers(subparsers)
    add_image_parsers(subparsers)
    add_image_store_parsers(subparsers)
    add_system_parsers(subparsers)
    return parser


def add_lifecycle_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    up = subparsers.add_parser("up", help="create and start containers")
    up.add_argument("services", nargs="*", metavar="SERVICE")
    up.add_argument("-d", "--detach", action="store_true", help="run containers in the background")
    up.add_argument("--wait", action="store_true", help="wait for services to be running|healthy (implies -d)")
    up.add_argument("--wait-timeout", type=float, default=None, help="seconds to wait with --wait")
    up.add_argument("--force-recreate", action="store_true")
    up.add_argument("--no-recreate", action="store_true")
    up.add_argument("--always-recreate-deps", action="store_true")
    up.add_argument("--renew-anon-volumes", "-V", action="store_true")
    up.add_argument("--no-deps", action="store_true", help="don't start linked services")
    up.add_argument("--no-start", action="store_true", help="don't start the services after creating them")
    up.add_argument("--remove-orphans", action="store_true")
    up.add_argument("-t", "--timeout", type=float, default=None, help="shutdown timeout in seconds")
    up.add_argument("--scale", action="append", default=[], metavar="SERVICE=NUM")
    up.add_argument("--pull", choices=("always", "missing", "never", "build"), default=None)
    up.add_argument("--build", action="store_true", default=None)
    up.add_argument("--no-build", dest="build", action="store_false")
    up.add_argument("--no-log-prefix", action="store_true")
    up.add_argument("--abort-on-container-exit", action="store_true",
                    help="stop all containers if any container was stopped")
    up.add_argument("--abort-on-container-failure", action="store_true",
                    help="stop all containers if any container exited with failure")
    up.add_argument("--exit-code-from", metavar="SERVICE",
                    help="return the exit code of the selected service (implies --abort-on-container-exit)")
    up.add_argument("--attach", action="append", default=[], metavar="SERVICE",
                    help="restrict attaching to these services (repeatable)")
    up.add_argument("--no-attach", action="append", default=[], metavar="SERVICE",
                    help="do not attach (stream logs) to these services (repeatable)")
    up.add_argument("--attach-dependencies", action="store_true", help="also attach to the dependencies")
    up.add_argument("--no-color", action="store_true", help="produce monochrome output")
    up.add_argument("--timestamps", action="store_true", help="show timestamps")
    up.add_argument("--quiet-pull", action="store_true", help="pull without printing progress information")
    up.add_argument("--quiet-build", action="store_true", help="suppress the build output")
    up.add_argument("-w", "--watch", action="store_true",
                    help="watch source code and rebuild/refresh containers when files are updated")

    watch = subparsers.add_parser("watch", help="watch the build context of services and rebuild or refresh "
                                  "their containers when files are updated")
    watch.add_argument("services", nargs="*", metavar="SERVICE")
    watch.add_argument("--no-up", action="store_true", help="do not build and start the services before watching")
    watch.add_argument("--quiet", action="store_true", help="hide build output")

    down = subparsers.add_parser("down", help="stop and remove containers, networks")
    down.add_argument("services", nargs="*", metavar="SERVICE")
    down.add_argument("-v", "--volumes", action="store_true", help="remove named and anonymous volumes")
    down.add_argument("--remove-orphans", action="store_true")
    down.add_argument("-t", "--timeout", type=float, default=None)
    down.add_argument("--rmi", choices=("local", "all"), default=None,
                      help='remove images used by services: "local" only the built ones, "all" every one')

    scale = subparsers.add_parser("scale", help="scale services")
    scale.add_argument("scale", nargs="+", metavar="SERVICE=REPLICAS")
    scale.add_argument("--no-deps", action="store_true", help="don't start linked services")

    stop = subparsers.add_parser("stop", help="stop services")
    stop.add_argument("services", nargs="*", metavar="SERVICE")
    stop.add_argument("-t", "--timeout", type=float, default=None)

    ps = subparsers.add_parser("ps", help="list containers")
    ps.add_argument("services", nargs="*", metavar="SERVICE")
    ps.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    ps.add_argument("-q", "--quiet", action="store_true", help="only display ids")
    ps.add_argument("--services", dest="list_services", action="store_true", help="display services")
    ps.add_argument("--format", default="table",
                    help='"table" (default), "json", "table TEMPLATE" or a Go TEMPLATE ({{.Name}}, {{json .}}...)')
    ps.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    ps.add_argument("--orphans", type=flag_value, nargs="?", const=True, default=True, metavar="BOOL",
                    help="include orphaned services (not declared by project) (default true)")
    ps.add_argument("--status", action="append", default=[], metavar="STATUS",
                    help="filter by status: paused, restarting, removing, running, dead, created, exited")
    ps.add_argument("--filter", action="append", default=[], metavar="status=STATUS", help="filter output")

    logs = subparsers.add_parser("logs", help="view output from containers")
    logs.add_argument("services", nargs="*", metavar="SERVICE")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", default="all")
    logs.add_argument("--no-log-prefix", action="store_true")
    logs.add_argument("--since", help="show logs since a timestamp (2013-01-02T13:23:37Z) or relative (42m)")
    logs.add_argument("--until", help="show logs before a timestamp (2013-01-02T13:23:37Z) or relative (42m)")
    logs.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    logs.add_argument("--no-color", action="store_true", help="produce monochrome output")
    logs.add_argument("--index", type=int, default=None, help="index of the container if the service has replicas")

    stats = subparsers.add_parser("stats", help="display a live stream of container(s) resource usage statistics")
    stats.add_argument("service", nargs="?", metavar="SERVICE")
    stats.add_argument("-a", "--all", action="store_true", help="show all containers (default shows just running)")
    stats.add_argument("--format", default="", help='"table" (default), "json", "table TEMPLATE" or a Go TEMPLATE')
    stats.add_argument("--no-stream", action="store_true",
                       help="disable streaming stats and only pull the first result")
    stats.add_argument("--no-trunc", action="store_true", help="do not truncate output")

    events = subparsers.add_parser("events", help="receive real time events from containers")
    events.add_argument("services", nargs="*", metavar="SERVICE")
    events.add_argument("--json", action="store_true", help="output events as a stream of json objects")


def add_image_parsers(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    build = subparsers.add_parser("build", help="build or rebuild services")
    build.add_argument("services", nargs="*", metavar="SERVICE")
    build.add_argument("--no-cache", action="store_true", help="do not use cache when building the image")
    build.add_argument("--pull", action="store_true", help="always attempt to pull a newer version of the image")
    build.add_argument("--build-arg", dest="build_args", action="append", default=[], metavar="KEY=VALUE",
                       help="set build-time variables for services (repeatable)")
    build.add_argument("--with-dependencies", action="store_true", help="also build dependencies")
    build.add_argument("--push", action="store_true", help="push service images after building")
    build.add_argument("-q", "--quiet", action="store_true", help="don't print anything")

    pull = subparsers.add_parser("pull", help="pull service images")
    pull.add_argument("services", nargs="*", metavar="SERVICE")
    pull.add_argument("--ignore-pull-failures", action="store_true", help="pull what it can, ignore the failures")
    pull.add_argument("--ignore-buildable", action="store_true", help="ignore images that can be built")
    pull.add_argument("--include-deps", action="store_true", help="also pull the services declared as dependencies")
    pull.add_argument("--policy", choices=("missing", "always"), default=None, help="apply this pull policy")
    pull.add_argument("-q", "--quiet", action="store_true", help="pull without printing progress information")

    push = subparsers.add_parser("push", help="push service images")
    push.add_argument("services", nargs="*", metavar="SERVICE")
    push.add_argument("--ignore-push-failures", action="store_true", help="push what it can, ignore the failures")
    push.add_argument("-q", "--quiet", action="store_true", help="push without printing progress information")
