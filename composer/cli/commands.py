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
    "lifecycle": ("up", "down", "create", "start", "stop", "restart", "kill", "pause", "unpause", "rm", "wait"),
    "listing": ("ps", "ls", "images", "top", "port"),
    "logs": ("logs",),
    "exec_run": ("exec", "run"),
    "cp": ("cp",),
    "build_pull_push": ("build", "pull", "push"),
    "engine_events": ("events",),
    "image_store": ("image",),
    "system": ("system",),
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
