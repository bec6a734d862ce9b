"""``commit`` and ``export``: a service container's filesystem as a new image, or as a tar archive."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, BinaryIO

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import Backend


def split_reference(reference: str | None) -> tuple[str | None, str | None]:
    """``REPOSITORY[:TAG]`` -> (repository, tag); a registry's port is not a tag."""
    if not reference:
        return None, None
    head, sep, tail = reference.rpartition(":")
    if sep and "/" not in tail:
        return head, tail
    return reference, None


def run_commit(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.observed import observed_ref

    args = ctx.args
    project, project_name = ctx.project_or_name()
    repository, tag = split_reference(args.reference)

    async def work(backend: Backend) -> str:
        container = await engine.service_container(project_name, project, backend, args.service, args.index,
                                                   running=False)
        return await backend.commit_container(observed_ref(container), repository, tag, author=args.author,
                                              message=args.message, changes=tuple(args.change), pause=args.pause)

    ctx.run(work)
    return 0


def run_export(ctx: CommandContext) -> int:
    from composer import engine
    from composer.contract.observed import observed_ref

    args = ctx.args
    project, project_name = ctx.project_or_name()
    if not args.output and sys.stdout.isatty():
        raise UsageError("cowardly refusing to save to a terminal. Use the -o flag or redirect")

    def export_to(target: BinaryIO) -> None:
        async def work(backend: Backend) -> None:
            container = await engine.service_container(project_name, project, backend, args.service, args.index,
                                                       running=False)
            await backend.export_container(observed_ref(container), target)

        ctx.run(work)

    if not args.output:
        sys.stdout.flush()
        export_to(sys.stdout.buffer)
        return 0
    partial = f"{args.output}.partial"
    try:
        with open(partial, "wb") as target:
            export_to(target)
        os.replace(partial, args.output)  # written whole or not at all
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    return 0
