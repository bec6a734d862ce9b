"""``composer system``: check (residue), df (disk usage) and prune (unused data), through the
chosen backend's SystemCommands (composer.contract.system, found by composer.backends.select).

``system check`` has no docker counterpart; its output, one line per finding on stdout::

    <kind> <name>: <reason>                      (check)
    removed <kind> <name>: <reason>              (check --fix, gone now)
    failed <kind> <name>: <reason>: <error>      (check --fix, still there)

``<kind>`` is one of composer.contract.system.KINDS. ``--format json`` prints one JSON object a
line instead (Kind, Name, Reason, Project, Removed, Error), as docker's ``--format json`` does.
The exit status is 0 when nothing was found and 1 when something was (with ``--fix`` too, so a
second ``--fix`` that exits 0 shows the host is clean), like ``git diff --exit-code``.

``system df`` and ``system prune`` print what ``docker system df`` and ``docker system prune``
print (prune asks first, unless ``-f``); so does ``builder prune`` as ``docker builder prune``
(the build cache: dangling records, or ``--all``; ``--filter until=`` by last use).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.system import PruneOptions, SystemCommands, UsageRow

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_system_parsers(subparsers: Subparsers) -> None:
    system = subparsers.add_parser("system", help="check for residue, show disk usage, prune unused data")
    verbs = system.add_subparsers(dest="system_command", metavar="COMMAND")
    check = verbs.add_parser("check", help="list what composer left on the host that no project accounts for")
    check.add_argument("--fix", action="store_true", help="remove what was found (never a live project's)")
    check.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    df = verbs.add_parser("df", help="show disk usage")
    df.add_argument("--format", choices=("table", "json"), default="table", help="output format")
    prune = verbs.add_parser("prune", help="remove unused data")
    prune.add_argument("-a", "--all", action="store_true", help="remove all unused images, not just dangling ones")
    prune.add_argument("--volumes", action="store_true", help="prune anonymous volumes")
    prune.add_argument("--filter", action="append", default=[], metavar="FILTER",
                       help='provide filter values (e.g. "until=24h", "label=<key>=<value>")')
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    builder = subparsers.add_parser("builder", help="manage the build cache")
    builder_verbs = builder.add_subparsers(dest="builder_command", metavar="COMMAND")
    cache = builder_verbs.add_parser("prune", help="remove build cache")
    cache.add_argument("-a", "--all", action="store_true", help="remove all unused build cache, not just dangling ones")
    cache.add_argument("--filter", action="append", default=[], metavar="FILTER",
                       help='provide filter values (e.g. "until=24h")')
    cache.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")


def _commands(ctx: CommandContext) -> SystemCommands:
    from composer.backends.select import system_commands

    commands = system_commands(ctx.args.backend)
    if commands is None:
        raise UsageError(f"the {ctx.args.backend} backend offers no composer system commands")
    return commands


def run_system(ctx: CommandContext) -> int:
    command = getattr(ctx.args, "system_command", None)
    if command == "check":
        return _check(ctx)
    if command == "df":
        return _df(ctx)
    if command == "prune":
        return _prune(ctx)
    raise UsageError("composer system needs a command: check, df or prune")


def _check(ctx: CommandContext) -> int:
    args = ctx.args
    findings = _commands(ctx).check(fix=args.fix)
    for finding in findings:
        if args.format == "json":
            print(json.dumps(finding.to_json()))
            continue
        line = f"{finding.kind} {finding.name}: {finding.reason}"
        if args.fix:
            line = f"removed {line}" if finding.removed else f"failed {line}: {finding.error}"
        print(line)
    return 1 if findings else 0


def human_size(size: float) -> str:
    """go-units' HumanSize (four significant digits), as ``docker system df`` and prune print sizes."""
    from composer.cli.tables import human_size as sized

    return sized(size, precision=4)


def _reclaimable(row: UsageRow) -> str:
    text = human_size(row.reclaimable)
    if row.size > 0 and row.type != "Build Cache":  # docker's build cache line has no share
        text += f" ({int(row.reclaimable * 100 / row.size)}%)"
    return text


def _df(ctx: CommandContext) -> int:
    from composer.cli.tables import table

    rows = _commands(ctx).disk_usage()
    if ctx.args.format == "json":
        for row in rows:
            print(json.dumps({"Active": str(row.active), "Reclaimable": _reclaimable(row), "Size": human_size(row.size),
                              "TotalCount": str(row.total), "Type": row.type}, separators=(",", ":")))  # docker's
        return 0
    lines = [["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"]]
    lines += [[row.type, str(row.total), str(row.active), human_size(row.size), _reclaimable(row)] for row in rows]
    for line in table(lines, min_width=10, padding=3):
        print(line)
    return 0


def prune_options(args: argparse.Namespace, now: float) -> PruneOptions:
    """The filters docker's system prune accepts: ``until=<time or duration>``, ``label=``, ``label!=``.

    :raises UsageError: another filter, or a malformed one.
    """
    from composer.cli.timestamps import parse_time
    from composer.contract.system import PruneOptions

    until: float | None = None
    labels: list[str] = []
    for item in args.filter:
        key, equals, value = item.partition("=")
        if key == "label!" or (key == "label" and value.startswith("=")):  # label!=x, as docker reads it
            labels.append("!" + value.lstrip("="))
        elif not equals or not value:
            raise UsageError(f'bad format of filter (expected name=value): "{item}"')
        elif key == "until":
            until = parse_time(value, now, "until")
        elif key == "label":
            labels.append(value)
        else:
            raise UsageError(f'invalid filter "{key}"')
    return PruneOptions(all=args.all, volumes=args.volumes, until=until, labels=tuple(labels))


def warning(options: PruneOptions) -> str:
    """docker system prune's question."""
    items = ["all stopped containers", "all networks not used by at least one container"]
    if options.volumes:
        items.append("all anonymous volumes not used by at least one container")
    items.append("all images without at least one container associated to them" if options.all
                 else "all dangling images")
    items.append("unused build cache" if not options.all else "all build cache")
    return "WARNING! This will remove:\n" + "".join(f"  - {item}\n" for item in items)


def _prune(ctx: CommandContext) -> int:
    args = ctx.args
    options = prune_options(args, time.time())
    if not args.force:
        sys.stdout.write(warning(options) + "\nAre you sure you want to continue? [y/N] ")
        sys.stdout.flush()
        answer = sys.stdin.readline().strip().lower()
        if answer not in ("y", "yes"):
            return 0
    report = _commands(ctx).prune(options)
    for heading, items in (("Deleted Containers:", report.containers), ("Deleted Networks:", report.networks),
                           ("Deleted Volumes:", report.volumes), ("Deleted Images:", report.images),
                           ("Deleted build cache objects:", report.build_cache)):
        if items:
            print(heading)
            for item in items:
                print(item)
            print()
    print(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0


BUILDER_WARNINGS = ("WARNING! This will remove all dangling build cache. Are you sure you want to continue?",
                    "WARNING! This will remove all build cache. Are you sure you want to continue?")
"""docker builder prune's questions (without and with --all)."""


def builder_prune_options(args: argparse.Namespace, now: float) -> PruneOptions:
    """docker builder prune's filters: ``until=`` (``unused-for=``, its old name), a duration or a time.

    :raises UsageError: another filter, or a malformed one.
    """
    from composer.cli.timestamps import parse_time
    from composer.contract.system import PruneOptions

    until: float | None = None
    for item in args.filter:
        key, equals, value = item.partition("=")
        if not equals or not value:
            raise UsageError(f'bad format of filter (expected name=value): "{item}"')
        if key not in ("until", "unused-for"):
            raise UsageError(f'invalid filter "{key}" (builder prune takes until=)')
        until = parse_time(value, now, key)
    return PruneOptions(all=args.all, until=until)


def run_builder(ctx: CommandContext) -> int:
    args = ctx.args
    if getattr(args, "builder_command", None) != "prune":
        raise UsageError("composer builder needs a command: prune")
    options = builder_prune_options(args, time.time())
    if not args.force:
        sys.stdout.write(BUILDER_WARNINGS[options.all] + " [y/N] ")
        sys.stdout.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            return 0
    report = _commands(ctx).prune_build_cache(options)
    if report.build_cache:
        print("Deleted build cache objects:")
        for item in report.build_cache:
            print(item)
        print()
    print(f"Total reclaimed space: {human_size(report.reclaimed)}")
    return 0
