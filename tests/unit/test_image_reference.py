"""Image references parsed with Docker's defaults."""

from __future__ import annotations

import pytest

from composer.backends.docker.container_commands import _split_reference
from composer.errors import ImageReferenceError
from composer.image_reference import (
    Reference,
    has_tag_or_digest,
    is_loopback_host,
    parse,
    repository_of,
    split,
    with_latest,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(("text", "expected"), [
    ("busybox", Reference("docker.io", "library/busybox", "latest")),
    ("busybox:1.36", Reference("docker.io", "library/busybox", "1.36")),
    ("library/busybox", Reference("docker.io", "library/busybox", "latest")),
    ("docker.io/busybox", Reference("docker.io", "library/busybox", "latest")),
    ("index.docker.io/library/busybox", Reference("docker.io", "library/busybox", "latest")),
    ("user/app:v1", Reference("docker.io", "user/app", "v1")),
    ("ghcr.io/org/team/app", Reference("ghcr.io", "org/team/app", "latest")),
    ("localhost/app", Reference("localhost", "app", "latest")),
    ("localhost:5000/app:dev", Reference("localhost:5000", "app", "dev")),
    ("127.0.0.1:5000/a/b", Reference("127.0.0.1:5000", "a/b", "latest")),
    ("[::1]:5000/app", Reference("[::1]:5000", "app", "latest")),
    ("Registry/app", Reference("Registry", "app", "latest")),  # upper case: a registry host
    (f"busybox@{DIGEST}", Reference("docker.io", "library/busybox", None, DIGEST)),
    (f"busybox:1@{DIGEST}", Reference("docker.io", "library/busybox", "1", DIGEST)),
    ("my-app_x.y__z:tag_1.2-rc", Reference("docker.io", "library/my-app_x.y__z", "tag_1.2-rc")),
])
def test_parse(text: str, expected: Reference) -> None:
    assert parse(text) == expected


def test_strings_and_properties() -> None:
    ref = parse("busybox")
    assert str(ref) == "docker.io/library/busybox:latest"
    assert ref.familiar() == "busybox:latest"
    assert ref.api_host == "registry-1.docker.io"
    assert ref.target == "latest"
    pinned = parse(f"127.0.0.1:5000/x:1@{DIGEST}")
    assert pinned.target == DIGEST
    assert pinned.api_host == "127.0.0.1:5000"
    assert pinned.familiar() == f"127.0.0.1:5000/x:1@{DIGEST}"
    assert parse(str(pinned)) == pinned
    assert pinned.without_digest() == Reference("127.0.0.1:5000", "x", "1")


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty reference"),
    ("Busybox", "must be lowercase"),
    ("a:b:c", "invalid"),
    ("busybox:", "invalid tag"),
    ("busybox:-x", "invalid tag"),
    ("busybox@sha256:abc", "invalid digest"),
    ("busybox@sha256:" + "AB" * 32, "64 lower-case"),
    ("/busybox", "invalid repository name component"),
    ("a//b", "invalid repository name component"),
    ("a/b/", "invalid repository name component"),
    ("has space", "whitespace"),
    ("ab" * 32, "64-byte hexadecimal"),
    ("x/" + "a" * 260, "longer than 255"),
    ("bad_host-/app", "invalid repository name component"),
])
def test_malformed_references_are_one_line_errors(text: str, why: str) -> None:
    with pytest.raises(ImageReferenceError) as caught:
        parse(text)
    message = str(caught.value)
    assert why in message
    assert "\n" not in message
    assert message.startswith("invalid reference format")


@pytest.mark.parametrize(("host", "loopback"), [
    ("localhost", True), ("localhost:5000", True), ("127.0.0.1:5000", True), ("127.1.2.3", True),
    ("[::1]:5000", True), ("::1", True), ("registry.example.com", False), ("10.0.0.1:5000", False),
])
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback_host(host) is loopback


@pytest.mark.parametrize(("reference", "repository"), [
    ("app", "app"), ("app:1", "app"), ("reg:5000/a/b:2", "reg:5000/a/b"), ("reg:5000/app", "reg:5000/app"),
    ("app@sha256:00", "app"),
])
def test_repository_of(reference: str, repository: str) -> None:
    assert repository_of(reference) == repository


# --- the references as written: one rule where the planner and the docker backend each had one ---
# The hand-written splits they replaced, kept here as the oracle the shared rule must agree with.

def old_has_tag_or_digest(image: str) -> bool:  # planner/specs.py and teardown.py's _familiar
    last = image.rsplit("/", 1)[-1]
    return "@" in last or ":" in last


def old_repository_of(reference: str) -> str:  # planner/images.py
    name = reference.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    if ":" in last:
        last = last.rsplit(":", 1)[0]
    return f"{head}/{last}" if head else last


def old_split_reference(reference: str) -> tuple[str, str]:  # docker/container_commands.py
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, digest
    last = reference.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = reference.rpartition(":")
        return repository, tag
    return reference, "latest"


def old_full(wanted: str) -> str:  # docker/container_commands.py and docker/backend.py
    return wanted if ":" in wanted.rsplit("/", 1)[-1] or "@" in wanted else f"{wanted}:latest"


TRICKY = [
    "busybox", "busybox:1.36", "localhost:5000/x", "localhost:5000/x:2", "localhost/x", f"x@{DIGEST}",
    f"x:1@{DIGEST}", f"localhost:5000/a/b:tag@{DIGEST}", "registry:5000/a/b:tag", "registry:5000/a/b",
    "docker.io/library/x", "docker.io/library/x:latest", "Upper/Case:V1", "[::1]:5000/x", "[::1]:5000/x:y",
    "x:", "x@", "a/b/c/d:e", "", ":", "sha256:" + "ab" * 32, "127.0.0.1:5000/app:v1.2-rc_3",
]


# Not kept: the old repository_of dropped an empty leading path ("/x" -> "x"); no reference has one.
@pytest.mark.parametrize("text", TRICKY)
def test_references_as_written_split_as_before(text: str) -> None:
    assert has_tag_or_digest(text) == old_has_tag_or_digest(text)
    assert repository_of(text) == old_repository_of(text)
    assert _split_reference(text) == old_split_reference(text)
    assert with_latest(text) == old_full(text)


@pytest.mark.parametrize("text", [t for t in TRICKY if t and t not in (":", "x:", "x@")])
def test_split_is_the_rule_parse_checks(text: str) -> None:
    try:
        reference = parse(text)
    except ImageReferenceError:
        assert text in ("Upper/Case:V1", "sha256:" + "ab" * 32)  # refused: upper case; a bare image id
        return
    name, tag, digest = split(text)
    assert (reference.tag, reference.digest) == (tag or (None if digest else "latest"), digest)
    assert reference.name.endswith(name.removeprefix("docker.io/"))
