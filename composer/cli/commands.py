"""Glue from parsed arguments to the library, one ``run_<verb>`` per command; no business logic."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from composer.spec.options import ProjectOptions


def project_options(args: argparse.Namespace) -> ProjectOptions:
    return ProjectOptions(
        files=tuple(args.files),
        project_name=args.project_name,
        project_directory=args.project_directory,
        env_files=tuple(args.env_files),
        profiles=tuple(args.profiles),
    )


def run_config(args: argparse.Namespace) -> int:
    from composer.spec.config_output import ConfigRequest, render_config  # the YAML stack: config's alone

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


def run_version(args: argparse.Namespace) -> int:
    from importlib.metadata import PackageNotFoundError, version

    from composer.backends.select import choose_backend
    from composer.labels import COMPATIBLE_VERSION

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


def _lifecycle(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from composer.cli import lifecycle

        command: Callable[[argparse.Namespace], int] = getattr(lifecycle, f"run_{verb}")
        return command(args)

    return run


def _images(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from composer.cli import images

        command: Callable[[argparse.Namespace], int] = getattr(images, f"run_{verb}")
        return command(args)

    return run


def _containers(verb: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from composer.cli import containers

        command: Callable[[argparse.Namespace], int] = getattr(containers, f"run_{verb}")
        return command(args)

    return run


def _events(args: argparse.Namespace) -> int:
    from composer.cli import engine_events

    return engine_events.run_events(args)


def _image_store(args: argparse.Namespace) -> int:
    from composer.cli import image_store

    return image_store.run_image(args)


CONTAINER_VERBS = ("ps", "start", "restart", "kill", "rm", "pause", "unpause", "create", "wait", "port", "top", "ls",
                   "images", "exec", "cp", "run")

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "config": run_config,
    "version": run_version,
    **{verb: _lifecycle(verb) for verb in ("up", "down", "stop", "logs")},
    **{verb: _containers(verb) for verb in CONTAINER_VERBS},
    **{verb: _images(verb) for verb in ("build", "pull", "push")},
    "image": _image_store,
    "events": _events,
}


def run(args: argparse.Namespace) -> int:
    return COMMANDS[args.command](args)
