"""``composer image``'s work on the native image store: load and save archives, tag, untag and
list names. The native backend offers them as its ImageStoreCommands (composer.backends.base);
each takes the store's opener, called once the arguments are known to be good (a bad argument
is reported before the store is created)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from composer.backends.base import StoredImage
from composer.backends.native.image.reference import parse
from composer.backends.native.image.store import ImageStore
from composer.errors import ImageNotFoundError, UsageError

Opener = Callable[[], ImageStore]


def load_images(opened: Opener, source: Path | BinaryIO) -> list[str]:
    from composer.backends.native.image import archive

    return [parse(record.reference).familiar() for record in archive.load(opened(), source)]


def save_images(opened: Opener, references: Sequence[str], target: Path | BinaryIO) -> None:
    from composer.backends.native.image import archive

    if isinstance(target, Path):
        archive.save_to_path(opened(), references, target)
    else:
        archive.save(opened(), references, target)


def tag_image(opened: Opener, source: str, target: str) -> None:
    from composer.backends.native.image.push import find_record

    reference = parse(target)
    if reference.digest is not None:
        raise UsageError(f"image tag: {target}: a tag cannot carry a digest")
    store = opened()
    record = find_record(store, source)
    store.put(record._replace(reference=str(reference), pulled=time.time(), source="tag"))


def untag_images(opened: Opener, references: Sequence[str]) -> list[str]:
    refs = [parse(text) for text in references]
    store = opened()
    missing = [ref.familiar() for ref in refs if store.get(str(ref)) is None]
    if missing:
        raise ImageNotFoundError(f"No such image: {', '.join(missing)}", backend_name="native", operation="rm")
    for ref in refs:
        store.remove(str(ref))
    return [ref.familiar() for ref in refs]


def stored_images(opened: Opener) -> list[StoredImage]:
    store = opened()
    found = []
    for record in store.images():
        ref = parse(record.reference)
        found.append(StoredImage(repository=ref._replace(tag=None, digest=None).familiar(), tag=ref.tag,
                                 image_id=record.config, size=sum(layer.size for layer in store.layers(record)),
                                 pulled=record.pulled))
    return found
