"""The spellings of a stored image that a Compose file may use (``observe`` lists the store's
images under each; a container's ``image`` is looked up by them)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from composer.image_reference import parse

if TYPE_CHECKING:
    from composer.backends.native.image.store import ImageRecord


def image_aliases(record: ImageRecord) -> set[str]:
    """The fully qualified reference, Docker's short form, Docker Hub's without ``library/``,
    each without ``:latest`` too, and the image ID."""
    ref = parse(record.reference)
    names = {str(ref), ref.familiar(), record.config}
    if ref.is_docker_hub:
        names.add(f"{ref.repository}:{ref.tag}" if ref.tag else ref.repository)
    for name in list(names):
        if name.endswith(":latest"):
            names.add(name.removesuffix(":latest"))
    return names
