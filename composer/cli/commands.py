"""Which module runs each command, and the two commands with no engine (config, version); every
``run_<verb>`` receives the command's CommandContext (composer.cli.context). No business logic."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from composer.cli.context import CommandContext, project_options


def run_config(ctx: CommandContext) -> int:
    from composer.spec.config_output import ConfigRequest, render_config  # the YAML stack: config's alone

    args = ctx.args
    if args.environment:
        return _config_environment(ctx)
    if args.variables:
        return _config_variables(ctx)
    request = ConfigRequest(
        services=tuple(args.services),
        format=args.format or "yaml",
        list_services=args.list_services,
        list_volumes=args.list_volumes,
        list_networks=args.list_networks,
        list_profiles=args.list_profiles,
        list_images=args.list_images,
        hash_services=args.hash,
        interpolate=not args.no_interpolate,
        normalize=not args.no_normalize,
        consistency=not args.no_consistency,
        resolve_paths=not args.no_path_resolution,
    )
    result = render_config(project_options(args), request)
    for warning in result.warnings:
        print(f"WARN[0000] {warning}", file=sys.stderr)
    if args.quiet:
        return 0
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(result.text)
    else:
        sys.stdout.write(result.text)
    return 0


def _config_environment(ctx: CommandContext) -> int:
    """``config --environment``: the variables interpolation sees (the process's, .env's and
    --env-file's, v2's precedence), with COMPOSE_PROJECT_NAME, sorted, NAME=value a line."""
    from composer.spec.options import resolve_options

    environment = dict(resolve_options(project_options(ctx.args)).environment)
    environment["COMPOSE_PROJECT_NAME"] = ctx.project().name
    for name in sorted(environment):
        print(f"{name}={environment[name]}")
    return 0


def _config_variables(ctx: CommandContext) -> int:
    """``config --variables``: each variable the files use, whether it is required, its default
    and its alternate value; a table (v2's columns) or, with --format json, v2's object."""
    from composer.cli.tables import table
    from composer.spec.config_output import ConfigRequest, render_config
    from composer.spec.variables import extract

    raw = render_config(project_options(ctx.args), ConfigRequest(
        services=(), format="json", list_services=False, list_volumes=False, list_networks=False,
        list_profiles=False, list_images=False, hash_services=None, interpolate=False, normalize=False,
        consistency=False, resolve_paths=False))
    variables = extract(json.loads(raw.text))
    if ctx.args.format == "json":
        print(json.dumps({name: {"Name": v.name, "DefaultValue": v.default, "PresenceValue": v.presence,
                                 "Required": v.required} for name, v in sorted(variables.items())}, indent=4)
              + "\n")  # v2 ends it with a blank line
        return 0
    rows = [["NAME", "REQUIRED", "DEFAULT VALUE", "ALTERNATE VALUE"]]
    rows += [[v.name, "true" if v.required else "false", v.default, v.presence]
             for _, v in sorted(variables.items())]
    for line in table(rows, padding=3, min_width=20):
        print(line)
    return 0


def run_version(ctx: CommandContext) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from composer.backends.select import choose_backend
    from composer.labels import COMPATIBLE_VERSION

    args = ctx.args
    try:
        composer_version = version("composer-orchestrator")
    except PackageNotFoundError:
        composer_version = "unknown"
    if args.short:
        print(composer_version)
        return 0
    choice = choose_backend(args.backend)
    if args.format == "json":
        print(json.dumps({"version": composer_version, "backend": choice.name, "reason": choice.reason,
                          "compose_compatibility": COMPATIBLE_VERSION}))
    else:
        print(f"composer version {composer_version} (Compose v{COMPATIBLE_VERSION} compatible)")
        print(f"backend: {choice.name} ({choice.reason})")
    return 0


# Each command's module, imported when the command runs (``composer config`` never pays for the
# engine's): one module per group of commands, each with a ``run_<verb>(ctx)``.
MODULES: dict[str, tuple[str, ...]] = {
    "lifecycle": ("up", "down", "create", "start", "stop", "restart", "kill", "pause", "unpause", "rm", "wait",
                  "scale"),
    "listing": ("ps", "ls", "images", "top", "port", "volumes"),
    "logs": ("logs",),
    "exec_run": ("exec", "run", "attach"),
    "cp": ("cp",),
    "snapshot": ("commit", "export"),
    "watch": ("watch",),
    "stats": ("stats",),
    "build_pull_push": ("build", "pull", "push"),
    "engine_events": ("events",),
    "image_store": ("image",),
    "system": ("system", "builder"),
}


def _in_module(module: str, verb: str) -> Callable[[CommandContext], int]:
    def run(ctx: CommandContext) -> int:
        import importlib

        command: Callable[[CommandContext], int] = getattr(importlib.import_module(f"composer.cli.{module}"),
                                                           f"run_{verb}")
        return command(ctx)

    return run


COMMANDS: dict[str, Callable[[CommandContext], int]] = {
    "config": run_config,
    "version": run_version,
    **{verb: _in_module(module, verb) for module, verbs in MODULES.items() for verb in verbs},
}


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.command](CommandContext(args))
