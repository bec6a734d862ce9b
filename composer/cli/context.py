"""What every command receives: ``CommandContext``, made once from the parsed arguments.

It is the one place that loads the project (with the CLI's cache), resolves the project name
when there is no Compose file, makes the backend and runs work with it on the event loop, makes
the progress renderer, and prints the plan for ``--dry-run`` (docker/compose's cmd/compose
``projectOrName`` and ``withBackend``). The command modules import it and nothing of each other.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

from composer.errors import ComposerError
from composer.spec.options import ProjectOptions, checked_project_name

if TYPE_CHECKING:
    from composer.contract.backend import Backend
    from composer.contract.plan import Plan
    from composer.events import EventSink
    from composer.spec.models import Project

T = TypeVar("T")


def project_options(args: argparse.Namespace) -> ProjectOptions:
    return ProjectOptions(
        files=tuple(args.files),
        project_name=args.project_name,
        project_directory=args.project_directory,
        env_files=tuple(args.env_files),
        profiles=tuple(args.profiles),
    )


class CommandContext:
    """One command's project, backend, progress and dry-run, from its parsed arguments."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dry_run: bool = bool(getattr(args, "dry_run", False))
        self.parallel: int | None = getattr(args, "parallel", None)
        self._project: Project | None = None

    def project(self) -> Project:
        """The project the Compose files describe, from the cache when nothing they read changed.

        :raises ComposerError: no Compose file, or an invalid one.
        """
        if self._project is None:
            from composer.engine import load_project_cached

            self._project = load_project_cached(project_options(self.args))
        return self._project

    def project_or_name(self) -> tuple[Project | None, str]:
        """The project and its name or, for the commands that work on a project's containers
        without its file (ps, down, logs, kill...), None and the name: ``-p``, else
        COMPOSE_PROJECT_NAME (v2's projectOrName; with a file, the loader's own precedence:
        ``-p``, COMPOSE_PROJECT_NAME, ``name:``, the folder's name).

        :raises ComposerError: no Compose file and no name given, or an invalid name.
        """
        try:
            project = self.project()
        except ComposerError:
            name = self.args.project_name or os.environ.get("COMPOSE_PROJECT_NAME")
            if not name:
                raise
            return None, checked_project_name(name)
        return project, project.name

    def project_name(self) -> str:
        """The project's name alone: ``-p`` as given (validated), without reading the files;
        else as ``project_or_name`` finds it."""
        if self.args.project_name:
            return checked_project_name(self.args.project_name)
        return self.project_or_name()[1]

    def sink(self, *, quiet: bool = False) -> EventSink:
        """The progress renderer ``--progress`` (or COMPOSE_PROGRESS) asks for; ``quiet``: errors only."""
        from composer.cli.progress import make_renderer

        return make_renderer("quiet" if quiet else self.args.progress)

    def run(self, work: Callable[[Backend], Awaitable[T]]) -> T:
        """Run ``work`` with a new backend on the event loop, closing the backend afterwards."""
        import anyio

        from composer.backends.select import make_backend

        # the result is handed back beside the loop's main task, not as its result: asyncio's Runner,
        # restoring SIGINT's handler, has signal.getsignal() repr() its handler, which holds the
        # task, whose repr holds its result's, whole (a plan, a project: ~1 ms of a cached build)
        outcome: list[T] = []

        async def main() -> None:
            backend = make_backend(self.args.backend)
            try:
                outcome.append(await work(backend))
            finally:
                await backend.aclose()

        anyio.run(main, backend="asyncio")
        return outcome[0]

    def print_plan(self, plan: Plan) -> None:
        """With ``--dry-run``, the plan as it would have been carried out, on stdout."""
        if self.dry_run:
            sys.stdout.write(plan.render() + "\n")


def print_warnings(plan: Plan) -> None:
    for warning in plan.warnings:
        print(f"WARN[0000] {warning}", file=sys.stderr)
