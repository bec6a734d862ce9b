"""Image references parsed with Docker's defaults."""

from __future__ import annotations

import pytest

from composer.backends.native.image.reference import Reference, is_loopback_host, parse
from composer.errors import ImageReferenceError

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
