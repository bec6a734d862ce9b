"""``build.additional_contexts``: the named contexts a Dockerfile reads as BuildKit's do, by
name, in ``FROM name``, ``COPY --from=name`` and ``RUN --mount=from=name``.

A value is one of (the loader made a relative folder absolute against the project folder, as
v2 does):

- a folder: its files, after its own ``.dockerignore`` (BuildKit's local named context);
- ``docker-image://<reference>``: an image, from the store or pulled as a base is;
- ``service:<name>``: the image built for another service of the project (the planner builds
  that one first and hands its reference over in ``BuildSpec.service_images``); never pulled.

Anything else (``oci-layout://``, ``target:``, a URL or a git repository) is refused in one line
naming the key; a missing folder or an unknown service is a one-line error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from composer.backends.native.build.ignore import Matcher, parse
from composer.backends.native.coverage import BUILDER_REFUSAL
from composer.errors import ImageBuildError, UnsupportedFeatureError

BACKEND = "native"
IMAGE_PREFIX = "docker-image://"
SERVICE_PREFIX = "service:"


@dataclass(frozen=True, slots=True)
class FolderContext:
    path: Path
    matcher: Matcher


@dataclass(frozen=True, slots=True)
class ImageContext:
    reference: str
    pull: bool  # docker-image:// is pulled when the store lacks it; a service's image never is


NamedContext = FolderContext | ImageContext


def named_contexts(service: str, contexts: Mapping[str, str],
                   service_images: Mapping[str, str]) -> dict[str, NamedContext]:
    """The named contexts of a build, by name.

    :raises ImageBuildError: a folder that is not one, a service with no image built for it;
        UnsupportedFeatureError: a kind of context this builder does not read.
    """
    found: dict[str, NamedContext] = {}
    for name, value in sorted(contexts.items()):
        key = f"service {service}: build.additional_contexts.{name}"
        if not name or not value:
            raise ImageBuildError(f"{key}: a name and a value are needed", backend_name=BACKEND, operation="build")
        if value.startswith(IMAGE_PREFIX):
            reference = value[len(IMAGE_PREFIX):]
            if not reference:
                raise ImageBuildError(f"{key}: {value!r} names no image", backend_name=BACKEND, operation="build")
            found[name] = ImageContext(reference, pull=True)
        elif value.startswith(SERVICE_PREFIX):
            other = value[len(SERVICE_PREFIX):]
            image = service_images.get(other)
            if image is None:
                raise ImageBuildError(f"{key}: {value}: no such service with a build section",
                                      backend_name=BACKEND, operation="build")
            found[name] = ImageContext(image, pull=False)
        elif "://" in value or value.startswith("git@") or not Path(value).is_absolute():
            raise UnsupportedFeatureError(BUILDER_REFUSAL.format(f"{key}: {value}"), backend_name=BACKEND,
                                          operation="build")
        else:
            folder = Path(value)
            if not folder.is_dir():
                raise ImageBuildError(f"{key}: {value} is not a folder", backend_name=BACKEND, operation="build")
            ignore = folder / ".dockerignore"
            found[name] = FolderContext(folder, Matcher(parse(ignore.read_text())) if ignore.is_file() else
                                        Matcher([]))
    return found
