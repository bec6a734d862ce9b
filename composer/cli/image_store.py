"""``composer image``: the commands of a backend's own image store (load, save, tag, ls, rm), which
the native backend offers (ImageStoreCommands in composer.contract.backend, found through
composer.backends.select.image_store).

``image load`` reads ``docker save`` archives and OCI layouts (``-i FILE``, or stdin), ``image
save`` writes archives ``docker load`` reads (``-o FILE``, or stdout when it is not a terminal).
They work on the store under COMPOSER_ROOT whatever the default backend is; with ``--backend
docker`` use ``docker load`` and ``docker save``. Every failure is one line and leaves the store
as it was.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from composer.errors import UsageError

if TYPE_CHECKING:
    from composer.cli.context import CommandContext
    from composer.contract.backend import ImageStoreCommands

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_image_store_parsers(subparsers: Subparsers) -> None:
    image = subparsers.add_parser("image", help="manage the native backend's images (load, save, tag, ls, rm)")
    verbs = image.add_subparsers(dest="image_command", metavar="COMMAND")
    load = verbs.add_parser("load", help="load images from a docker save archive or an OCI layout tar")
    load.add_argument("-i", "--input", default="-", metavar="FILE", help="read from FILE instead of stdin")
    load.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")
    save = verbs.add_parser("save", help="save images to a tar archive (docker load reads it)")
    save.add_argument("images", nargs="+", metavar="IMAGE")
    save.add_argument("-o", "--output", default=None, metavar="FILE", help="write to FILE instead of stdout")
    tag = verbs.add_parser("tag", help="give a stored image another name")
    tag.add_argument("source", metavar="SOURCE")
    tag.add_argument("target", metavar="TARGET")
    listing = verbs.add_parser("ls", help="list the stored images")
    listing.add_argument("-q", "--quiet", action="store_true", help="only display image ids")
    remove = verbs.add_parser("rm", help="untag images (their content goes at the next garbage collection)")
    remove.add_argument("images", nargs="+", metavar="IMAGE")


def _store(ctx: CommandContext) -> ImageStoreCommands:
    """The image store's commands, of the backend ``--backend`` names (composer.backends.select.image_store).

    :raises UsageError: that backend keeps no image store of its own.
    """
    from composer.backends.select import image_store

    args = ctx.args
    store = image_store(args.backend)
    if store is None:
        raise UsageError(f"composer image works on the native backend's store; with --backend {args.backend} "
                         f"use docker image {args.image_command}")
    return store


def run_image(ctx: CommandContext) -> int:
    args = ctx.args
    command = getattr(args, "image_command", None)
    if not command:
        raise UsageError("composer image needs a command: load, save, tag, ls or rm")
    if command == "load":
        return _load(ctx)
    if command == "save":
        return _save(ctx)
    if command == "tag":
        return _tag(ctx)
    if command == "rm":
        return _remove(ctx)
    return _list(ctx)


def _load(ctx: CommandContext) -> int:
    args = ctx.args
    if args.input == "-" and sys.stdin.isatty():
        raise UsageError("image load: stdin is a terminal; give an archive with -i FILE or pipe one in")
    source = sys.stdin.buffer if args.input == "-" else Path(args.input)
    loaded = _store(ctx).load_images(source)
    if not args.quiet:
        for name in loaded:
            print(f"Loaded image: {name}")
    return 0


def _save(ctx: CommandContext) -> int:
    args = ctx.args
    if args.output is None and sys.stdout.isatty():
        raise UsageError("image save: refusing to write an archive to a terminal; use -o FILE or a pipe")
    store = _store(ctx)
    if args.output is None:
        sys.stdout.flush()
        store.save_images(args.images, sys.stdout.buffer)
    else:
        store.save_images(args.images, Path(args.output))
    return 0


def _tag(ctx: CommandContext) -> int:
    _store(ctx).tag_image(ctx.args.source, ctx.args.target)
    return 0


def _remove(ctx: CommandContext) -> int:
    for name in _store(ctx).untag_images(ctx.args.images):
        print(f"Untagged: {name}")
    return 0


def _list(ctx: CommandContext) -> int:
    import time

    from composer.cli.tables import human_size, table
    from composer.units import human_duration

    found = _store(ctx).stored_images()
    if ctx.args.quiet:
        for image_id in dict.fromkeys(image.image_id.removeprefix("sha256:")[:12] for image in found):
            print(image_id)
        return 0
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    now = time.time()
    for image in found:
        created = f"{human_duration(now - image.pulled)} ago" if image.pulled else ""
        rows.append([image.repository, image.tag or "<none>", image.image_id.removeprefix("sha256:")[:12], created,
                     human_size(image.size)])
    for line in table(rows):
        print(line)
    return 0
