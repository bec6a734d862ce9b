"""Image references, parsed the way Docker does (distribution/reference's grammar and defaults).

``busybox`` is ``docker.io/library/busybox:latest``; the first path component names a registry
only when it contains ``.`` or ``:``, is ``localhost``, or has an upper-case letter. A digest may
follow a tag (``name:tag@sha256:...``); the digest then wins when pulling.

One rule splits a reference into name, tag and digest (``split``): ``parse`` checks and normalises
the parts (the native image store, registries); the planner and the docker backend match
references as they are written (``has_tag_or_digest``, ``with_latest``, ``repository_of``), never
normalised and never refused, as docker compose matches what the engine lists.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from composer.errors import ImageReferenceError

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
# Keys under which ~/.docker/config.json stores Docker Hub's credentials.
DOCKER_HUB_AUTH_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_COMPONENT = re.compile(rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*")
_DOMAIN_LABEL = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_LABEL}(?:\.{_DOMAIN_LABEL})*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
NAME_TOTAL_MAX = 255


class Reference(NamedTuple):
    """A parsed, normalised image reference. ``tag`` is None only when a digest is given alone."""

    registry: str  # "docker.io", "127.0.0.1:5000", "ghcr.io"
    repository: str  # "library/busybox"
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """``registry/repository``, fully qualified."""
        return f"{self.registry}/{self.repository}"

    @property
    def api_host(self) -> str:
        """The host the distribution API is served from (``registry-1.docker.io`` for docker.io)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def is_docker_hub(self) -> bool:
        return self.registry == DOCKER_HUB

    @property
    def target(self) -> str:
        """What to ask the registry's manifest endpoint for: the digest if any, else the tag."""
        return self.digest or self.tag or "latest"

    def with_digest(self, digest: str) -> Reference:
        return self._replace(digest=digest)

    def without_digest(self) -> Reference:
        return self._replace(digest=None, tag=self.tag or "latest")

    def __str__(self) -> str:
        text = self.name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar(self) -> str:
        """The short form Docker prints: ``busybox:latest``, ``user/app:1``, ``ghcr.io/x/y:2``."""
        name = self.name
        if self.is_docker_hub:
            name = self.repository.removeprefix("library/")
        text = name
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text


def split(text: str) -> tuple[str, str | None, str | None]:
    """``text`` as written: (name, tag, digest). The digest follows the first ``@``; the tag follows
    the last ``:`` after the name's last ``/`` (a ``:`` before it is a registry's port). Checks and
    normalises nothing; a part not given is None."""
    name, at, digest = text.partition("@")
    tag: str | None = None
    colon = name.rfind(":")
    if colon > name.rfind("/"):
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest if at else None


def has_tag_or_digest(text: str) -> bool:
    """Whether ``text`` names a tag or a digest (``nginx`` does not: it means ``nginx:latest``)."""
    _, tag, digest = split(text)
    return tag is not None or digest is not None


def with_latest(text: str) -> str:
    """``nginx`` -> ``nginx:latest``, as the engine lists (and v2 names) an image given untagged;
    a reference with a tag or digest is returned as is."""
    return text if has_tag_or_digest(text) else f"{text}:latest"


def repository_of(text: str) -> str:
    """``host:5000/app:1`` -> ``host:5000/app`` (the tag and digest dropped)."""
    return split(text)[0]


def _bad(text: str, why: str) -> ImageReferenceError:
    return ImageReferenceError(f"invalid reference format: {text!r}: {why}")


def parse(text: str, *, default_tag: str = "latest") -> Reference:
    """Parse ``text`` with Docker's defaults.

    :raises ImageReferenceError: the reference is malformed; the message is one line.
    """
    if not text:
        raise _bad(text, "empty reference")
    if _HEX64.fullmatch(text):
        raise _bad(text, "cannot specify 64-byte hexadecimal strings")
    if any(ch.isspace() for ch in text):
        raise _bad(text, "contains whitespace")
    remainder, tag, digest = split(text)
    if digest is not None:
        _check_digest(text, digest)
    if tag is not None and not _TAG.fullmatch(tag):
        raise _bad(text, f"invalid tag {tag!r}")
    if not remainder:
        raise _bad(text, "empty repository name")
    registry, path = _split_registry(remainder)
    if registry is not None and not _DOMAIN.fullmatch(registry):
        raise _bad(text, f"invalid registry host {registry!r}")
    components = path.split("/")
    for component in components:
        _check_component(text, component)
    if registry is None or registry in _HUB_ALIASES:
        registry = DOCKER_HUB
        if len(components) == 1:
            path = f"library/{path}"
    if len(f"{registry}/{path}") > NAME_TOTAL_MAX:
        raise _bad(text, f"repository name longer than {NAME_TOTAL_MAX} characters")
    if tag is None and not digest:
        tag = default_tag
    return Reference(registry, path, tag, digest or None)


def _check_digest(text: str, digest: str) -> None:
    if not _DIGEST.fullmatch(digest):
        raise _bad(text, f"invalid digest {digest!r}")
    if digest.startswith("sha256:") and not _SHA256.fullmatch(digest):
        raise _bad(text, "a sha256 digest is 64 lower-case hexadecimal digits")


def _check_component(text: str, component: str) -> None:
    if _COMPONENT.fullmatch(component):
        return
    if component.lower() != component and _COMPONENT.fullmatch(component.lower()):
        raise _bad(text, "repository name must be lowercase")
    raise _bad(text, f"invalid repository name component {component!r}")


def _split_registry(name: str) -> tuple[str | None, str]:
    first, sep, rest = name.partition("/")
    if not sep:
        return None, name
    if "." in first or ":" in first or first == "localhost" or first.lower() != first:
        return first, rest
    return None, name


def is_loopback_host(host: str) -> bool:
    """Whether ``host`` (``name[:port]``) is this machine: localhost, 127.0.0.0/8 or ::1."""
    import ipaddress

    name = host
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
