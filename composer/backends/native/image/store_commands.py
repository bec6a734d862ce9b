"""``composer image``'s work on the native image store: load and save archives, tag, untag and
list names. NativeImageStore is the native backend's ImageStoreCommands (composer.contract.backend),
found through composer.backends.select.image_store without importing the rest of the backend."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from composer.backends.native.image.store import ImageStore
from composer.errors import ImageNotFoundError, UsageError
from composer.image_reference import parse

if TYPE_CHECKING:
    from composer.contract.backend import ImageStoreCommands, StoredImage


class NativeImageStore:
    """The store under COMPOSER_ROOT, created when a command first needs it: a bad argument is
    reported before."""

    def __init__(self, root: Path | str | None = None, *, environ: Mapping[str, str] | None = None) -> None:
        self._root = root
        self._environ = environ
        self._store: ImageStore | None = None

    def _opened(self) -> ImageStore:
        if self._store is None:
            self._store = ImageStore.open(self._root, environ=self._environ)
        return self._store

    def load_images(self, source: Path | BinaryIO) -> list[str]:
        from composer.backends.native.image import archive

        return [parse(record.reference).familiar() for record in archive.load(self._opened(), source)]

    def save_images(self, references: Sequence[str], target: Path | BinaryIO) -> None:
        from composer.backends.native.image import archive

        if isinstance(target, Path):
            archive.save_to_path(self._opened(), references, target)
        else:
            archive.save(self._opened(), references, target)

    def tag_image(self, source: str, target: str) -> None:
        from composer.backends.native.image.push import find_record

        reference = parse(target)
        if reference.digest is not None:
            raise UsageError(f"image tag: {target}: a tag cannot carry a digest")
        store = self._opened()
        record = find_record(store, source)
        store.put(record._replace(reference=str(reference), pulled=time.time(), source="tag"))

    def untag_images(self, references: Sequence[str]) -> list[str]:
        refs = [parse(text) for text in references]
        store = self._opened()
        missing = [ref.familiar() for ref in refs if store.get(str(ref)) is None]
        if missing:
            raise ImageNotFoundError(f"No such image: {', '.join(missing)}", backend_name="native", operation="rm")
        for ref in refs:
            store.remove(str(ref))
        return [ref.familiar() for ref in refs]

    def stored_images(self) -> list[StoredImage]:
        from composer.contract.backend import StoredImage  # the contract's dataclasses: ~10 ms, ls's alone

        store = self._opened()
        found = []
        for record in store.images():
            ref = parse(record.reference)
            found.append(StoredImage(repository=ref._replace(tag=None, digest=None).familiar(), tag=ref.tag,
                                     image_id=record.config, size=sum(layer.size for layer in store.layers(record)),
                                     pulled=record.pulled))
        return found


if TYPE_CHECKING:  # mypy checks that the class keeps to the contract
    _offered: type[ImageStoreCommands] = NativeImageStore
