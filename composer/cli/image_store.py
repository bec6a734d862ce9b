"""``composer image``: the native backend's image store (load, save, tag, ls, rm).

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
    from composer.backends.native.image.store import ImageStore

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


def _store(args: argparse.Namespace) -> ImageStore:
    from composer.backends.native.image.store import ImageStore
    from composer.backends.select import choose_backend

    if args.backend and choose_backend(args.backend).name != "native":
        raise UsageError(f"composer image works on the native backend's store; with --backend {args.backend} "
                         f"use docker image {args.image_command}")
    return ImageStore.open()


def run_image(args: argparse.Namespace) -> int:
    command = getattr(args, "image_command", None)
    if not command:
        raise UsageError("composer image needs a command: load, save, tag, ls or rm")
    if command == "load":
        return _load(args)
    if command == "save":
        return _save(args)
    if command == "tag":
        return _tag(args)
    if command == "rm":
        return _remove(args)
    return _list(args)


def _load(args: argparse.Namespace) -> int:
    from composer.backends.native.image import archive
    from composer.image_reference import parse

    if args.input == "-" and sys.stdin.isatty():
        raise UsageError("image load: stdin is a terminal; give an archive with -i FILE or pipe one in")
    store = _store(args)
    source = sys.stdin.buffer if args.input == "-" else Path(args.input)
    records = archive.load(store, source)
    if not args.quiet:
        for record in records:
            print(f"Loaded image: {parse(record.reference).familiar()}")
    return 0


def _save(args: argparse.Namespace) -> int:
    from composer.backends.native.image import archive

    if args.output is None and sys.stdout.isatty():
        raise UsageError("image save: refusing to write an archive to a terminal; use -o FILE or a pipe")
    store = _store(args)
    if args.output is None:
        sys.stdout.flush()
        archive.save(store, args.images, sys.stdout.buffer)
    else:
        archive.save_to_path(store, args.images, Path(args.output))
    return 0


def _tag(args: argparse.Namespace) -> int:
    import time

    from composer.backends.native.image.push import find_record
    from composer.image_reference import parse

    target = parse(args.target)
    if target.digest is not None:
        raise UsageError(f"image tag: {args.target}: a tag cannot carry a digest")
    store = _store(args)
    record = find_record(store, args.source)
    store.put(record._replace(reference=str(target), pulled=time.time(), source="tag"))
    return 0


def _remove(args: argparse.Namespace) -> int:
    from composer.errors import ImageNotFoundError
    from composer.image_reference import parse

    refs = [parse(text) for text in args.images]
    store = _store(args)
    missing = [ref.familiar() for ref in refs if store.get(str(ref)) is None]
    if missing:
        raise ImageNotFoundError(f"No such image: {', '.join(missing)}", backend_name="native", operation="rm")
    for ref in refs:
        store.remove(str(ref))
        print(f"Untagged: {ref.familiar()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    import time

    from composer.cli.containers import human_size, table
    from composer.image_reference import parse
    from composer.units import human_duration

    store = _store(args)
    records = store.images()
    if args.quiet:
        for image_id in dict.fromkeys(record.config.removeprefix("sha256:")[:12] for record in records):
            print(image_id)
        return 0
    rows = [["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]]
    now = time.time()
    for record in records:
        ref = parse(record.reference)
        size = sum(layer.size for layer in store.layers(record))
        created = f"{human_duration(now - record.pulled)} ago" if record.pulled else ""
        rows.append([ref._replace(tag=None, digest=None).familiar(), ref.tag or "<none>",
                     record.config.removeprefix("sha256:")[:12], created, human_size(size)])
    for line in table(rows):
        print(line)
    return 0
